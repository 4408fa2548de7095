"""The monitoring loop end to end on real parts: a scikit-learn model trained on a dataset
version is registered and served through a deployment by the inference app on uvicorn; it
answers traffic from the training distribution, then from a shifted one where the world also
changed (40% of the true labels disagree with the model); the labels arrive later through
``POST /feedback``; the monitor runs over each half against the training data it finds through
lineage; and the drift and performance alerts reach a local webhook receiver, signed."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from .alert_support import receiver

SECRET = "served-e2e-secret"
ROWS = 300  # requests in each half


def frame(rows: int, *, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(shift, 1.0, rows), "z": rng.uniform(0.0, 10.0, rows) + 3 * shift}
    )


def train_and_deploy() -> None:
    """A dataset version, a run that reads it and logs a classifier of ``x > 0`` (registered
    as ``churn`` v1, its lineage naming the dataset), and deployment ``churn`` serving v1."""
    from sklearn.linear_model import LogisticRegression

    import keel
    import keel.data
    import keel.models
    from keel.serving import Deployment, open_deployments

    train = frame(2_000, shift=0.0, seed=0)
    train["label"] = (train["x"] > 0).astype(int)
    ds = keel.data.add(train, name="churn-train")
    x = train[["x", "z"]]
    with keel.start_run(project="e2e", name="train", inputs=[ds]):
        model = LogisticRegression().fit(x, train["label"])
        keel.models.log(model, name="churn", signature_from=x)
    deployments = open_deployments()
    try:
        deployments.create(Deployment(name="churn", model="churn", champion=1))
    finally:
        deployments.registry.close()


def send(http: httpx.Client, rows: pd.DataFrame) -> list[tuple[str, int]]:
    """One single-row request per row; (request id, prediction) of each."""
    answers = []
    for record in rows.to_dict(orient="records"):
        r = http.post("/invocations", json={"dataframe_records": [record]})
        assert r.status_code == 200, r.text
        answers.append((r.headers["keel-request-id"], int(r.json()["predictions"][0])))
    return answers


def test_served_traffic_shift_and_late_labels_raise_signed_alerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keel.monitoring._alerts import add_channel, add_rule, list_alerts
    from keel.monitoring._channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
    from keel.monitoring._monitor import run_monitor
    from keel.monitoring._windows import Window
    from keel.serving._factory import ServeSpec, build_app
    from live_server import LiveServer

    train_and_deploy()
    # Seed 2: a calm sample the KS test at p < 0.05 passes (seed 1 is one of the 5% it flags).
    calm, shifted = frame(ROWS, shift=0.0, seed=2), frame(ROWS, shift=1.5, seed=5)
    rng = np.random.default_rng(3)
    app = build_app(ServeSpec(deployments=("churn",)))
    with (
        LiveServer(app, lifespan="on") as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        started = int(time.time() * 1000)
        first = send(http, calm)
        middle = int(time.time() * 1000) + 1
        time.sleep(0.01)  # the halves' timestamps do not share a millisecond
        second = send(http, shifted)
        ended = int(time.time() * 1000) + 1
        # The truth: x > 0, except that 40% of the second half's labels disagree with it.
        truth_first = [int(v > 0) for v in calm["x"]]
        truth_second = [int(v > 0) ^ int(rng.random() < 0.4) for v in shifted["x"]]
        items = [
            {"request_id": rid, "label": label}
            for (rid, _), label in zip(first + second, truth_first + truth_second, strict=True)
        ]
        r = http.post("/feedback", json={"deployment": "churn", "items": items})
        assert r.status_code == 200 and r.json()["applied"] == 2 * ROWS
    # Leaving the server shut it down, which flushed the prediction log.

    monkeypatch.setenv("KEEL_TEST_SERVED_SECRET", SECRET)
    with receiver() as hook:
        add_channel(
            "ops",
            "webhook",
            {
                "url": hook.url,
                "secret_env": "KEEL_TEST_SERVED_SECRET",
                "allow_http": True,
                "allow_private": True,
            },
        )
        add_rule(
            "drift",
            deployment="churn",
            quantity="drift.share",
            operator=">=",
            threshold=0.5,
            window="any",
            min_samples=100,
            channels=["ops"],
        )
        add_rule(
            "accuracy",
            deployment="churn",
            quantity="performance.accuracy",
            operator="<",
            threshold=0.8,
            window="any",
            min_samples=100,
            channels=["ops"],
        )

        quiet = run_monitor("churn", window=Window(started, middle))
        assert quiet.rows == ROWS and quiet.reference.source == "churn-train@v1"
        assert quiet.drift is not None and quiet.drift.drifted_columns == ()
        q = quiet.quantities()
        assert q["label_coverage"].value == 1.0 and q["performance.accuracy"].value > 0.95
        assert quiet.alerts == () and hook.requests == []

        loud = run_monitor("churn", window=Window(middle, ended))
        assert loud.rows == ROWS
        assert loud.drift is not None and set(loud.drift.drifted_columns) == {"x", "z"}
        assert loud.quantities()["performance.accuracy"].value < 0.8
        assert sorted((a.rule, a.kind) for a in loud.alerts) == [
            ("accuracy", "fired"),
            ("drift", "fired"),
        ]

    assert len(hook.requests) == 2
    bodies = {}
    for request in hook.requests:
        assert verify_signature(
            SECRET.encode(),
            request.body,
            request.headers[TIMESTAMP_HEADER],
            request.headers[SIGNATURE_HEADER],
        )
        body = json.loads(request.body)
        bodies[body["alert"]["rule"]] = body["alert"]
    assert bodies["drift"]["value"] == 1.0 and bodies["drift"]["deployment"] == "churn"
    assert bodies["accuracy"]["value"] < 0.8 and bodies["accuracy"]["n"] == ROWS
    assert {a.rule for a in list_alerts(state="open")} == {"drift", "accuracy"}
