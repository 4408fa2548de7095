"""Migrations: applied on first use and by ``keel.db.upgrade``, idempotent, and safe when many
processes start at once on an empty database (one migrates, the others wait)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, inspect, select, text

from keel.db import connect, current_revision, head_revision, upgrade
from keel.tracking._tables import runs

TRACKING_TABLES = {
    "projects",
    "runs",
    "params",
    "tags",
    "metrics",
    "latest_metrics",
    "run_io",
    "run_artifacts",
}


def _versions(url: str) -> list[str]:
    with connect(url, migrate=False).connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_first_connect_migrates_to_head(db_url: str) -> None:
    engine = connect(db_url)
    assert current_revision(engine) == head_revision() == "0011"
    assert TRACKING_TABLES <= set(inspect(engine).get_table_names())
    assert _versions(db_url) == [head_revision()]


def test_head_revision_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from keel.db._migrate import _alembic_config

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_upgrade_applies_once_and_rerunning_is_a_no_op(db_url: str) -> None:
    engine = connect(db_url, migrate=False)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    before = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (id, name, description, created_ms) "
                "VALUES ('p1', 'kept', '', 1)"
            )
        )
    assert upgrade(engine) == head_revision()
    connect(db_url)  # the implicit path finds it current too
    assert set(inspect(engine).get_table_names()) == before
    assert _versions(db_url) == [head_revision()]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM projects")).scalars().all() == ["kept"]


WORKER = r"""
import sys, time
from pathlib import Path

url, sync, index = sys.argv[1:4]
from keel.db import connect
from keel.tracking._sql import SqlTrackingStore

Path(sync, f"ready-{index}").touch()
while not Path(sync, "go").exists():
    time.sleep(0.001)
connect(url)
SqlTrackingStore(url).create_run(project="p", run_id=f"worker{index}")
print("ok")
"""


def test_eight_processes_start_at_once_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(sync), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < len(procs):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    assert current_revision(connect(db_url, migrate=False)) is None  # still empty at "go"
    (sync / "go").touch()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert (proc.returncode, out.strip()) == (0, "ok"), err
    assert _versions(db_url) == [head_revision()]
    with connect(db_url).connect() as conn:
        ids = conn.execute(select(runs.c.id).order_by(runs.c.id)).scalars().all()
        projects = conn.execute(text("SELECT count(*) FROM projects")).scalar()
        assert conn.execute(select(func.count()).select_from(runs)).scalar() == 8
    assert ids == [f"worker{i}" for i in range(8)]
    assert projects == 1  # created on demand by eight processes at once, exactly once
