"""Adaptive micro-batching: concurrent requests for one model are coalesced into one predict
call, run in one worker thread off the event loop, and answered one by one in order.

- A batch closes at ``max_batch_size`` rows, or ``max_latency_ms`` after its first request.
  The wait is adaptive: it is paid only while traffic is concurrent (the last batch held more
  than one request); a lone client is answered at once, from its own task (when nothing waits
  and nothing runs, the request goes to the worker without passing through the collector).
- One predict call runs at a time, in one worker thread; its result is handed straight back
  to the event loop.
- The queue is bounded: a request arriving when ``max_queue`` wait answers 503 with
  ``Retry-After`` (``Overloaded``); below the bound, load only adds queueing delay.
- A predict call longer than ``timeout_s`` fails its requests with ``PredictTimeout`` (504).
  Python cannot kill a thread, so the stuck one is abandoned (it exits when its call returns)
  and a fresh worker thread serves the next batch.
- When a batch of several requests fails, each request is retried alone, so one bad request
  never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.errors import KeelError, RateLimited
from keel.serving._settings import ServingSettings

_ids = itertools.count(1)


class Overloaded(RateLimited):
    """The model's queue is full (HTTP 503 with ``Retry-After``)."""


class PredictTimeout(KeelError, TimeoutError):
    """A predict call ran past ``timeout_s`` (HTTP 504)."""


class ModelFailed(KeelError):
    """The model raised on input that passed the signature check (HTTP 500)."""


@dataclass(slots=True)
class _Item:
    payload: Any
    rows: int
    future: asyncio.Future[tuple[np.ndarray, Any]]


class _Worker:
    """One daemon thread running jobs in order; abandoned (not joined) if a job hangs. Each
    job's result goes straight to its asyncio future on the submitting loop (one
    ``call_soon_threadsafe``; no concurrent future to wrap and chain)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, future, fn, arg))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, arg = job
            try:
                result, failed = fn(arg), False
            except BaseException as exc:  # noqa: BLE001 - delivered to the waiting request
                result, failed = exc, True
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_deliver, future, result, failed)


def _deliver(future: asyncio.Future[Any], result: Any, failed: bool) -> None:
    if future.done():  # timed out (or the request went away) meanwhile
        return
    if failed:
        future.set_exception(result)
    else:
        future.set_result(result)


def _expire(future: asyncio.Future[Any], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(PredictTimeout(f"the model did not answer within {timeout_s} s"))


class MicroBatcher:
    """Coalesces ``submit(payload, rows)`` calls into ``predict(payloads) -> array`` calls
    whose answer has one entry per row, in submission order.

    ``predict`` may also return ``(array, tag)``: ``submit_tagged`` then hands each request
    the tag of the very call that answered it (the host tags with the model version, so a
    request answered during a hot swap names the version that actually computed it)."""

    def __init__(
        self,
        predict: Callable[[Sequence[Any]], np.ndarray | tuple[np.ndarray, Any]],
        *,
        settings: ServingSettings,
        name: str = "model",
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self._predict = predict
        self._settings = settings
        self._name = name
        self._observe = observe or (lambda _event, _value: None)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Item | None = None
        self._worker: _Worker | None = None
        self._concurrent = False
        self._answering = 0  # batches being answered (by the collector or a lone request)
        self._calling = asyncio.Lock()  # held while a batch is predicted: one call at a time
        self._held = 0  # requests the collector took that wait for the running call
        self._inflight: asyncio.Future[Any] | None = None  # the predict call running now
        self.restarts = 0

    @property
    def depth(self) -> int:
        return self._held + (0 if self._queue is None else self._queue.qsize())

    @property
    def idle(self) -> bool:
        """Nothing waits and no batch is being answered (a retired host may stop now)."""
        return self.depth == 0 and self._carry is None and not self._answering

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start collecting on the running event loop (idempotent)."""
        if self.running:
            return
        self._queue = asyncio.Queue(maxsize=self._settings.max_queue)
        self._worker = _Worker(f"keel-predict-{self._name}-{next(_ids)}")
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Stop collecting; requests still waiting (or in the running batch) get 503."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        closing = Overloaded("the model server is shutting down", retry_after=1)
        waiting = [self._carry] if self._carry is not None else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        _fail(waiting, closing)
        if self._inflight is not None and not self._inflight.done():
            self._inflight.set_exception(closing)  # a lone request's call in its own task
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    async def submit(self, payload: Any, rows: int) -> np.ndarray:
        return (await self.submit_tagged(payload, rows))[0]

    async def submit_tagged(self, payload: Any, rows: int) -> tuple[np.ndarray, Any]:
        """``(this request's rows of the answer, the tag of the call that computed it)``."""
        self.start()
        assert self._queue is not None
        future: asyncio.Future[tuple[np.ndarray, Any]] = asyncio.get_running_loop().create_future()
        item = _Item(payload, rows, future)
        idle = not self._answering and self._carry is None and not self._concurrent
        if idle and self._queue.empty() and not self._calling.locked():
            # A lone request: nothing to batch it with, so it is answered from its own task
            # rather than handed to the collector and back (two task switches).
            self._answering += 1
            try:
                async with self._calling:
                    await self._answer([item])
            finally:
                self._answering -= 1
            return await future
        if self.depth >= self._settings.max_queue:
            retry = self._settings.retry_after_s
            raise Overloaded(
                f"{self._settings.max_queue} requests already wait for this model; "
                f"retry in {retry} s",
                retry_after=retry,
            )
        self._queue.put_nowait(item)
        self._observe("queue_depth", self.depth)
        return await future

    async def _next_batch(self) -> list[_Item]:
        assert self._queue is not None
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch, rows = [first], first.rows
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.max_latency_ms / 1000
        while rows < self._settings.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if not self._concurrent or remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if rows + item.rows > self._settings.max_batch_size:
                self._carry = item
                break
            batch.append(item)
            rows += item.rows
        self._concurrent = len(batch) > 1
        self._observe("queue_depth", self.depth)
        return [i for i in batch if not i.future.done()]  # the client may have gone

    async def _collect(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            self._answering += 1
            self._held = len(batch)  # still waiting: counted against max_queue
            try:
                async with self._calling:
                    self._held = 0
                    await self._answer(batch)
            except asyncio.CancelledError:
                _fail(batch, Overloaded("the model server is shutting down", retry_after=1))
                raise
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                _fail(batch, exc)
            finally:
                self._held = 0
                self._answering -= 1

    async def _call(self, payloads: list[Any]) -> tuple[np.ndarray, Any]:
        """One predict call in the worker thread; the caller holds ``_calling``, so a call
        waiting behind a stuck one goes to the fresh worker once the stuck one timed out."""
        assert self._worker is not None
        started = time.perf_counter()
        timeout_s = self._settings.timeout_s
        future = self._inflight = self._worker.submit(self._predict, payloads)
        timer = asyncio.get_running_loop().call_later(timeout_s, _expire, future, timeout_s)
        try:
            out = await future
        except PredictTimeout:
            self._worker.stop()  # exits once the stuck call returns
            self._worker = _Worker(f"keel-predict-{self._name}-{next(_ids)}")
            self.restarts += 1
            self._observe("worker_restart", 1)
            raise
        finally:
            timer.cancel()
            self._inflight = None
        self._observe("predict_seconds", time.perf_counter() - started)
        if isinstance(out, tuple):
            return np.asarray(out[0]), out[1]
        return np.asarray(out), None

    async def _answer(self, batch: list[_Item]) -> None:
        total = sum(i.rows for i in batch)
        self._observe("batch_rows", total)
        self._observe("batch_requests", len(batch))
        try:
            out, tag = await self._call([i.payload for i in batch])
        except PredictTimeout as exc:
            _fail(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - retried alone, or delivered to the request
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for item in batch:  # isolate the request that broke the batch
                try:
                    alone, alone_tag = await self._call([item.payload])
                    _settle(item, alone, alone_tag, item.rows)
                except Exception as single:  # noqa: BLE001 - goes to that request
                    _fail([item], single)
            return
        if len(out) != total:
            _fail(batch, ModelFailed(f"the model gave {len(out)} answers for {total} rows"))
            return
        start = 0
        for item in batch:
            _settle(item, out[start : start + item.rows], tag, item.rows)
            start += item.rows


def _settle(item: _Item, out: np.ndarray, tag: Any, rows: int) -> None:
    if item.future.done():
        return
    if len(out) != rows:
        item.future.set_exception(ModelFailed(f"the model gave {len(out)} answers for {rows}"))
    else:
        item.future.set_result((out, tag))


def _fail(batch: Sequence[_Item], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
