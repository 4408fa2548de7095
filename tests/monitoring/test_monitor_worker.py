"""Schedules and the monitor worker: due runs happen once (also with two workers on threads,
on SQLite and PostgreSQL), a failing run is recorded and does not stop the worker, stop()
ends the loop after the current run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from keel.errors import InvalidInput, NotFound
from keel.monitoring._monitor import monitor_history
from keel.monitoring._monitor_sql import ERROR, OK, SqlMonitorStore, open_monitor_store
from keel.monitoring._monitor_worker import (
    MonitorWorker,
    list_schedules,
    schedule_monitor,
    unschedule,
)
from monitoring.monitor_support import HOUR_MS, NOW_MS, register_model, send


def test_schedule_validation_and_listing() -> None:
    s = schedule_monitor("churn", every="1h", window="6h", reference="log:1d", first_due_ms=5)
    assert (s.every_ms, s.options, s.next_due_ms) == (
        HOUR_MS,
        {"window": "6h", "reference": "log:1d"},
        5,
    )
    assert [x.deployment for x in list_schedules()] == ["churn"]
    for bad in ({"every": "10s"}, {"every": "soon"}):
        with pytest.raises(InvalidInput) as info:
            schedule_monitor("churn", **bad)
        assert info.value.field == "every"
    with pytest.raises(InvalidInput) as info:
        schedule_monitor("churn", every="1h", window="2026-01-01..2026-01-02")
    assert info.value.field == "window"
    with pytest.raises(InvalidInput):
        schedule_monitor("churn", every="1h", colour="red")
    with pytest.raises(InvalidInput) as info:
        schedule_monitor("churn", every="1h", thresholds={"ks": float("nan")})
    assert info.value.field == "options"
    unschedule("churn")
    with pytest.raises(NotFound):
        unschedule("churn")


def test_worker_runs_due_monitors_and_records_failures() -> None:
    register_model()
    send("churn", rows=300, start_ms=NOW_MS - 6 * HOUR_MS, end_ms=NOW_MS)
    schedule_monitor("churn", every="1h", window="6h", first_due_ms=NOW_MS)
    # A schedule whose reference does not exist fails on every run.
    schedule_monitor("broken", every="1h", reference="nosuch@v1", first_due_ms=NOW_MS)
    store = open_monitor_store()
    worker = MonitorWorker(store, owner="w1")
    assert worker.run_due(now_ms=NOW_MS - 1) == []  # nothing due yet
    done = {o.deployment: o for o in worker.run_due(now_ms=NOW_MS)}
    assert set(done) == {"churn", "broken"}
    assert done["churn"].error is None and done["churn"].result_id
    assert done["broken"].error is not None and "nosuch" in done["broken"].error
    broken = store.get_schedule("broken")
    assert (broken.runs, broken.failures, broken.last_status) == (1, 1, ERROR)
    assert broken.next_due_ms == NOW_MS + HOUR_MS and broken.lease_owner is None
    [failed] = monitor_history("broken")
    assert failed.status == ERROR and "nosuch" in (failed.error or "")
    ok = store.get_schedule("churn")
    assert (ok.runs, ok.failures, ok.last_status) == (1, 0, OK)
    assert ok.last_result_id == done["churn"].result_id
    assert monitor_history("churn")[0].id == ok.last_result_id
    # Both run again at the next due time; the failure is retried, not given up on.
    assert worker.run_due(now_ms=NOW_MS + HOUR_MS // 2) == []
    again = worker.run_due(now_ms=NOW_MS + HOUR_MS)
    assert sorted(o.deployment for o in again) == ["broken", "churn"]
    assert store.get_schedule("broken").failures == 2
    store.close()


def _count_runs(db_url: str, workers: int) -> Counter[str]:
    """Schedules of 10 deployments, ``workers`` workers on threads running them at once with a
    runner that records each call (and takes a moment, so runs overlap)."""
    first = SqlMonitorStore(db_url)
    for i in range(10):
        first.set_schedule(f"d{i}", every_ms=HOUR_MS, options={}, first_due_ms=NOW_MS)
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    class Done:
        def __init__(self) -> None:
            self.id = "x"

    def runner(deployment: str, **_: Any) -> Done:
        with lock:
            calls[deployment] += 1
        time.sleep(0.01)
        return Done()

    barrier = threading.Barrier(workers)

    def work(i: int) -> None:
        store = SqlMonitorStore(db_url)
        worker = MonitorWorker(store, run=runner, owner=f"w{i}")
        barrier.wait()
        worker.run_due(now_ms=NOW_MS)
        # Not closed here: the stores share one engine, and closing disposes it under the
        # other thread; ``first.close()`` below disposes it once both are done.

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(s.runs == 1 for s in first.list_schedules())
    first.close()
    return calls


def test_two_workers_never_run_the_same_due_monitor_twice(db_url: str) -> None:
    calls = _count_runs(db_url, workers=2)
    assert sorted(calls) == [f"d{i}" for i in range(10)]
    assert set(calls.values()) == {1}, calls


def test_stop_ends_the_loop_after_the_current_run() -> None:
    schedule_monitor("a", every="1m", first_due_ms=0)
    schedule_monitor("b", every="1m", first_due_ms=0)
    store = open_monitor_store()
    ran: list[str] = []

    class Done:
        id = "x"

    def runner(deployment: str, **_: Any) -> Done:
        ran.append(deployment)
        worker.stop()  # as SIGTERM would, during a run
        return Done()

    worker = MonitorWorker(store, run=runner)
    thread = threading.Thread(target=worker.run_forever, kwargs={"poll_s": 0.05})
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert ran == ["a"]  # the current run finished and was recorded; b waits
    assert store.get_schedule("a").runs == 1 and store.get_schedule("b").runs == 0
    store.close()
