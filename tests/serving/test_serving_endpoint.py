"""``Endpoint`` and the hot-swap check on real loaded models, without HTTP: a new version with
another signature is refused and nothing changes; a failed load is remembered (not retried
until the target moves); a full shadow queue drops and counts; answers carry their version."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.serving import ModelHost
from keel.serving._deployments import Deployment, Mode
from keel.serving._endpoint import Endpoint
from keel.serving._payload import Inputs
from keel.serving._record import PredictionRecord
from keel.serving._reload import Target, check


def _ab(a: float) -> Inputs:
    cols = {"a": np.array([a]), "b": np.array([0.0])}
    return Inputs(columns=cols, tensor=None, rows=1)


def test_another_signature_is_refused_and_nothing_changes(loaded: Any) -> None:
    async def run() -> None:
        endpoint = Endpoint("diff", ModelHost.from_loaded(loaded["diff"]))
        await endpoint.start()
        try:
            with pytest.raises(InvalidInput) as info:
                await endpoint.apply(
                    deployment=None, champion=(loaded["churn"], "9"), challenger=None
                )
            assert info.value.field == "champion"
            answer = await endpoint.answer(_ab(3.0), None)
            assert answer.version == endpoint.champion.version and answer.role == "champion"
        finally:
            await endpoint.stop()

    asyncio.run(run())


def test_a_failed_load_is_reported_once_until_the_target_moves(loaded: Any) -> None:
    calls: list[int] = []

    def load(model: str, version: int) -> Any:
        calls.append(version)
        if version == 7:
            raise RuntimeError("cannot load v7")
        return loaded["diff"]

    async def run() -> None:
        host = ModelHost.from_loaded(loaded["diff"])
        endpoint = Endpoint("diff", host)
        await endpoint.start()
        try:
            target = Target("diff", 7)
            assert await check(endpoint, lambda: target, load=load) is False
            assert await check(endpoint, lambda: target, load=load) is False
            assert calls == [7] and "cannot load v7" in (endpoint.load_error or "")
            assert endpoint.champion.version == host.version
            moved = Target("diff", 8)
            assert await check(endpoint, lambda: moved, load=load) is True
            assert endpoint.load_error is None and endpoint.champion.version == "8"
            answer = await endpoint.answer(_ab(1.0), None)
            assert answer.version == "8"
        finally:
            await endpoint.stop()

    asyncio.run(run())


def test_a_full_shadow_queue_drops_and_counts(loaded: Any) -> None:
    async def run() -> None:
        champion = ModelHost.from_loaded(loaded["diff"])
        sleepy = ModelHost.from_loaded(loaded["sleepy"])
        deployment = Deployment(name="d", model="diff", champion=1, challenger=2, mode=Mode.SHADOW)
        endpoint = Endpoint(
            "d", champion, challenger=sleepy, deployment=deployment, shadow_queue=2, shadow_tasks=1
        )
        await endpoint.start()
        try:
            inputs = Inputs(
                columns={"a": np.array([1.0]), "sleep": np.array([0.2])}, tensor=None, rows=1
            )
            record = PredictionRecord(
                request_id="r",
                model="diff",
                version="1",
                route="invocations",
                inputs=inputs,
                outputs=np.array([1.0]),
                latency_ms=1.0,
                timestamp_ms=0,
            )
            assert endpoint.shadows()
            for _ in range(10):
                endpoint.send_to_shadow(record)
            await asyncio.sleep(0)
            assert 7 <= endpoint.shadow_dropped <= 8
            assert endpoint.detail()["shadow_dropped"] == endpoint.shadow_dropped
        finally:
            await endpoint.stop(drain_s=0.01)

    asyncio.run(run())


def test_a_dropped_challenger_is_stopped_once_idle(loaded: Any) -> None:
    async def run() -> None:
        champion = ModelHost.from_loaded(loaded["diff"])
        challenger = ModelHost("diff", loaded["diff"], version="2", settings=champion.settings)
        deployment = Deployment(
            name="d", model="diff", champion=1, challenger=2, mode=Mode.CANARY, percent=50.0
        )
        endpoint = Endpoint("d", champion, challenger=challenger, deployment=deployment)
        await endpoint.start()
        try:
            assert challenger.batcher.running
            single = Deployment(name="d", model="diff", champion=1, revision=2)
            await endpoint.apply(
                deployment=single, champion=None, challenger=None, drop_challenger=True
            )
            assert endpoint.challenger is None and endpoint.detail()["mode"] == "single"
            for _ in range(100):
                if not challenger.batcher.running:
                    break
                await asyncio.sleep(0.02)
            assert not challenger.batcher.running
            answer = await endpoint.answer(_ab(2.0), "any-key")
            assert answer.role == "champion"
        finally:
            await endpoint.stop()

    asyncio.run(run())
