"""The asynchronous, batched metric writer behind ``log_metric``.

The hot path is one C call: points go into a ``queue.SimpleQueue`` (re-entrant, so a signal
handler that flushes cannot deadlock on a lock the interrupted code holds). A daemon thread
drains it and commits up to ``batch_size`` points per ``store.log_batch`` call, grouped by run;
a fast producer therefore gets large batches for free while the previous one commits.

Guarantees:

* Pipelining: up to ``in_flight`` (2) batches are committed at once by sender threads, so the
  next batch is encoded and on the wire while the store commits the previous one. Two batches
  of one run go at once only if, for every key they share, the later one's points all come
  after the earlier one's by (step, timestamp): a metric's history order and latest value never
  depend on which commit lands first. While every sender is busy, points stay queued.
* Bounded memory: a producer that finds ``queue_size`` points queued blocks until the writer
  drains some (back-pressure). The check and the put are not one atomic step, so with several
  producing threads the queue can hold at most one extra point per thread.
* Ordering: ``flush()`` puts a marker in the queue and returns once every point before it is
  committed (or has failed). ``take(run_id)`` does the same for one run, except that the run's
  points still queued are handed to the caller instead of being committed: ``end_run`` stores
  them with the run's final status in one transaction rather than two.
* Nothing vanishes: transient store errors (``StoreUnavailable``) are retried with backoff;
  permanent ones are kept, with the number of points lost, and raised by the next ``flush``.
  At interpreter exit every writer is flushed within ``flush_timeout_s``; what remains is
  reported on stderr with its count.
* Fork safety: a forked child gets an empty writer with fresh threads (the parent keeps and
  writes its own queued points).
"""

from __future__ import annotations

import atexit
import operator
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from keel.errors import InvalidInput, KeelError, StoreError, StoreUnavailable
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import Metric

# (run_id, key, value, step, timestamp_ms): a tuple is ~5x cheaper to build than a Metric.
Point = tuple[str, str, float, int, int]

_IDLE_POLL_S = 1.0
_RETRY_MAX_S = 2.0
_INT64 = 2**63


def metric_value(value: object, field: str = "value") -> float:
    """A metric value as float: a real number (incl. NumPy scalars); bool and text are not."""
    if type(value) is float:
        return value
    if isinstance(value, bool | str | bytes) or not hasattr(type(value), "__float__"):
        raise InvalidInput(f"must be a real number, got {type(value).__name__}", field=field)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"must be a real number: {exc}", field=field) from exc


def integer(value: object, field: str) -> int:
    """An int64 (NumPy integers too); bool is not an integer here."""
    if type(value) is not int:
        if isinstance(value, bool):
            raise InvalidInput("must be an integer, got bool", field=field)
        try:
            value = operator.index(value)  # type: ignore[arg-type]
        except TypeError as exc:
            raise InvalidInput(
                f"must be an integer, got {type(value).__name__}", field=field
            ) from exc
    if not -_INT64 <= value < _INT64:
        raise InvalidInput("out of the int64 range", field=field)
    return value


class MetricSink(Protocol):
    """What the writer needs of a store (``TrackingStore.log_batch`` fits)."""

    def log_batch(self, run_id: str, *, metrics: Sequence[Metric] = ()) -> None: ...


class _Marker:
    """Put in the queue by ``flush``; set once everything queued before it is done."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Take(_Marker):
    """Put in the queue by ``take``: the writer hands over the run's points queued before it."""

    __slots__ = ("_cancelled", "_lock", "handed", "points", "run_id")

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.points: list[Metric] = []
        self.handed = threading.Event()
        self._lock = threading.Lock()
        self._cancelled = False

    def hand_over(self, points: list[Metric]) -> bool:
        """Give ``points`` to the caller; False if it stopped waiting (the writer keeps them)."""
        with self._lock:
            if self._cancelled:
                return False
            self.points = points
            self.handed.set()
            return True

    def cancel(self) -> bool:
        """Stop waiting; False if the points were handed over meanwhile."""
        with self._lock:
            if self.handed.is_set():
                return False
            self._cancelled = True
            return True


class _Job:
    """One run's points from one drained batch, sent by a sender thread."""

    __slots__ = ("metrics", "run_id", "spans")

    def __init__(self, run_id: str, metrics: MetricColumns) -> None:
        self.run_id = run_id
        self.metrics = metrics
        # Per key, the least and greatest (step, timestamp) in this batch.
        keys, steps, stamps = metrics.keys, metrics.steps, metrics.timestamps
        spans: dict[str, list[tuple[int, int]]] = {}
        if len(set(keys)) == 1:  # one metric: C-level min and max
            spans[keys[0]] = [
                min(zip(steps, stamps, strict=True)),
                max(zip(steps, stamps, strict=True)),
            ]
        else:
            for key, at in zip(keys, zip(steps, stamps, strict=True), strict=True):
                span = spans.get(key)
                if span is None:
                    spans[key] = [at, at]
                elif at < span[0]:
                    span[0] = at
                elif at > span[1]:
                    span[1] = at
        self.spans = spans

    def overlaps(self, earlier: _Job) -> bool:
        """Whether committing this before ``earlier`` could change an order or a latest value."""
        if earlier.run_id != self.run_id:
            return False
        theirs = earlier.spans
        for key, (low, _) in self.spans.items():
            span = theirs.get(key)
            if span is not None and low <= span[1]:
                return True
        return False


@dataclass(slots=True)
class _Failure:
    run_id: str
    error: KeelError
    points: int


class MetricWriter:
    """Queue metric points and commit them in batches from a background thread."""

    def __init__(
        self, store: MetricSink, *, queue_size: int, batch_size: int, in_flight: int = 2
    ) -> None:
        if in_flight < 1:
            raise InvalidInput("must be at least 1", field="in_flight")
        self.store = store
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.in_flight = in_flight
        self._closed = False
        self._reset()
        _writers.add(self)

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[Point | _Marker] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._space = threading.Condition()
        self._blocked = 0
        self._grouping = 0  # points the writer thread is grouping into jobs
        self._sending = 0  # points of the jobs being sent
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._active: list[_Job] = []
        self._sent = threading.Condition()
        self._markers = 0  # flush markers in the queue, so that pending() counts points only
        self._failures: list[_Failure] = []
        self._failures_lock = threading.Lock()

    # -- producer side ---------------------------------------------------------------------

    def put(self, point: Point) -> None:
        """Queue one point (validated by the caller); blocks only while the queue is full."""
        if self._thread is None:
            self._start()
        if self._queue.qsize() >= self.queue_size:
            self._wait_for_space()
        self._queue.put(point)

    def put_many(self, points: list[Point]) -> None:
        for point in points:
            self.put(point)

    def _wait_for_space(self) -> None:
        with self._space:
            self._blocked += 1
            try:
                while self._queue.qsize() >= self.queue_size:
                    self._space.wait(0.1)
            finally:
                self._blocked -= 1

    def pending(self) -> int:
        """Points queued or being committed."""
        return max(self._queue.qsize() - self._markers, 0) + self._in_flight

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every point queued so far is committed or has failed; False on timeout."""
        if self._thread is None and self._queue.empty():
            return True
        if self._thread is None:
            self._start()
        marker = _Marker()
        with self._failures_lock:
            self._markers += 1
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def flush(self, timeout: float | None = None, *, run_id: str | None = None) -> None:
        """Wait until every point queued so far is committed, then raise any kept error
        (only those of ``run_id`` when given). ``StoreUnavailable`` if ``timeout`` passes."""
        if not self.wait(timeout):
            raise StoreUnavailable(
                f"{self.pending()} metric points not yet written after {timeout} s; "
                "the metric store is slow or unreachable (they are still queued)"
            )
        self.raise_failures(run_id)

    def take(self, run_id: str, timeout: float | None = None) -> list[Metric]:
        """The points of ``run_id`` queued so far and not yet committed, handed over once every
        earlier batch holding points of that run is committed (or has failed); the caller
        stores them. ``StoreUnavailable`` if ``timeout`` passes (the points stay queued)."""
        if self._thread is None and self._queue.empty():
            return []
        if self._thread is None:
            self._start()
        request = _Take(run_id)
        with self._failures_lock:
            self._markers += 1
        self._queue.put(request)
        if request.handed.wait(timeout) or not request.cancel():
            return request.points
        raise StoreUnavailable(
            f"{self.pending()} metric points not yet written after {timeout} s; "
            "the metric store is slow or unreachable (they are still queued)"
        )

    def discard(self, run_id: str) -> int:
        """Drop the queued points of ``run_id`` (after a flush timed out); returns how many."""
        kept: list[Point | _Marker] = []
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                kept.append(item)
            elif item[0] == run_id:
                dropped += 1
            else:
                kept.append(item)
        for item in kept:
            self._queue.put(item)
        return dropped

    def raise_failures(self, run_id: str | None = None) -> None:
        """Raise the first kept error (noting how many points were lost), and forget them."""
        with self._failures_lock:
            mine = [f for f in self._failures if run_id is None or f.run_id == run_id]
            self._failures = [f for f in self._failures if all(f is not m for m in mine)]
        if not mine:
            return
        first = mine[0].error
        lost = sum(f.points for f in mine)
        first.add_note(f"keel: {lost} metric points were not written because of this error")
        if len(mine) > 1:
            others = "; ".join(f"{type(f.error).__name__}: {f.error}" for f in mine[1:])
            first.add_note(f"keel: {len(mine) - 1} more failed batches: {others}")
        raise first

    def failures_text(self) -> list[str]:
        with self._failures_lock:
            return [
                f"run {f.run_id}: {f.points} points lost: {type(f.error).__name__}: {f.error}"
                for f in self._failures
            ]

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the thread (the writer restarts it if used again)."""
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._markers += 1
                self._queue.put(_Marker())  # wakes the thread so it sees ``_closed``
                thread.join(timeout)
            self._thread = None
            self._closed = False

    # -- consumer side ---------------------------------------------------------------------

    @property
    def _in_flight(self) -> int:
        """Points taken from the queue and not yet committed (being grouped or being sent)."""
        return self._grouping + self._sending

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                # A fresh job queue per start: senders of an earlier start may still be reading
                # their stop sentinels from the old one.
                jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
                self._jobs = jobs
                for n in range(self.in_flight):
                    sender = threading.Thread(
                        target=self._send_loop,
                        args=(jobs,),
                        name=f"keel-metric-sender-{n}",
                        daemon=True,
                    )
                    sender.start()
                thread = threading.Thread(
                    target=self._loop, args=(jobs,), name="keel-metric-writer", daemon=True
                )
                thread.start()
                self._thread = thread

    def _loop(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        q = self._queue
        try:
            while not self._closed:
                # Points stay queued while every sender is busy: the next batch grows, and
                # ``take`` and ``discard`` still find them.
                with self._sent:
                    if len(self._active) >= self.in_flight:
                        self._sent.wait(_IDLE_POLL_S)
                        continue
                try:
                    first = q.get(timeout=_IDLE_POLL_S)
                except queue.Empty:
                    continue
                items = [first]
                count = 0 if isinstance(first, _Marker) else 1
                while count < self.batch_size:
                    try:
                        item = q.get_nowait()
                    except queue.Empty:
                        break
                    items.append(item)
                    if not isinstance(item, _Marker):
                        count += 1
                self._grouping = count
                try:
                    self._commit(items)
                finally:
                    self._grouping = 0
                    self._notify_space()
                markers = [item for item in items if isinstance(item, _Marker)]
                if markers:
                    self._wait_sent(None)
                    for marker in markers:
                        with self._failures_lock:
                            self._markers -= 1
                        marker.done.set()
        finally:
            for _ in range(self.in_flight):
                jobs.put(None)

    def _commit(self, items: list[Point | _Marker]) -> None:
        """Group ``items`` by run and hand each run's points to a sender thread."""
        by_run: dict[str, list[Point]] = {}
        for item in items:
            if type(item) is tuple:
                by_run.setdefault(item[0], []).append(item)
            elif isinstance(item, _Take):
                # Its earlier points must be stored before the caller ends the run.
                self._wait_sent(item.run_id)
                mine = by_run.pop(item.run_id, [])
                if not item.hand_over(list(_columns(mine))) and mine:
                    by_run[item.run_id] = mine  # the caller gave up waiting: write them here
        for run_id, points in by_run.items():
            self._submit(_Job(run_id, _columns(points)))

    def _submit(self, job: _Job) -> None:
        """Start sending ``job`` once a sender is free and no batch in flight overlaps it.

        Two batches of one run are sent at once only if, for every key they share, all of the
        later batch's points come after (step, timestamp) all of the earlier one's: then the
        order in which the store commits them changes neither a metric's history order nor its
        latest value, so pipelining keeps the guarantees of one batch at a time.
        """
        with self._sent:
            while len(self._active) >= self.in_flight or any(
                job.overlaps(other) for other in self._active
            ):
                self._sent.wait()
            self._active.append(job)
            self._sending += len(job.metrics)
        self._jobs.put(job)

    def _wait_sent(self, run_id: str | None) -> None:
        """Wait until no batch (of ``run_id``, when given) is being sent."""
        with self._sent:
            while any(run_id is None or job.run_id == run_id for job in self._active):
                self._sent.wait()

    def _send_loop(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while (job := jobs.get()) is not None:
            try:
                self._commit_run(job.run_id, job.metrics)
            finally:
                with self._sent:
                    self._active.remove(job)
                    self._sending -= len(job.metrics)
                    self._sent.notify_all()

    def _notify_space(self) -> None:
        if self._blocked:
            with self._space:
                self._space.notify_all()

    def _commit_run(self, run_id: str, metrics: MetricColumns) -> None:
        delay = 0.05
        while True:
            try:
                self.store.log_batch(run_id, metrics=metrics)
                return
            except StoreUnavailable as exc:
                if self._closed:
                    self._keep(run_id, exc, len(metrics))
                    return
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
            except KeelError as exc:
                self._keep(run_id, exc, len(metrics))
                return
            except Exception as exc:  # noqa: BLE001 - the thread must survive; raised at next flush
                error = StoreError(f"metric writer: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                self._keep(run_id, error, len(metrics))
                return

    def keep(self, run_id: str, error: KeelError) -> None:
        """Keep an error about ``run_id`` found elsewhere (heartbeat) for its next flush."""
        self._keep(run_id, error, 0)

    def _keep(self, run_id: str, error: KeelError, points: int) -> None:
        with self._failures_lock:
            self._failures.append(_Failure(run_id, error, points))


def _columns(points: list[Point]) -> MetricColumns:
    """Queued points of one run as the columns of one batch (sent as they are)."""
    if not points:
        return MetricColumns([], [], [], [])
    _, keys, values, steps, stamps = zip(*points, strict=True)
    return MetricColumns(keys, values, steps, stamps)


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._reset()


def flush_all_at_exit(timeout: float, report: Callable[[str], object]) -> None:
    """Flush every writer within ``timeout`` in total; report what could not be written."""
    deadline = time.monotonic() + timeout
    for writer in list(_writers):
        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            writer.flush(remaining)
        except StoreUnavailable:
            report(
                f"keel: {writer.pending()} metric points were NOT written: the metric store "
                f"did not take them within flush_timeout_s={timeout:g} s"
            )
        except KeelError as exc:
            report(f"keel: metric points were NOT written: {type(exc).__name__}: {exc}")
            for note in getattr(exc, "__notes__", []):
                report(note)


def _at_exit() -> None:
    from keel.config import get_settings

    if not any(w.pending() or w.failures_text() for w in list(_writers)):
        return
    flush_all_at_exit(get_settings().flush_timeout_s, _stderr)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
