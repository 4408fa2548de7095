"""The prediction log and feedback of a served deployment: N answered requests are N log
records once the server has shut down (the writer is flushed in the app's lifespan), labels
posted to the server's ``/feedback`` join them, and the logging options apply."""

from __future__ import annotations

import time
from pathlib import Path

from deploy_support import body, served, version_of

from keel.serving import Deployment, open_deployments, read_predictions
from keel.serving._factory import ServeSpec


def _create(name: str) -> None:
    deployments = open_deployments()
    deployments.create(Deployment(name=name, model="dm", champion=1))
    deployments.store.close()


def test_every_request_is_logged_and_feedback_joins(dm_home: Path) -> None:
    _create("logged")
    start = int(time.time() * 1000) - 1000
    n = 60
    # The writer flushes every 5 s; this test is quicker, so the records reach Parquet
    # through the flush at shutdown.
    with served(ServeSpec(deployments=("logged",))) as client:
        for i in range(n):
            r = client.post(
                "/invocations", json=body(float(i)), headers={"keel-request-id": f"r-{i}"}
            )
            assert r.status_code == 200
        r = client.post(
            "/feedback",
            json={
                "deployment": "logged",
                "items": [{"request_id": f"r-{i}", "label": i % 2} for i in range(0, n, 3)],
            },
        )
        assert r.status_code == 200 and r.json()["applied"] == n // 3
        bad = client.post("/feedback", json={"deployment": "logged", "request_id": "r-1"})
        assert bad.status_code == 422 and bad.json()["field"].endswith("label")
    rows = read_predictions("logged", start=start, end=int(time.time() * 1000) + 1000)
    records = rows.to_pylist()
    assert len(records) == n
    assert {r["request_id"] for r in records} == {f"r-{i}" for i in range(n)}
    for record in records:
        i = int(record["request_id"].split("-")[1])
        assert record["role"] == "champion" and record["model_version"] == "1"
        assert version_of(record["input.a"], record["output.prediction"]) == "1"
        assert record["label"] == (i % 2 if i % 3 == 0 else None)


def test_log_options_exclude_and_sample(dm_home: Path) -> None:
    _create("opts")
    _create("off")
    start = int(time.time() * 1000) - 1000
    spec = ServeSpec(deployments=("opts",), log_exclude=("b",), log_sample_rate=0.5)
    n = 200
    with served(spec) as client:
        for i in range(n):
            client.post("/invocations", json=body(1.0), headers={"keel-request-id": f"o-{i}"})
    rows = read_predictions("opts", start=start, end=int(time.time() * 1000) + 1000)
    assert "input.a" in rows.column_names and "input.b" not in rows.column_names
    assert 0.35 * n < rows.num_rows < 0.65 * n
    with served(ServeSpec(deployments=("off",), prediction_log=False)) as client:
        assert client.post("/invocations", json=body(1.0)).status_code == 200
    empty = read_predictions("off", start=start, end=int(time.time() * 1000) + 1000)
    assert empty.num_rows == 0
