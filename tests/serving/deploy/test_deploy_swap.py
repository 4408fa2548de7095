"""Hot swap under continuous load: moving an alias (or changing a deployment) swaps the new
version in with no failed request, each answer labelled with the version that computed it; a
version that fails to load leaves the previous one serving and shows in readiness and metrics."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from deploy_support import Hammer, body, served, version_of

import keel.models
from keel.serving import Deployment, Mode, open_deployments
from keel.serving._factory import ServeSpec


def _wait_ready_detail(client: httpx.Client, name: str, key: str, *, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = client.get("/v2/health/ready").json()["models"][name]
        if detail.get(key):
            return dict(detail)
        time.sleep(0.05)
    raise AssertionError(f"{key} never showed: {detail}")


def test_alias_moves_under_load_without_a_failed_request(dm_home: Path) -> None:
    keel.models.set_alias("dm", "live", 1)
    with served(ServeSpec(model="dm@live", poll_s=0.2)) as client:
        url = str(client.base_url)
        with Hammer(url) as hammer:
            hammer.wait_for("1")
            keel.models.set_alias("dm", "live", 2)
            hammer.wait_for("2")
            time.sleep(0.3)
            keel.models.set_alias("dm", "live", 3)  # v3 cannot be loaded here
            detail = _wait_ready_detail(client, "dm", "load_error")
            assert "v3" in detail["load_error"] and detail["champion"] == "2"
            time.sleep(0.5)  # v3 is not retried on every poll, and v2 keeps answering
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        metrics = client.get("/metrics").text
        assert 'keel_model_load_failures_total{endpoint="dm",model="dm",version="3"} 1.0' in (
            metrics
        )
        assert 'keel_serving_served_version{endpoint="dm",model="dm",role="champion"} 2.0' in (
            metrics
        )
    statuses = {status for status, _, _ in hammer.results}
    assert statuses == {200}, statuses
    assert len(hammer.results) > 50
    # Every answer names the version that computed it, including those answered mid-swap.
    for _, header, computed in hammer.results:
        assert header == f"dm/{computed}"
    computed = [c for _, _, c in hammer.results]
    switch = computed.index("2")
    assert set(computed[:switch]) == {"1"} and set(computed[switch:]) == {"2"}


def test_a_changed_deployment_is_swapped_in(dm_home: Path) -> None:
    deployments = open_deployments()
    deployments.create(Deployment(name="swap-dep", model="dm", champion=1))
    with served(ServeSpec(deployments=("swap-dep",), poll_s=0.2)) as client:
        with Hammer(str(client.base_url)) as hammer:
            hammer.wait_for("1")
            deployments.set("swap-dep", champion=2)
            hammer.wait_for("2")
            # A challenger added on the fly: the shadow starts getting copies.
            deployments.set("swap-dep", challenger=1, mode=Mode.SHADOW)
            detail = _wait_ready_detail(client, "swap-dep", "challenger")
            assert detail == {**detail, "champion": "2", "challenger": "1", "revision": 3}
            r = client.post("/invocations", json=body(4.0))
            assert version_of(4.0, r.json()["predictions"][0]) == "2"
            # New limits: new hosts take over, the old ones retire once idle.
            ten = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]] * 10}}
            assert client.post("/invocations", json=ten).status_code == 200
            deployments.set("swap-dep", settings={"max_rows": 5, "max_batch_size": 4})
            deadline = time.monotonic() + 20
            while client.post("/invocations", json=ten).status_code != 413:
                assert time.monotonic() < deadline, "the new max_rows never applied"
                time.sleep(0.05)
            detail = client.get("/v2/health/ready").json()["models"]["swap-dep"]
            assert (detail["revision"], detail["champion"], detail["challenger"]) == (4, "2", "1")
            assert detail["load_error"] is None
            time.sleep(0.3)
    deployments.store.close()
    assert {status for status, _, _ in hammer.results} == {200}
    assert hammer.results[-1][2] == "2"
