"""Two batches in flight: the writer sends the next batch while the store commits the previous
one, and keeps the guarantees of one batch at a time (flush, order, latest value, failures)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from keel.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from keel.tracking._records import Metric
from keel.tracking._sql import SqlTrackingStore
from keel.tracking._writer import MetricWriter


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore(sqlite_url)
    yield store
    store.close()


class Gated:
    """The real store behind a gate; records how many batches were being sent at once."""

    def __init__(self, store: SqlTrackingStore) -> None:
        self.store = store
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.sending = 0
        self.most_at_once = 0
        self.fail_first: Exception | None = None
        self.calls = 0

    def log_batch(self, run_id: str, *, metrics: Sequence[Metric] = ()) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
            self.sending += 1
            self.most_at_once = max(self.most_at_once, self.sending)
        try:
            if first and self.fail_first is not None:
                # Batch 1 fails only after batch 2 was sent and committed.
                self.gate.wait()
                time.sleep(0.05)
                error, self.fail_first = self.fail_first, None
                raise error
            self.gate.wait()
            self.store.log_batch(run_id, metrics=metrics)
        finally:
            with self.lock:
                self.sending -= 1


def _wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _two_in_flight(writer: MetricWriter, run_id: str) -> None:
    """Batch 1 (steps 0-9) and batch 2 (steps 10-19) of key ``x``, both held at the gate."""
    for batch in range(2):
        for step in range(batch * 10, batch * 10 + 10):
            writer.put((run_id, "x", float(step), step, 1_000 + step))
        _wait_until(lambda n=batch: writer._sending == (n + 1) * 10)


def test_two_batches_in_flight_and_flush_waits_for_both(store: SqlTrackingStore) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    _two_in_flight(writer, run.id)
    assert sink.most_at_once == 2
    assert writer.pending() == 20
    with pytest.raises(StoreUnavailable, match="20 metric points not yet written"):
        writer.flush(0.2)
    sink.gate.set()
    writer.flush(10)
    assert writer.pending() == 0
    assert [m.step for m in store.metric_history(run.id, "x")] == list(range(20))
    writer.close(5)


def test_while_both_senders_are_busy_the_next_points_stay_queued(store: SqlTrackingStore) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    _two_in_flight(writer, run.id)
    for step in range(20, 50):
        writer.put((run.id, "x", float(step), step, 2_000))
    time.sleep(0.05)
    assert writer._queue.qsize() == 30  # not taken by the writer: take/discard still see them
    assert writer.discard(run.id) == 30
    sink.gate.set()
    writer.flush(10)
    assert len(store.metric_history(run.id, "x")) == 20
    writer.close(5)


def test_a_batch_that_could_reorder_a_metric_waits_for_the_one_in_flight(
    store: SqlTrackingStore,
) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    writer.put((run.id, "x", 1.0, 5, 100))
    _wait_until(lambda: writer._sending == 1)
    # Same step and timestamp: the later point must win, so it must be committed later.
    writer.put((run.id, "x", 2.0, 5, 100))
    writer.put((run.id, "other", 3.0, 0, 100))
    time.sleep(0.1)
    assert sink.most_at_once == 1
    sink.gate.set()
    writer.flush(10)
    assert [m.value for m in store.metric_history(run.id, "x")] == [1.0, 2.0]
    assert store.get_run(run.id).metrics == {"x": 2.0, "other": 3.0}
    writer.close(5)


def test_batches_of_different_runs_go_at_once(store: SqlTrackingStore) -> None:
    a, b = store.create_run(project="p"), store.create_run(project="p")
    sink = Gated(store)
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    writer.put((a.id, "x", 1.0, 5, 100))
    _wait_until(lambda: writer._sending == 1)
    writer.put((b.id, "x", 2.0, 5, 100))
    _wait_until(lambda: writer._sending == 2)
    sink.gate.set()
    writer.flush(10)
    assert store.get_run(a.id).metrics == {"x": 1.0}
    assert store.get_run(b.id).metrics == {"x": 2.0}
    writer.close(5)


def test_a_failed_batch_loses_nothing_of_the_next_one(store: SqlTrackingStore) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    sink.fail_first = Conflict("the store refused batch 1")
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    _two_in_flight(writer, run.id)
    sink.gate.set()
    with pytest.raises(Conflict, match="refused batch 1") as caught:
        writer.flush(10)
    assert "keel: 10 metric points were not written because of this error" in (
        caught.value.__notes__
    )
    assert [m.step for m in store.metric_history(run.id, "x")] == list(range(10, 20))
    writer.flush(10)  # reported once
    writer.close(5)


def test_a_retried_batch_committed_after_the_next_keeps_order_and_latest_value(
    store: SqlTrackingStore,
) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    sink.fail_first = StoreUnavailable("metadata store: connection reset")
    writer = MetricWriter(sink, queue_size=1000, batch_size=10)
    _two_in_flight(writer, run.id)
    sink.gate.set()
    writer.flush(10)  # batch 1 was retried and committed after batch 2
    assert sink.calls == 3
    history = store.metric_history(run.id, "x")
    assert [m.step for m in history] == list(range(20))
    assert store.get_run(run.id).metrics == {"x": 19.0}
    writer.close(5)


def test_in_flight_must_be_at_least_one(store: SqlTrackingStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        MetricWriter(store, queue_size=10, batch_size=10, in_flight=0)
    assert caught.value.field == "in_flight"


def test_one_in_flight_sends_one_batch_at_a_time(store: SqlTrackingStore) -> None:
    run = store.create_run(project="p")
    sink = Gated(store)
    writer = MetricWriter(sink, queue_size=1000, batch_size=10, in_flight=1)
    for step in range(30):
        writer.put((run.id, "x", float(step), step, 1))
    threading.Timer(0.1, sink.gate.set).start()
    writer.flush(10)
    assert sink.most_at_once == 1
    assert [m.step for m in store.metric_history(run.id, "x")] == list(range(30))
    writer.close(5)


# -- PostgreSQL: the metrics table has no per-row foreign-key check (migration 0008) ------------


def _metric_rows(url: str, run_id: str) -> int:
    import sqlalchemy as sa

    from keel.db import connect

    with connect(url).connect() as conn:
        query = sa.text("SELECT count(*) FROM metrics WHERE run_id = :r")
        return int(conn.execute(query, {"r": run_id}).scalar_one())


def test_postgresql_metrics_have_no_foreign_key_and_a_hard_delete_removes_them(
    pg_url: str,
) -> None:
    import sqlalchemy as sa

    from keel.db import connect

    store = SqlTrackingStore(pg_url)
    run, kept = store.create_run(project="p"), store.create_run(project="p")
    for r in (run, kept):
        store.log_batch(r.id, metrics=[Metric("x", float(i), i, 1) for i in range(50)])
    assert sa.inspect(connect(pg_url)).get_foreign_keys("metrics") == []
    store.delete_run(run.id, hard=True)
    assert _metric_rows(pg_url, run.id) == 0
    assert _metric_rows(pg_url, kept.id) == 50
    store.close()


def test_postgresql_a_batch_committing_during_a_hard_delete_leaves_no_orphans(
    pg_url: str,
) -> None:
    from keel.db import connect
    from keel.tracking import _sql_log
    from keel.tracking._metric_columns import MetricColumns

    store = SqlTrackingStore(pg_url)
    run = store.create_run(project="p")
    engine = connect(pg_url)
    with engine.connect() as conn:
        conn.begin()
        # A batch holding the run's share lock, not yet committed.
        _sql_log.log_batch(
            conn,
            run.id,
            metric_rows=MetricColumns(
                ["x"] * 100, [float(i) for i in range(100)], range(100), [1] * 100
            ),
            param_values={},
            tag_values={},
        )
        deleter = threading.Thread(target=store.delete_run, args=(run.id,), kwargs={"hard": True})
        deleter.start()
        time.sleep(0.3)
        assert deleter.is_alive()  # waits for the batch's lock on the run
        conn.commit()
    deleter.join(10)
    assert not deleter.is_alive()
    assert _metric_rows(pg_url, run.id) == 0
    with pytest.raises(NotFound, match="does not exist"):  # later batches find no run
        store.log_batch(run.id, metrics=[Metric("x", 1.0, 0, 1)])
    store.close()
