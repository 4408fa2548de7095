"""Bad input answers 4xx naming the column, limits answer 413, outputs that JSON cannot carry
become null with a flag, and every response carries the request id and model version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from serving_support import serving

from keel.errors import InvalidInput
from keel.serving import ModelHost, ServingSettings

ROW = {"tenure": 12, "charges": 80.5, "plan": "pro"}


@pytest.fixture
def client(loaded: dict[str, Any]) -> Iterator[Any]:
    settings = ServingSettings(max_rows=5, max_body_bytes=4096)
    with serving({"churn": ModelHost.from_loaded(loaded["churn"], settings=settings)}) as c:
        yield c


def _records(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"dataframe_records": list(rows)}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (_records({"tenure": 3, "charges": 1.0}), "plan", "missing column"),
        ({"inputs": {"tenure": [3], "plan": ["pro"]}}, "charges", "missing column"),
        (_records({**ROW, "charges": "high"}), "charges", "expected float64"),
        (_records({**ROW, "tenure": 2.5}), "tenure", "expected int64"),
        (_records({**ROW, "tenure": True}), "tenure", "expected int64"),
        (_records({**ROW, "plan": 3}), "plan", "expected str"),
        (_records({**ROW, "charges": [1, 2]}), "charges", "nested"),
        (_records(ROW, {**ROW, "tenure": None}), "tenure", "null in row 1"),
        (_records(ROW, {"charges": 1.0, "plan": "pro"}), "tenure", "null in row 1"),
        (_records({**ROW, "extra": 1}), "extra", "unknown column"),
        (
            {"dataframe_split": {"columns": ["tenure", "charges"], "data": [[1, 2.0]]}},
            "plan",
            "missing",
        ),
        (
            {"dataframe_split": {"columns": ["tenure", "charges", "plan"], "data": [[1, 2.0]]}},
            "data",
            "list of 3",
        ),
        (
            {"inputs": {"tenure": [1, 2], "charges": [1.0], "plan": ["a", "b"]}},
            "tenure",
            "different lengths",
        ),
        ({"inputs": [[1, 2.0, "pro"]]}, "inputs", "takes columns"),
    ],
)
def test_invalid_input_is_422_naming_the_column(
    client: Any, body: dict[str, Any], field: str, words: str
) -> None:
    r = client.post("/invocations", json=body)
    assert r.status_code == 422, r.text
    got = r.json()
    assert got["field"] == field and got["error_code"] == "INVALID_INPUT"
    assert words in got["error"], got


def test_null_in_a_float_column_is_nan_for_the_model(client: Any) -> None:
    r = client.post("/invocations", json=_records({**ROW, "charges": None}))
    # LogisticRegression refuses NaN: the model's own refusal is a 422 on the input too.
    assert r.status_code == 422 and r.json()["field"] == "input"


@pytest.mark.parametrize(
    ("body", "field", "datatype"),
    [
        ([{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1.5]}], "tenure", None),
        ([{"name": "tenure", "shape": [2], "datatype": "INT64", "data": [1]}], "tenure", None),
        ([{"name": "tenure", "shape": [1], "datatype": "WAT", "data": [1]}], "tenure", None),
        ([{"name": "tenure", "shape": [1], "datatype": "INT64", "data": [1]}], "charges", None),
    ],
)
def test_v2_invalid_input(client: Any, body: Any, field: str, datatype: Any) -> None:
    r = client.post("/v2/models/churn/infer", json={"inputs": body})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_extra_columns_dropped_when_configured(loaded: dict[str, Any]) -> None:
    settings = ServingSettings(allow_extra_columns=True)
    host = ModelHost.from_loaded(loaded["churn"], settings=settings)
    with serving({"churn": host}) as c:
        r = c.post("/invocations", json=_records({**ROW, "extra": "x"}))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"rows": []}', b'{"inputs": {}, "instances": []}', b"NaN"],
)
def test_malformed_body_is_400(client: Any, content: bytes) -> None:
    r = client.post("/invocations", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert client.post("/v2/models/churn/infer", content=content).status_code in (400, 422)


def test_limits_are_413(client: Any) -> None:
    r = client.post("/invocations", json=_records(*[ROW] * 6))
    assert r.status_code == 413 and r.json()["field"] == "rows"
    assert "limit is 5" in r.json()["error"]
    big = {"dataframe_records": [{**ROW, "plan": "x" * 5000}]}
    r = client.post("/invocations", json=big)
    assert r.status_code == 413 and r.json()["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is cut at the limit
        yield b'{"dataframe_records": ['
        for _ in range(100):
            yield json.dumps(ROW).encode() + b","
        yield b"]}"

    r = client.post("/invocations", content=chunks())
    assert r.status_code == 413
    assert client.post("/invocations", json=_records(ROW)).status_code == 200


def test_request_id_and_model_version_headers(client: Any) -> None:
    r = client.post("/invocations", json=_records(ROW))
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["keel-request-id"])
    assert r.headers["keel-model-version"] == "churn/1"
    r = client.post("/invocations", json=_records(ROW), headers={"keel-request-id": "abc-123"})
    assert r.headers["keel-request-id"] == "abc-123"
    for unsafe in ("a b", "x" * 65, "\xe9vil".encode("latin-1"), "a\tb", "a/b"):
        r = client.post("/invocations", json=_records(ROW), headers={"keel-request-id": unsafe})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["keel-request-id"]), unsafe
    for path in ("/v2/health/live", "/metrics", "/no-such-route"):
        r = client.get(path)
        assert r.headers["keel-model-version"] == "churn/1", path
        assert r.headers["keel-request-id"]
    r = client.post("/invocations", json=_records({**ROW, "tenure": "x"}))
    assert r.status_code == 422 and r.headers["keel-model-version"] == "churn/1"


def test_non_finite_outputs_are_null_and_flagged(loaded: dict[str, Any]) -> None:
    with serving({"diff": ModelHost.from_loaded(loaded["diff"])}) as c:
        body = {"inputs": {"a": [1e308, 3.0, 1e308], "b": [-1e308, 1.0, 1e308]}}
        r = c.post("/invocations", json=body)
        assert r.status_code == 200, r.text
        assert b"NaN" not in r.content and b"Infinity" not in r.content
        got = r.json()
        assert got["predictions"][0] is None and got["predictions"][2] is None
        assert got["predictions"][1] == pytest.approx(4.0)
        assert got["non_finite"] == [0, 2]
        v2 = {
            "inputs": [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [1e308]},
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [-1e308]},
            ]
        }
        got = c.post("/v2/models/diff/infer", json=v2).json()
        assert got["outputs"][0]["data"] == [None]
        assert got["parameters"] == {"non_finite": [0]}
        finite = c.post("/invocations", json={"inputs": {"a": [1.0], "b": [0.0]}}).json()
        assert "non_finite" not in finite


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidInput) as err:
        ServingSettings(max_batch_size=0)
    assert err.value.field == "max_batch_size"
