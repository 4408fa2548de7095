"""What only the configured ``keel.data`` functions and the SQL store show: numbering across
processes, the state cache, lineage through tracking, and no half-written versions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import keel
import keel.data
from keel.artifacts import ContentStore, open_content_store
from keel.data._datasets import Datasets
from keel.data._sql import SqlDataStore
from keel.data._state import StateCache
from keel.errors import InvalidInput, StoreError

WORKER = r"""
import sys, time
from pathlib import Path
import pandas as pd
from keel.artifacts import open_content_store
from keel.data._datasets import Datasets
from keel.data._sql import SqlDataStore

url, art, sync, index = sys.argv[1:5]
ds = Datasets(SqlDataStore(url), open_content_store(art))
Path(sync, f"ready-{index}").touch()
while not Path(sync, "go").exists():
    time.sleep(0.001)
print(ds.add(pd.DataFrame({"worker": [int(index)] * 3}), name="race").version)
"""


def test_processes_adding_at_once_get_distinct_consecutive_numbers(
    db_url: str, tmp_path: Path
) -> None:
    SqlDataStore(db_url)  # migrate first: this test is about numbering, not migrations
    sync = tmp_path / "sync"
    sync.mkdir()
    art = str(tmp_path / "art")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, art, str(sync), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < len(procs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (sync / "go").touch()
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers.append(int(out.strip()))
    assert sorted(numbers) == list(range(1, 7))


def test_readding_unchanged_files_only_stats_them(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i}.bin").write_bytes(bytes([i]) * 1000)
    state = StateCache(tmp_path / "state.db")
    ds = Datasets(
        SqlDataStore(f"sqlite:///{tmp_path / 'm.db'}"),
        open_content_store(str(tmp_path / "a")),
        state=state,
    )
    ds.add(folder, name="f")
    assert (state.hits, state.misses) == (0, 20)
    again = ds.add(folder, name="f")
    assert again.existed and (state.hits, state.misses) == (20, 20)
    (folder / "3.bin").write_bytes(b"new")
    ds.add(folder, name="f")
    assert state.misses == 21  # only the changed file is read again
    csv = tmp_path / "t.csv"
    csv.write_text("a\n1\n")
    ds.add(csv, name="t")
    assert ds.add(csv, name="t").existed and state.hits == 20 + 19 + 1


def test_fluent_api_and_lineage_through_tracking(tmp_path: Path) -> None:
    ds = keel.data.add(pd.DataFrame({"x": [1, 2]}), name="churn", description="d", tags=["prod"])
    assert keel.data.show("churn@prod") == ds and keel.data.ls("churn") == [ds]
    with keel.start_run(project="p", inputs=[ds]) as run:
        pass
    recorded = keel.get_run(run.id).io
    assert [(i.ref, i.digest) for i in recorded] == [("churn@v1", ds.digest)]
    assert keel.data.get("churn", as_="arrow").num_rows == 2
    path = keel.data.get("churn@v1", as_="path", dest=tmp_path)
    assert path == tmp_path / "churn-v1.parquet" and path.exists()
    assert keel.data.tag("churn@v1", "best").tags == ("best", "prod")
    keel.data.rm("churn@v1")
    assert keel.data.ls() == []


class _FailingContent(ContentStore):
    def put_file(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        raise StoreError("disk full")

    def put_stream(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        raise StoreError("disk full")


def test_a_failed_upload_records_no_version(tmp_path: Path) -> None:
    store = SqlDataStore(f"sqlite:///{tmp_path / 'm.db'}")
    ds = Datasets(store, _FailingContent(open_content_store(str(tmp_path / "a")).backend))
    with pytest.raises(StoreError):
        ds.add(pd.DataFrame({"a": [1]}), name="t")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "x").write_text("x")
    with pytest.raises(StoreError):
        ds.add(folder, name="f")
    assert store.list_versions() == []


def test_more_bad_input(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"a": 1}\n{"a": "x"}\n')
    with pytest.raises(InvalidInput) as info:
        keel.data.add(mixed, name="m")
    assert "mixed.jsonl" in str(info.value) and info.value.field == "a"
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(InvalidInput, match="format"):
        keel.data.add(odd, name="m")
    with pytest.raises(InvalidInput) as info:
        keel.data.add(pd.DataFrame({"a": [1]}), name="t", key="b")
    assert info.value.field == "key"
    with pytest.raises(InvalidInput) as info:
        keel.data.add(42, name="t")
    assert info.value.field == "source"
    assert keel.data.ls() == []
