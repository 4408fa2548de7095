"""The micro-batcher on its own event loop: order, batch bounds, and a clean stop that answers
every waiting request instead of leaving it hanging."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from keel.serving import Overloaded, ServingSettings
from keel.serving._batcher import MicroBatcher


def test_answers_keep_order_and_batches_respect_the_bound() -> None:
    calls: list[list[int]] = []

    def predict(payloads: Sequence[Any]) -> np.ndarray:
        calls.append([len(p) for p in payloads])
        time.sleep(0.01)
        return np.concatenate([np.asarray(p) * 10 for p in payloads])

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(predict, settings=ServingSettings(max_batch_size=5))
        payloads = [list(range(i, i + 1 + i % 3)) for i in range(30)]
        out = await asyncio.gather(*(batcher.submit(p, len(p)) for p in payloads))
        await batcher.stop()
        for p, got in zip(payloads, out, strict=True):
            assert got.tolist() == [v * 10 for v in p]
        return out

    asyncio.run(main())
    assert all(sum(c) <= 5 for c in calls), calls
    assert max(len(c) for c in calls) > 1, calls


def test_stop_answers_waiting_requests_with_503() -> None:
    release = threading.Event()

    def predict(payloads: Sequence[Any]) -> np.ndarray:
        release.wait(5)
        return np.zeros(sum(len(p) for p in payloads))

    async def main() -> None:
        batcher = MicroBatcher(
            predict, settings=ServingSettings(max_batch_size=1, max_queue=10, timeout_s=30)
        )
        tasks = [asyncio.ensure_future(batcher.submit([1], 1)) for _ in range(4)]
        await asyncio.sleep(0.1)  # one running, three queued
        t0 = time.perf_counter()
        await batcher.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert time.perf_counter() - t0 < 1
        assert all(isinstance(r, Overloaded) for r in results), results
        release.set()

    asyncio.run(main())


def test_a_full_queue_raises_overloaded_with_retry_after() -> None:
    release = threading.Event()

    def predict(payloads: Sequence[Any]) -> np.ndarray:
        release.wait(5)
        return np.zeros(len(payloads))

    async def main() -> None:
        batcher = MicroBatcher(
            predict, settings=ServingSettings(max_batch_size=1, max_queue=1, retry_after_s=3)
        )
        first = asyncio.ensure_future(batcher.submit([1], 1))
        await asyncio.sleep(0.05)  # taken by the worker
        second = asyncio.ensure_future(batcher.submit([1], 1))
        await asyncio.sleep(0.01)  # waits in the queue
        with pytest.raises(Overloaded) as err:
            await batcher.submit([1], 1)
        assert err.value.retry_after == 3
        release.set()
        assert len(await first) == 1 and len(await second) == 1
        await batcher.stop()

    asyncio.run(main())


def test_a_lone_client_does_not_wait_for_company() -> None:
    def predict(payloads: Sequence[Any]) -> np.ndarray:
        return np.concatenate([np.asarray(p) for p in payloads])

    async def main() -> float:
        batcher = MicroBatcher(predict, settings=ServingSettings(max_latency_ms=500))
        t0 = time.perf_counter()
        for i in range(5):
            assert (await batcher.submit([i], 1)).tolist() == [i]
        elapsed = time.perf_counter() - t0
        # a burst makes the next batch wait up to max_latency_ms to gather more
        out = await asyncio.gather(*(batcher.submit([i], 1) for i in range(3)))
        assert [o.tolist() for o in out] == [[0], [1], [2]]
        await batcher.stop()
        return elapsed

    assert asyncio.run(main()) < 0.25  # five sequential requests, none waited 500 ms
