"""Failed requests in the prediction log, end to end through a served deployment: every
request is one or more log rows with its HTTP ``status``; a failure has no outputs, and its
inputs only when its body passed the signature check (never an unparseable body, never an
overload rejection's)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deploy_support import body, served

from keel.serving import Deployment, DeploymentSettings, open_deployments, read_predictions
from keel.serving._factory import ServeSpec


def _create(name: str, champion: int, **settings: Any) -> None:
    deployments = open_deployments()
    deployments.create(
        Deployment(
            name=name, model="dm", champion=champion, settings=DeploymentSettings(**settings)
        )
    )
    deployments.store.close()


def _rows(name: str, start: int) -> dict[str, list[dict[str, Any]]]:
    """The log rows of ``name`` grouped by request id."""
    table = read_predictions(name, start=start, end=int(time.time() * 1000) + 1000)
    assert table.schema.field("status").type.bit_width == 32
    out: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        out.setdefault(row["request_id"], []).append(row)
    return out


def test_client_errors_are_logged_with_their_status(dm_home: Path) -> None:
    _create("errs", 1, max_rows=2)
    start = int(time.time() * 1000) - 1000
    three = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 0.0]] * 3}}
    with served(ServeSpec(deployments=("errs",))) as client:
        sent = {
            "ok": client.post("/invocations", json=body(2.0), headers={"keel-request-id": "ok"}),
            "bad-json": client.post(
                "/invocations", content=b"{nope", headers={"keel-request-id": "bad-json"}
            ),
            "no-col": client.post(
                "/invocations",
                json={"dataframe_split": {"columns": ["a"], "data": [[1.0]]}},
                headers={"keel-request-id": "no-col"},
            ),
            "too-many": client.post(
                "/v2/models/errs/infer",
                json={
                    "inputs": [
                        {"name": "a", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
                        {"name": "b", "shape": [3], "datatype": "FP64", "data": [0.0, 0.0, 0.0]},
                    ]
                },
                headers={"keel-request-id": "too-many"},
            ),
            "too-many-split": client.post(
                "/invocations", json=three, headers={"keel-request-id": "too-many-split"}
            ),
        }
    assert {k: r.status_code for k, r in sent.items()} == {
        "ok": 200,
        "bad-json": 400,
        "no-col": 422,
        "too-many": 413,
        "too-many-split": 413,
    }
    rows = _rows("errs", start)
    assert set(rows) == set(sent)
    (ok,) = rows["ok"]
    assert ok["status"] == 200 and ok["input.a"] == 2.0
    assert abs(ok["output.prediction"] - 2.0) < 1e-6
    for rid, status in (("bad-json", 400), ("no-col", 422)):
        (row,) = rows[rid]  # one row, nothing of the body: it did not parse
        assert row["status"] == status and row["input.a"] is None
        assert row["output.prediction"] is None
        assert row["role"] == "champion" and row["model_version"] == "1"
    # It parsed (then was refused as too large): its inputs are logged, one row each.
    assert [r["input.a"] for r in rows["too-many"]] == [1.0, 2.0, 3.0]
    assert {r["status"] for r in rows["too-many"] + rows["too-many-split"]} == {413}
    assert all(r["output.prediction"] is None for r in rows["too-many"])


def test_model_errors_timeouts_and_overload_are_logged(dm_home: Path) -> None:
    _create("raises", 4)  # v4 raises on every batch (a model's own error: 422, field input)
    _create("slow", 5, timeout_s=0.05)  # v5 takes 200 ms: every call times out
    _create("busy", 5, max_batch_size=1, max_queue=1)  # one running, one waiting, rest 503
    start = int(time.time() * 1000) - 1000
    spec = ServeSpec(deployments=("raises", "slow", "busy"))
    with served(spec) as client:
        r_model = client.post(
            "/v2/models/raises/infer", json=_v2(7.0), headers={"keel-request-id": "m"}
        )
        r_timeout = client.post(
            "/v2/models/slow/infer", json=_v2(8.0), headers={"keel-request-id": "t"}
        )

        def busy(i: int) -> int:
            r = client.post(
                "/v2/models/busy/infer", json=_v2(float(i)), headers={"keel-request-id": f"b{i}"}
            )
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(busy, range(8)))
    assert (r_model.status_code, r_timeout.status_code) == (422, 504)
    assert r_model.json()["field"] == "input"
    assert set(codes) == {200, 503}, codes

    (model_error,) = _rows("raises", start)["m"]  # it reached the model: inputs logged
    assert model_error["status"] == 422 and model_error["input.a"] == 7.0
    assert "output.prediction" not in model_error  # no request of that log had outputs
    (timeout,) = _rows("slow", start)["t"]
    assert timeout["status"] == 504 and timeout["input.a"] == 8.0

    busy_rows = _rows("busy", start)
    assert len(busy_rows) == 8  # every request, answered or turned away
    statuses = {rid: rows[0]["status"] for rid, rows in busy_rows.items()}
    assert sorted(statuses.values()) == sorted(codes)
    for rid, rows in busy_rows.items():
        (row,) = rows
        if row["status"] == 503:
            assert row["input.a"] is None  # rejections are logged without their inputs
        else:
            assert (
                row["input.a"] == float(rid[1:])
                and row["output.prediction"] == row["input.a"] - 1000
            )


def _v2(a: float) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [a]},
            {"name": "b", "shape": [1], "datatype": "FP64", "data": [0.0]},
        ]
    }
