"""The tracking conformance suite on SQLite and PostgreSQL, plus what only the SQL store has:
the factory, the constant number of queries per search page, and the hot-path speed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from keel.errors import ConfigError
from keel.testing.tracking_conformance import TrackingStoreConformance
from keel.tracking._http import HttpTrackingStore
from keel.tracking._records import Metric, RunIO
from keel.tracking._sql import SqlTrackingStore
from keel.tracking._sql_load import load_runs
from keel.tracking._store import open_store


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore(db_url)
    yield store
    store.close()


class TestSqlTrackingStore(TrackingStoreConformance):
    @pytest.fixture
    def store(self, sql_store: SqlTrackingStore) -> SqlTrackingStore:
        return sql_store


def test_open_store_chooses_by_uri(sqlite_url: str, keel_home: Path) -> None:
    store = open_store(sqlite_url)
    assert isinstance(store, SqlTrackingStore) and store.url == sqlite_url
    default = open_store()
    assert isinstance(default, SqlTrackingStore)
    assert default.url == f"sqlite:///{keel_home / 'keel.db'}"
    assert (keel_home / "keel.db").exists()
    remote = open_store("http://127.0.0.1:5000/")  # a team server: no connection until used
    assert isinstance(remote, HttpTrackingStore) and remote.url == "http://127.0.0.1:5000"
    remote.close()
    with pytest.raises(ConfigError, match="ftp"):
        open_store("ftp://host/x")
    with pytest.raises(ConfigError):
        SqlTrackingStore("https://keel.example.com")


def test_loading_runs_takes_a_constant_number_of_queries(sql_store: SqlTrackingStore) -> None:
    ids = []
    for i in range(30):
        run = sql_store.create_run(project="p", tags={"t": str(i)})
        sql_store.log_batch(run.id, metrics=[Metric("m", 1.0, 0, 1)], params={"p": str(i)})
        sql_store.log_io(run.id, [RunIO(f"data@v{i}")])
        ids.append(run.id)
    statements: list[str] = []
    engine = sql_store._engine

    def count(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as conn:
            one = load_runs(conn, ids[:1])
            n_one = len(statements)
            statements.clear()
            many = load_runs(conn, list(reversed(ids)))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == n_one == 5
    assert [r.id for r in many] == list(reversed(ids))  # order of the ids kept
    assert one[0] == sql_store.get_run(ids[0])
    assert many[-1].params == {"p": "0"} and many[-1].io == (RunIO("data@v0"),)
    assert load_runs(sql_store._engine.connect(), ["0" * 32]) == []


def test_log_batch_of_10000_points_is_fast(sql_store: SqlTrackingStore) -> None:
    run = sql_store.create_run(project="p")
    points = [Metric(f"k{i % 10}", i * 0.5, i, 1_000 + i) for i in range(10_000)]
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        sql_store.log_batch(run.id, metrics=points)
        timings.append(time.perf_counter() - start)
    # The target is well under 100 ms; the bound leaves room for a loaded CI machine.
    assert min(timings) < 0.5, timings
    assert len(sql_store.metric_history(run.id, "k3")) == 3_000
    assert sql_store.get_run(run.id).metrics["k9"] == 9_999 * 0.5
