"""The monitor store on SQLite and PostgreSQL: results kept and listed newest first, the latest
per deployment, schedules claimed by exactly one of several concurrent workers, leases that
expire, and migration 0009 matching the declared tables."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from keel.errors import NotFound
from keel.monitoring._monitor_sql import ERROR, OK, SqlMonitorStore
from keel.monitoring._quantities import Quantity

MINUTE = 60_000


@pytest.fixture
def store(db_url: str) -> SqlMonitorStore:
    return SqlMonitorStore(db_url)


def _add(store: SqlMonitorStore, id: str, deployment: str, at: int, share: float) -> None:
    store.add_result(
        id=id,
        deployment=deployment,
        created_ms=at,
        window=(at - 60 * MINUTE, at),
        status=OK,
        summary={"drift_share": share},
        quantities={"drift.share": Quantity(share, 100), "latency.p99_ms": Quantity(None, 0)},
        result={"deployment": deployment, "drift": {"drift_share": share}},
    )


def test_results_are_kept_and_listed_newest_first(store: SqlMonitorStore) -> None:
    for i in range(5):
        _add(store, f"r{i}", "churn", 1_000 + i * MINUTE, i / 10)
    _add(store, "x", "other", 999_999, 0.9)
    store.add_result(
        id="bad",
        deployment="churn",
        created_ms=1_000 + 9 * MINUTE,
        window=None,
        status=ERROR,
        summary={},
        quantities={},
        result={},
        error="boom",
    )
    listed = store.list_results("churn", limit=10)
    assert [r.id for r in listed] == ["bad", "r4", "r3", "r2", "r1", "r0"]
    assert listed[0].status == ERROR and listed[0].error == "boom"
    assert listed[1].quantities["drift.share"] == Quantity(0.4, 100)
    assert listed[1].quantities["latency.p99_ms"] == Quantity(None, 0)
    assert listed[1].result is None  # light rows unless asked for
    assert [r.id for r in store.list_results("churn", limit=2, status=OK)] == ["r4", "r3"]
    full = store.get_result("r2")
    assert full.result == {"deployment": "churn", "drift": {"drift_share": 0.2}}
    assert full.window_start_ms == 1_000 + 2 * MINUTE - 60 * MINUTE
    latest = store.latest_results()
    assert [(r.deployment, r.id) for r in latest] == [("churn", "r4"), ("other", "x")]
    with pytest.raises(NotFound):
        store.get_result("nope")


def test_schedule_set_list_replace_delete(store: SqlMonitorStore) -> None:
    s = store.set_schedule("churn", every_ms=60 * MINUTE, options={"window": "24h"}, first_due_ms=5)
    assert (s.every_ms, s.options, s.next_due_ms, s.runs) == (60 * MINUTE, {"window": "24h"}, 5, 0)
    s = store.set_schedule("churn", every_ms=MINUTE, options={"window": "1h"}, first_due_ms=7)
    assert (s.every_ms, s.options, s.next_due_ms) == (MINUTE, {"window": "1h"}, 7)
    store.set_schedule("alpha", every_ms=MINUTE, options={}, first_due_ms=7)
    assert [x.deployment for x in store.list_schedules()] == ["alpha", "churn"]
    store.delete_schedule("churn")
    with pytest.raises(NotFound):
        store.delete_schedule("churn")
    with pytest.raises(NotFound):
        store.get_schedule("churn")


def test_claim_finish_and_lease_expiry(store: SqlMonitorStore) -> None:
    store.set_schedule("churn", every_ms=10 * MINUTE, options={}, first_due_ms=100)
    assert store.claim_due("w1", now_ms=99, lease_ms=MINUTE) is None  # not due yet
    got = store.claim_due("w1", now_ms=100, lease_ms=MINUTE)
    assert got is not None and got.lease_owner == "w1"
    assert store.claim_due("w2", now_ms=200, lease_ms=MINUTE) is None  # leased
    # The lease expired (w1 died): another worker takes the row; w1's late finish is refused.
    again = store.claim_due("w2", now_ms=100 + MINUTE, lease_ms=MINUTE)
    assert again is not None and again.lease_owner == "w2"
    assert not store.finish("churn", "w1", now_ms=100 + MINUTE, result_id="a", error=None)
    assert store.finish("churn", "w2", now_ms=100 + MINUTE, result_id=None, error="failed: x")
    s = store.get_schedule("churn")
    assert (s.runs, s.failures, s.last_status, s.last_error) == (1, 1, ERROR, "failed: x")
    assert s.lease_owner is None and s.next_due_ms == 100 + 10 * MINUTE
    # Missed periods are skipped: the next due time is the first one after now.
    assert store.claim_due("w1", now_ms=100 + 35 * MINUTE, lease_ms=MINUTE) is not None
    store.finish("churn", "w1", now_ms=100 + 35 * MINUTE, result_id="b", error=None)
    s = store.get_schedule("churn")
    assert s.next_due_ms == 100 + 40 * MINUTE
    assert (s.runs, s.failures, s.last_status, s.last_result_id) == (2, 1, OK, "b")


def test_concurrent_workers_claim_each_due_run_exactly_once(db_url: str) -> None:
    first = SqlMonitorStore(db_url)
    names = [f"d{i}" for i in range(12)]
    for name in names:
        first.set_schedule(name, every_ms=60 * MINUTE, options={}, first_due_ms=1_000)
    claims: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(owner: str) -> None:
        store = SqlMonitorStore(db_url)
        start.wait()
        while True:
            got = store.claim_due(owner, now_ms=2_000, lease_ms=10 * MINUTE)
            if got is None:
                return
            with lock:
                claims[got.deployment] += 1

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claims) == sorted(names)
    assert set(claims.values()) == {1}, claims
    owners = {s.lease_owner for s in first.list_schedules()}
    assert None not in owners


def test_migration_0009_matches_the_declared_tables(db_url: str) -> None:
    from sqlalchemy import inspect

    from keel.db import connect
    from keel.monitoring._tables import monitor_results, monitor_schedules

    engine = connect(db_url)
    found = inspect(engine)
    for table in (monitor_results, monitor_schedules):
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert set(columns) == set(table.c.keys())
        for column in table.c:
            assert columns[column.name]["nullable"] == column.nullable, column.name
        indexes = {i["name"] for i in found.get_indexes(table.name)}
        assert {i.name for i in table.indexes} <= indexes
