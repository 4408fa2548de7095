"""Micro-batching under real concurrency: answers equal unbatched ones and keep their order;
overload answers 503 with Retry-After only past the queue bound; a stuck predict answers 504
and the server goes on answering; the hook sees each answered request; /metrics reports it."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from serving_support import churn_frame, keepalive_post_ms, serving

from keel.serving import ModelHost, PredictionRecord, ServingSettings


def _sample(host: ModelHost, name: str, **labels: str) -> float:
    value = host.metrics.registry.get_sample_value(
        name, {"model": host.name, "version": host.version, **labels}
    )
    return 0.0 if value is None else value


def test_concurrent_requests_are_batched_and_answered_like_unbatched(loaded: Any) -> None:
    settings = ServingSettings(max_batch_size=16, max_latency_ms=20)
    host = ModelHost.from_loaded(loaded["churn"], settings=settings)
    x = churn_frame(120, seed=11)
    want = [int(v) for v in loaded["churn"].predict(x)]
    # requests of 1 to 3 rows, so batches mix sizes and a request never straddles two batches
    sizes = [1 + i % 3 for i in range(60)]
    starts = np.cumsum([0, *sizes[:-1]])
    with serving({"churn": host}) as client:

        def call(i: int) -> tuple[int, list[int]]:
            part = x.iloc[starts[i] : starts[i] + sizes[i]]
            body = {
                "dataframe_split": {"columns": list(x.columns), "data": part.to_numpy().tolist()}
            }
            r = client.post("/invocations", json=body)
            assert r.status_code == 200, r.text
            return i, r.json()["predictions"]

        with ThreadPoolExecutor(24) as pool:
            answers = dict(pool.map(call, range(len(sizes))))
    for i, got in answers.items():
        assert got == want[starts[i] : starts[i] + sizes[i]], i
    batches = _sample(host, "keel_serving_batch_requests_count")
    coalesced = _sample(host, "keel_serving_batch_requests_sum")
    assert coalesced == len(sizes)
    assert batches < len(sizes), "no two requests were ever coalesced"
    assert _sample(host, "keel_serving_batch_rows_sum") == sum(sizes)
    assert _sample(host, "keel_serving_batch_rows_bucket", le="16.0") == batches  # bound kept


def test_overload_answers_503_with_retry_after_only_past_the_bound(loaded: Any) -> None:
    settings = ServingSettings(max_batch_size=1, max_queue=2, timeout_s=5)
    host = ModelHost.from_loaded(loaded["sleepy"], settings=settings)
    body = {"inputs": {"a": [1.0], "sleep": [0.3]}}
    with serving({"sleepy": host}) as client:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: client.post("/invocations", json=body), range(8)))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) == {200, 503}, codes
        assert codes.count(200) >= 2  # the running one and the queued ones are answered
        for r in responses:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1"
                assert r.json()["error_code"] == "OVERLOADED"
            else:
                assert r.json() == {"predictions": [2.0]}
        assert _sample(host, "keel_serving_errors_total", reason="overloaded") == codes.count(503)
        ok = client.post("/invocations", json={"inputs": {"a": [2.0], "sleep": [0.0]}})
        assert ok.status_code == 200 and ok.json() == {"predictions": [4.0]}


def test_a_stuck_predict_answers_504_and_the_server_carries_on(loaded: Any) -> None:
    settings = ServingSettings(timeout_s=0.3)
    host = ModelHost.from_loaded(loaded["sleepy"], settings=settings)
    with serving({"sleepy": host}) as client:
        t0 = time.perf_counter()
        r = client.post("/invocations", json={"inputs": {"a": [1.0], "sleep": [3.0]}})
        assert r.status_code == 504 and r.json()["error_code"] == "TIMEOUT"
        assert time.perf_counter() - t0 < 2
        t0 = time.perf_counter()
        for a in (1.0, 2.0, 3.0):
            r = client.post("/invocations", json={"inputs": {"a": [a], "sleep": [0.0]}})
            assert r.status_code == 200 and r.json() == {"predictions": [2 * a]}
        assert time.perf_counter() - t0 < 2, "the next requests waited for the stuck thread"
        assert host.batcher.restarts == 1
        metrics = client.get("/metrics").text
        assert 'keel_serving_worker_restarts_total{model="sleepy",version="1"} 1.0' in metrics
        assert 'keel_serving_errors_total{model="sleepy",reason="timeout",version="1"} 1.0' in (
            metrics
        )


def test_on_prediction_hook_sees_each_answer(loaded: Any) -> None:
    seen: list[PredictionRecord] = []
    done = threading.Event()

    def hook(record: PredictionRecord) -> None:
        seen.append(record)
        if len(seen) == 2:
            done.set()
        if record.request_id == "boom":
            raise RuntimeError("the log is down")

    host = ModelHost.from_loaded(loaded["churn"])
    x = churn_frame(2, seed=1)
    body = {"inputs": {c: x[c].tolist() for c in x.columns}}
    with serving({"churn": host}, on_prediction=hook) as client:
        r = client.post("/invocations", json=body, headers={"keel-request-id": "req-7"})
        assert r.status_code == 200
        r2 = client.post("/invocations", json=body, headers={"keel-request-id": "boom"})
        assert r2.status_code == 200  # a failing hook never changes the answer
        assert done.wait(5)
        bad = client.post("/invocations", json={"inputs": {"tenure": ["x"]}})
        assert bad.status_code == 422
        first = seen[0]
        assert first.request_id == "req-7" and first.model == "churn" and first.version == "1"
        assert first.route == "invocations" and first.latency_ms > 0
        assert first.inputs.columns is not None
        assert list(first.inputs.columns["tenure"]) == x["tenure"].tolist()
        assert first.outputs is not None and first.status == 200
        assert first.outputs.tolist() == r.json()["predictions"]
        deadline = time.monotonic() + 5  # a failed request reaches the hook too, after its answer
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(seen) == 3
        failed = seen[2]
        assert failed.status == 422 and failed.request_id == bad.headers["keel-request-id"]
        assert failed.inputs is None and failed.outputs is None  # the body did not parse
        deadline = time.monotonic() + 5  # the hook runs after the answer was sent
        while _sample(host, "keel_serving_hook_errors_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _sample(host, "keel_serving_hook_errors_total") == 1


def test_metrics_in_prometheus_format(loaded: Any) -> None:
    host = ModelHost.from_loaded(loaded["churn"])
    x = churn_frame(3, seed=2)
    with serving({"churn": host}) as client:
        client.post("/invocations", json={"dataframe_records": x.to_dict(orient="records")})
        client.post("/invocations", json={"dataframe_records": [{"tenure": 1}]})
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
    labels = 'model="churn",route="invocations",status="200",version="1"'
    for line in (
        f"keel_serving_requests_total{{{labels}}} 1.0",
        'keel_serving_requests_total{model="churn",route="invocations",status="422",version="1"}',
        'keel_serving_errors_total{model="churn",reason="invalid_input",version="1"} 1.0',
        'keel_serving_request_latency_seconds_bucket{le="0.005",model="churn"',
        'keel_serving_batch_rows_sum{model="churn",version="1"} 3.0',
        'keel_serving_queue_depth{model="churn",version="1"} 0.0',
        "# TYPE keel_serving_predict_latency_seconds histogram",
    ):
        assert line in text, line
    assert "python_gc_objects" not in text  # a per-app registry, not the global one


def test_one_connection_latency_has_no_nagle_stall(loaded: Any) -> None:
    host = ModelHost.from_loaded(loaded["diff"])
    body = b'{"inputs": {"a": [1.0], "b": [2.0]}}'
    with serving({"diff": host}) as client:
        times = keepalive_post_ms(client.live.port, "/invocations", body, n=100)
    assert statistics.median(times) < 20, sorted(times)  # a Nagle stall is ~40 ms


def test_client_errors_reach_no_library_exception(loaded: Any) -> None:
    host = ModelHost.from_loaded(loaded["churn"])
    with serving({"churn": host}) as client:
        r = client.post("/invocations", json={"inputs": {}})
    # A clean 422 naming a column: the library's own exception never reaches the client.
    assert r.status_code == 422, r.text
    assert r.json()["field"] in ("tenure", "charges", "plan")


def test_latency_check_sees_the_stall_without_the_fix(loaded: Any) -> None:
    """Control: uvicorn's plain protocol with Nagle on stalls, so the check above can fail."""
    import socket

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from keel.serving import create_serving_app
    from live_server import LiveServer

    class NagleOn(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            super().connection_made(transport)

    app = create_serving_app({"diff": ModelHost.from_loaded(loaded["diff"])})
    body = b'{"inputs": {"a": [1.0], "b": [2.0]}}'
    with LiveServer(app, protocol=NagleOn, lifespan="on") as live:
        times = keepalive_post_ms(live.port, "/invocations", body, n=15)
    assert statistics.median(times) > 20, sorted(times)
