"""The loop end to end on real parts: a logged scikit-learn model served by the inference app
over uvicorn, the prediction log writer as its ``on_prediction`` hook, labels posted to
``/feedback`` on the same app, and ``read_predictions`` joining them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from serving_support import churn_frame, serving

from keel.artifacts import LocalBackend
from keel.monitoring._feedback import SqlFeedbackStore
from keel.monitoring._predlog import read_predictions
from keel.serving import ModelHost, create_serving_app
from keel.serving._feedback_routes import feedback_router
from keel.serving._predlog import PredictionLogWriter
from live_server import LiveServer


def test_served_predictions_are_logged_labelled_and_read_back(
    loaded: Any, tmp_path: Path, sqlite_url: str
) -> None:
    backend = LocalBackend(tmp_path / "store")
    store = SqlFeedbackStore(sqlite_url)
    writer = PredictionLogWriter(backend, deployment="churn-prod", flush_interval_s=0.05)
    host = ModelHost.from_loaded(loaded["churn"])
    x = churn_frame(20, seed=3)
    started = int(time.time() * 1000)
    answers: dict[str, list[int]] = {}
    with serving({"churn": host}, on_prediction=writer) as client:
        for i in range(10):
            rows = x.iloc[2 * i : 2 * i + 2]
            body = {"dataframe_records": rows.to_dict(orient="records")}
            r = client.post("/invocations", json=body, headers={"keel-request-id": f"req-{i}"})
            assert r.status_code == 200
            answers[f"req-{i}"] = r.json()["predictions"]
    # The feedback route mounted on the serving app itself, as the app will do.
    app = create_serving_app({"churn": ModelHost.from_loaded(loaded["churn"])})
    app.include_router(feedback_router(store))

    with LiveServer(app, lifespan="on") as live, httpx.Client(base_url=live.url) as http:
        items = [{"request_id": f"req-{i}", "label": 10 * i} for i in range(0, 10, 2)]
        r = http.post("/feedback", json={"deployment": "churn-prod", "items": items})
        assert r.status_code == 200 and r.json()["applied"] == 5
    writer.close()
    assert (writer.logged, writer.dropped) == (20, 0)
    table = read_predictions(
        "churn-prod",
        start=started - 1000,
        end=int(time.time() * 1000) + 1000,
        backend=backend,
        feedback_store=store,
    )
    rows = table.to_pylist()
    assert len(rows) == 20
    for row in rows:
        rid = str(row["request_id"])
        i = int(rid.split("-")[1])
        assert row["output.prediction"] == answers[rid][int(row["row"])]
        assert row["input.tenure"] == int(x["tenure"].iloc[2 * i + int(row["row"])])
        assert row["label"] == (10 * i if i % 2 == 0 else None)  # even requests were labelled
    labelled = {str(r["request_id"]) for r in rows if r["label"] is not None}
    assert labelled == {f"req-{i}" for i in range(0, 10, 2)}
