"""20 processes register versions of one model at the same moment: numbers are exactly 1..20,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from keel.models import VersionStatus
from keel.models._sql import SqlModelRegistry

WORKER = """
import sys, time
from pathlib import Path
from keel.models._records import ModelFile, NewModelVersion
from keel.models._sql import SqlModelRegistry

url, go = sys.argv[1], Path(sys.argv[2])
registry = SqlModelRegistry(url)  # opened (and migrated) before the start signal
while not go.exists():
    time.sleep(0.005)
v = registry.create_version(NewModelVersion(name="churn", flavor="sklearn"))
registry.complete_version("churn", v.version, files=[ModelFile("m.skops", "a" * 64, 1)])
print(v.version)
"""

PROCESSES = 20


def test_twenty_processes_get_exactly_one_to_twenty(db_url: str, tmp_path: Path) -> None:
    SqlModelRegistry(db_url).close()  # migrate once, so the race is on registration only
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    time.sleep(1.0)
    go.touch()
    numbers = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        numbers.append(int(out.strip()))
    assert sorted(numbers) == list(range(1, PROCESSES + 1))
    registry = SqlModelRegistry(db_url)
    try:
        versions = registry.list_versions("churn")
        assert [v.version for v in versions] == list(range(1, PROCESSES + 1))
        assert all(v.status is VersionStatus.READY for v in versions)
        assert registry.get_model("churn").latest_version == PROCESSES
    finally:
        registry.close()
