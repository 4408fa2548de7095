"""Every route and payload shape of the inference app, over a live uvicorn server: MLflow's
four ``/invocations`` shapes, Open Inference Protocol v2, probes, metadata, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from serving_support import churn_frame, serving

from keel.serving import ModelHost


@pytest.fixture
def client(loaded: dict[str, Any]) -> Iterator[Any]:
    churn = ModelHost.from_loaded(loaded["churn"])
    tensor = ModelHost.from_loaded(loaded["tensor"])
    with serving({"churn": churn, "tensor": tensor}) as c:
        yield c


def _expected(loaded: dict[str, Any], frame: Any) -> list[int]:
    return [int(v) for v in loaded["churn"].predict(frame)]


def test_invocations_accepts_every_mlflow_payload_shape(client: Any, loaded: Any) -> None:
    x = churn_frame(5, seed=3)
    want = _expected(loaded, x)
    rows = x.to_dict(orient="records")
    bodies = {
        "dataframe_split": {"columns": list(x.columns), "data": x.to_numpy().tolist()},
        "dataframe_records": rows,
        "inputs": {c: x[c].tolist() for c in x.columns},
        "instances": rows,
    }
    for key, value in bodies.items():
        r = client.post("/invocations", json={key: value})
        assert r.status_code == 200, (key, r.text)
        assert r.json() == {"predictions": want}, key
        assert r.headers["content-type"] == "application/json"


def test_split_columns_in_any_order(client: Any, loaded: Any) -> None:
    x = churn_frame(3, seed=4)
    cols = ["plan", "charges", "tenure"]
    body = {"dataframe_split": {"columns": cols, "data": x[cols].to_numpy().tolist()}}
    assert client.post("/invocations", json=body).json()["predictions"] == _expected(loaded, x)


def test_v2_infer_on_a_table_model(client: Any, loaded: Any) -> None:
    x = churn_frame(4, seed=5)
    body = {
        "id": "req-1",
        "inputs": [
            {"name": "tenure", "shape": [4], "datatype": "INT64", "data": x["tenure"].tolist()},
            {
                "name": "charges",
                "shape": [4, 1],
                "datatype": "FP64",
                "data": [[v] for v in x["charges"]],
            },
            {"name": "plan", "shape": [4], "datatype": "BYTES", "data": x["plan"].tolist()},
        ],
    }
    r = client.post("/v2/models/churn/infer", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model_name"] == "churn" and got["model_version"] == "1" and got["id"] == "req-1"
    (out,) = got["outputs"]
    assert out["shape"] == [4] and out["datatype"] == "INT64"
    assert out["data"] == _expected(loaded, x)


def test_tensor_model_over_both_protocols(client: Any, loaded: Any) -> None:
    arr = np.random.default_rng(9).normal(size=(3, 3))
    want = loaded["tensor"].predict(arr)
    v2 = {
        "inputs": [
            {"name": "input", "shape": [3, 3], "datatype": "FP64", "data": arr.ravel().tolist()}
        ]
    }
    r = client.post("/v2/models/tensor/infer", json=v2)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["outputs"][0]["data"], want)
    # /invocations answers with the first host (churn) only; the tensor model via v2 only.
    r = client.post("/invocations", json={"inputs": arr.tolist()})
    assert r.status_code == 422 and r.json()["field"] == "inputs"


def test_tensor_model_invocations(loaded: Any) -> None:
    arr = np.random.default_rng(2).normal(size=(2, 3))
    with serving({"tensor": ModelHost.from_loaded(loaded["tensor"])}) as c:
        for key in ("inputs", "instances"):
            r = c.post("/invocations", json={key: arr.tolist()})
            assert r.status_code == 200, r.text
            assert np.allclose(r.json()["predictions"], loaded["tensor"].predict(arr))
        r = c.post("/invocations", json={"inputs": [[1.0, 2.0]]})
        assert r.status_code == 422 and "shape" in r.json()["error"]


def test_probes_and_metadata(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready").json()
    assert ready["ready"] is True
    assert ready["models"]["churn"]["champion"] == "1"
    assert ready["models"]["churn"]["load_error"] is None
    assert client.get("/ping").status_code == 200
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    meta = client.get("/v2/models/churn").json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert meta["platform"] == "keel-sklearn"
    assert meta["inputs"] == [
        {"name": "tenure", "datatype": "INT64", "shape": [-1]},
        {"name": "charges", "datatype": "FP64", "shape": [-1]},
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
    ]
    assert client.get("/v2").json()["name"] == "keel"
    for path in ("/v2/models/nope", "/v2/models/nope/ready"):
        r = client.get(path)
        assert r.status_code == 404 and "churn" in r.json()["error"]
    r = client.post("/v2/models/nope/infer", json={"inputs": []})
    assert r.status_code == 404


def test_openapi_lists_the_signature_columns(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    shapes = {next(iter(s["properties"])): s for s in body["schema"]["oneOf"]}
    assert set(shapes) == {"dataframe_split", "dataframe_records", "inputs", "instances"}
    record = shapes["dataframe_records"]["properties"]["dataframe_records"]["items"]
    assert record["required"] == ["tenure", "charges", "plan"]
    assert record["properties"]["tenure"]["type"] == "integer"
    assert record["properties"]["plan"]["type"] == "string"
    split = shapes["dataframe_split"]["properties"]["dataframe_split"]["properties"]
    assert split["columns"]["items"]["enum"] == ["tenure", "charges", "plan"]
    v2 = spec["paths"]["/v2/models/churn/infer"]["post"]["requestBody"]["content"]
    names = [
        i["properties"]["name"]["const"]
        for i in v2["application/json"]["schema"]["properties"]["inputs"]["items"]["anyOf"]
    ]
    assert names == ["tenure", "charges", "plan"]
    assert "/v2/models/tensor/infer" in spec["paths"]


def test_swap_keeps_routes_and_refuses_another_signature(loaded: Any) -> None:
    from keel.errors import InvalidInput

    host = ModelHost.from_loaded(loaded["churn"])
    with pytest.raises(InvalidInput) as err:
        host.swap(loaded["diff"], version="2")
    assert err.value.field == "signature"
    x = churn_frame(2, seed=8)
    with serving({"churn": host}) as client:
        body = {"dataframe_records": x.to_dict(orient="records")}
        assert client.post("/invocations", json=body).headers["keel-model-version"] == "churn/1"
        host.swap(loaded["churn"], version="7")
        r = client.post("/invocations", json=body)
        assert r.status_code == 200 and r.headers["keel-model-version"] == "churn/7"
        assert r.json()["predictions"] == _expected(loaded, x)
        assert 'version="7"' in client.get("/metrics").text
