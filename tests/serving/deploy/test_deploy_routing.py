"""Deployments served for real: a shadow challenger that fails or is slow changes neither the
champion's answers nor its latency, and its answers are logged as the challenger's; a canary
splits traffic by the requested share, sticky per key, and says which version answered."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from deploy_support import body, served, version_of

from keel.serving import Deployment, Mode, open_deployments, read_predictions
from keel.serving._factory import ServeSpec


def _deploy(name: str, **fields: Any) -> None:
    deployments = open_deployments()
    deployments.create(Deployment(name=name, model="dm", champion=1, **fields))
    deployments.store.close()


def _champion_latency_ms(client: httpx.Client, n: int = 120) -> tuple[float, list[str]]:
    laps, computed = [], []
    for i in range(20):  # warm-up: first predict calls, connection, allocator
        client.post("/invocations", json=body(float(i)))
    for i in range(n + 1):
        a = float(i)
        t0 = time.perf_counter()
        r = client.post("/invocations", json=body(a))
        lap = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, r.text
        assert r.headers["keel-model-version"] == "dm/1"
        computed.append(version_of(a, r.json()["predictions"][0]))
        if i:
            laps.append(lap)
    return statistics.median(laps), computed


def _metric(client: httpx.Client, name: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_bad_shadow_changes_neither_answers_nor_latency(dm_home: Path) -> None:
    _deploy("solo")
    _deploy("shadow-raise", challenger=4, mode=Mode.SHADOW)
    _deploy("shadow-slow", challenger=5, mode=Mode.SHADOW)
    medians = {}
    for name in ("solo", "shadow-raise", "shadow-slow"):
        spec = ServeSpec(deployments=(name,), prediction_log=False)
        with served(spec) as client:
            medians[name], computed = _champion_latency_ms(client)
            assert set(computed) == {"1"}  # the champion answered every request
            if name == "shadow-raise":
                assert _metric(client, "keel_serving_shadow_errors_total") > 0
            if name == "shadow-slow":
                # 200 ms per challenger batch: most copies wait or are dropped, none is seen.
                detail = client.get("/v2/health/ready").json()["models"][name]
                assert detail["challenger"] == "5" and detail["mode"] == "shadow"
    print("champion median latency, ms:", medians)
    alone = medians["solo"]
    for name in ("shadow-raise", "shadow-slow"):
        # A shadow on the request path would add >= 200 ms (slow) or fail requests (raise).
        assert medians[name] < max(3 * alone, alone + 25), medians


def test_shadow_answers_are_logged_as_the_challenger(dm_home: Path) -> None:
    _deploy("shadow-log", challenger=2, mode=Mode.SHADOW)
    start = int(time.time() * 1000) - 1000
    n = 30
    with served(ServeSpec(deployments=("shadow-log",))) as client:
        for i in range(n):
            r = client.post(
                "/invocations", json=body(float(i)), headers={"keel-request-id": f"s-{i}"}
            )
            assert r.status_code == 200 and version_of(float(i), r.json()["predictions"][0]) == "1"
    rows = read_predictions("shadow-log", start=start, end=int(time.time() * 1000) + 1000)
    by_role: dict[str, list[dict[str, Any]]] = {}
    for row in rows.to_pylist():
        by_role.setdefault(row["role"], []).append(row)
    assert len(by_role["champion"]) == n and len(by_role["challenger"]) == n
    for row in by_role["challenger"]:
        assert row["model_version"] == "2"
        assert version_of(row["input.a"], row["output.prediction"]) == "2"
    assert {r["request_id"] for r in by_role["challenger"]} == {f"s-{i}" for i in range(n)}


def test_canary_split_is_close_to_the_percent_and_sticky(dm_home: Path) -> None:
    _deploy("canary", challenger=2, mode=Mode.CANARY, percent=30.0, sticky_key="a")
    start = int(time.time() * 1000) - 1000
    n = 2000
    with served(ServeSpec(deployments=("canary",))) as client:
        seen = {"1": 0, "2": 0}
        for i in range(n):
            r = client.post("/invocations", json=body(0.0), headers={"keel-route-key": f"user-{i}"})
            assert r.status_code == 200
            version = r.headers["keel-model-version"].split("/")[1]
            assert version_of(0.0, r.json()["predictions"][0]) == version  # header is true
            seen[version] += 1
        assert abs(seen["2"] / n - 0.30) < 0.04, seen
        # The same key always lands on the same side (header, or the sticky column `a`).
        for i in range(20):
            sides = {
                client.post(
                    "/invocations", json=body(1.0), headers={"keel-route-key": f"user-{i}"}
                ).headers["keel-model-version"]
                for _ in range(4)
            }
            assert len(sides) == 1
        for a in range(20):
            answers = {
                version_of(
                    float(a),
                    client.post("/invocations", json=body(float(a))).json()["predictions"][0],
                )
                for _ in range(4)
            }
            assert len(answers) == 1
    rows = read_predictions("canary", start=start, end=int(time.time() * 1000) + 1000)
    roles = {(r["model_version"], r["role"]) for r in rows.to_pylist()}
    assert roles == {("1", "champion"), ("2", "challenger")}
