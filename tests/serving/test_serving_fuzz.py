"""Arbitrary JSON never makes the inference app answer 5xx or invalid JSON; the four MLflow
payload shapes parse to the same columns; one bad request in a batch fails alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from serving_support import churn_frame, serving

from keel.models import ColSpec, Signature
from keel.serving import ModelHost, ServingSettings
from keel.serving._payload import parse_mlflow, parse_v2

SIG = Signature(
    kind="columns",
    inputs=(ColSpec("tenure", "int64"), ColSpec("charges", "float64"), ColSpec("plan", "str")),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "tenure",
                    "charges",
                    "plan",
                    "x",
                    "columns",
                    "data",
                    "name",
                    "shape",
                    "datatype",
                    "inputs",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.builds(
        lambda key, value: {key: value},
        st.sampled_from(["dataframe_split", "dataframe_records", "inputs", "instances"]),
        json_values,
    ),
    st.builds(lambda items: {"inputs": items}, st.lists(json_values, max_size=3)),
)


@pytest.fixture(scope="module")
def client(loaded: dict[str, Any]) -> Iterator[Any]:
    hosts = {
        "churn": ModelHost.from_loaded(loaded["churn"]),
        "tensor": ModelHost.from_loaded(loaded["tensor"]),
    }
    with serving(hosts) as c:
        yield c


tensor_v2 = st.builds(
    lambda shape, data, datatype: {
        "inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]
    },
    st.lists(st.integers(0, 4), max_size=3),
    st.lists(st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=9),
    st.sampled_from(["FP64", "INT64", "BYTES", "BOOL", "X"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(bodies, tensor_v2),
    path=st.sampled_from(["/invocations", "/v2/models/churn/infer", "/v2/models/tensor/infer"]),
)
def test_arbitrary_json_is_answered_4xx_or_200(client: Any, body: Any, path: str) -> None:
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text)
    got = r.json()
    if r.status_code != 200:
        assert got["error"] and got["error_code"]


frames = st.integers(1, 6).flatmap(
    lambda n: st.builds(
        lambda t, c, p: pd.DataFrame({"tenure": t, "charges": c, "plan": p}),
        st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n),
        st.lists(st.text(max_size=4), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(frame=frames)
# Found by this test: NumPy's fixed-width text dtype dropped a trailing NUL ("\x00" -> "").
@example(frame=pd.DataFrame({"tenure": [1], "charges": [0.0], "plan": ["\x00"]}))
def test_every_payload_shape_parses_to_the_same_columns(frame: pd.DataFrame) -> None:
    records = frame.to_dict(orient="records")
    cols = {c: frame[c].tolist() for c in frame.columns}
    shapes = [
        {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        {"dataframe_records": records},
        {"inputs": cols},
        {"instances": records},
    ]
    parsed = [parse_mlflow(json.loads(json.dumps(b)), SIG, allow_extra=False) for b in shapes]
    v2 = {
        "inputs": [
            {"name": "tenure", "shape": [len(frame)], "datatype": "INT64", "data": cols["tenure"]},
            {"name": "charges", "shape": [len(frame)], "datatype": "FP64", "data": cols["charges"]},
            {"name": "plan", "shape": [len(frame)], "datatype": "BYTES", "data": cols["plan"]},
        ]
    }
    parsed.append(parse_v2(v2, SIG, allow_extra=False))
    for p in parsed:
        assert p.rows == len(frame) and p.columns is not None
        assert p.columns["tenure"].dtype == np.int64
        assert p.columns["charges"].dtype == np.float64
        for name in SIG.columns:
            assert list(p.columns[name]) == cols[name], name


def test_one_bad_request_in_a_batch_fails_alone(loaded: dict[str, Any]) -> None:
    settings_ = ServingSettings(max_batch_size=64, max_latency_ms=30)
    host = ModelHost.from_loaded(loaded["churn"], settings=settings_)
    x = churn_frame(40, seed=21)
    want = [int(v) for v in loaded["churn"].predict(x)]
    with serving({"churn": host}) as c:

        def call(i: int) -> Any:
            row = x.iloc[i].to_dict()
            if i % 5 == 0:
                row["charges"] = None  # passes the signature (float), the model refuses NaN
            return c.post("/invocations", json={"dataframe_records": [row]})

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(call, range(len(x))))
    for i, r in enumerate(responses):
        if i % 5 == 0:
            assert r.status_code == 422 and r.json()["field"] == "input", r.text
        else:
            assert r.status_code == 200 and r.json()["predictions"] == [want[i]], (i, r.text)
    coalesced = host.metrics.registry.get_sample_value(
        "keel_serving_batch_requests_count", {"model": "churn", "version": "1"}
    )
    # fewer predict batches than requests: bad requests shared batches with good ones
    assert coalesced is not None and coalesced < len(x) - 8
