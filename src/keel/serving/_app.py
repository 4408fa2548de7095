"""``create_serving_app``: the inference API over one or more ``ModelHost``s.

Routes: ``POST /invocations`` (MLflow's scoring protocol, the default model),
``POST /v2/models/{name}/infer``, ``GET /v2/models/{name}`` (+ ``/ready``), ``GET /v2``,
``GET /v2/health/live|ready``, ``GET /ping`` and ``/health`` (MLflow's probes), ``GET /metrics``.
No user auth: it serves models on loopback by default, behind whatever gateway exposes it;
the limits (body size, rows, queue) are always on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from keel.errors import InvalidInput, KeelError, NotFound
from keel.serving._app_http import (
    HeadersMiddleware,
    error_response,
    json_response,
    read_body,
)
from keel.serving._batcher import ModelFailed
from keel.serving._host import ModelHost
from keel.serving._metrics import ServingMetrics
from keel.serving._openapi import invocations_schema, request_body, v2_schema, v2_tensors
from keel.serving._outputs import encode, v2_datatype
from keel.serving._payload import Inputs, MalformedRequest, check_rows, parse_mlflow, parse_v2
from keel.serving._record import PredictionHook, PredictionRecord, no_op
from keel.serving._settings import ServingSettings

log = logging.getLogger("keel.serving")

Parse = Callable[..., Inputs]


class _Serving:
    """The state the routes share: hosts by name, settings, metrics and the hook."""

    def __init__(
        self,
        hosts: Mapping[str, ModelHost],
        *,
        settings: ServingSettings,
        on_prediction: PredictionHook,
        default_model: str,
    ) -> None:
        self.hosts = dict(hosts)
        self.settings = settings
        self.on_prediction = on_prediction
        self.default = default_model
        self.metrics = ServingMetrics()
        for host in self.hosts.values():
            host.attach(self.metrics)

    def host(self, name: str) -> ModelHost:
        found = self.hosts.get(name)
        if found is None:
            raise NotFound(f"no model {name!r} here; served: {sorted(self.hosts)}")
        return found

    def versions(self) -> str:
        return ",".join(h.ref for h in self.hosts.values())

    def run_hook(self, record: PredictionRecord, host: ModelHost) -> None:
        try:
            self.on_prediction(record)
        except Exception:
            # The answer is already sent; the failure is logged and counted, not hidden.
            log.exception("on_prediction hook failed for request %s", record.request_id)
            self.metrics.hook_errors.labels(host.name, host.version).inc()

    async def handle(
        self, request: Request, host: ModelHost, *, route: str, parse: Parse, v2: bool
    ) -> Response:
        started = time.perf_counter()
        request_id: str = request.state.request_id
        request.scope["keel.model_version"] = host.ref
        try:
            body = await read_body(request, limit=self.settings.max_body_bytes)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise MalformedRequest(f"the body is not valid JSON: {exc}", field="body") from exc
            inputs = parse(data, host.signature, allow_extra=self.settings.allow_extra_columns)
            check_rows(inputs, max_rows=self.settings.max_rows)
            outputs = await host.predict(inputs)
        except KeelError as exc:
            return self._failed(exc, host, route, started)
        except ClientDisconnect:
            return Response(status_code=499)  # nobody is listening; nothing to log
        except Exception as exc:
            log.exception("prediction failed (request %s)", request_id)
            return self._failed(ModelFailed(f"the model failed: {exc}"), host, route, started)
        values, non_finite = encode(outputs)
        content: dict[str, Any]
        if v2:
            content = {
                "model_name": host.name,
                "model_version": host.version,
                "outputs": [
                    {
                        "name": "predict",
                        "shape": list(outputs.shape),
                        "datatype": v2_datatype(outputs),
                        "data": np.asarray(values, dtype=object).ravel().tolist()
                        if outputs.ndim > 1
                        else values,
                    }
                ],
            }
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                content["id"] = data["id"][:256]
            if non_finite:
                content["parameters"] = {"non_finite": non_finite}
        else:
            content = {"predictions": values}
            if non_finite:
                content["non_finite"] = non_finite
        response = json_response(content)
        elapsed = time.perf_counter() - started
        labels = (host.name, host.version)
        self.metrics.requests.labels(*labels, route, "200").inc()
        self.metrics.latency.labels(*labels, route).observe(elapsed)
        if self.on_prediction is not no_op:
            record = PredictionRecord(
                request_id=request_id,
                model=host.name,
                version=host.version,
                route=route,
                inputs=inputs,
                outputs=outputs,
                latency_ms=elapsed * 1000,
                timestamp_ms=int(time.time() * 1000),
                non_finite=tuple(non_finite),
            )
            response.background = BackgroundTask(self.run_hook, record, host)
        return response

    def _failed(self, exc: KeelError, host: ModelHost, route: str, started: float) -> Response:
        response, reason = error_response(exc, retry_after=self.settings.retry_after_s)
        labels = (host.name, host.version)
        self.metrics.requests.labels(*labels, route, str(response.status_code)).inc()
        self.metrics.errors.labels(*labels, reason).inc()
        self.metrics.latency.labels(*labels, route).observe(time.perf_counter() - started)
        return response


def create_serving_app(
    hosts: Mapping[str, ModelHost],
    *,
    settings: ServingSettings | None = None,
    on_prediction: PredictionHook | None = None,
    default_model: str | None = None,
) -> FastAPI:
    """The inference app serving ``hosts`` (name -> host). ``/invocations`` answers with
    ``default_model`` (default: the first host). ``on_prediction(record)`` is called after
    each answer is sent (keep it quick: it runs on the event loop)."""
    if not hosts:
        raise InvalidInput("serve at least one model", field="hosts")
    settings = settings or next(iter(hosts.values())).settings
    default = default_model or next(iter(hosts))
    state = _Serving(
        hosts, settings=settings, on_prediction=on_prediction or no_op, default_model=default
    )
    state.host(default)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for host in state.hosts.values():
            await host.start()
        try:
            yield
        finally:
            await asyncio.gather(*(h.stop() for h in state.hosts.values()))

    app = FastAPI(
        title="Keel inference",
        version="1",
        description="MLflow-compatible /invocations and the Open Inference Protocol v2. "
        f"Models: {', '.join(h.ref for h in state.hosts.values())}.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(HeadersMiddleware, versions=state.versions)

    default_host = state.host(default)

    @app.post(
        "/invocations",
        openapi_extra=request_body(invocations_schema(default_host.signature)),
        summary=f"Predict with {default_host.name} (MLflow scoring protocol)",
    )
    async def invocations(request: Request) -> Response:
        return await state.handle(
            request, state.host(default), route="invocations", parse=parse_mlflow, v2=False
        )

    for name, host in state.hosts.items():
        _add_v2_infer(app, state, name, host)

    @app.post("/v2/models/{name}/infer", include_in_schema=False)
    async def infer_unknown(name: str) -> Response:
        return error_response(NotFound(f"no model {name!r}; served: {sorted(state.hosts)}"))[0]

    _add_probes(app, state)
    return app


def _add_v2_infer(app: FastAPI, state: _Serving, name: str, host: ModelHost) -> None:
    async def infer(request: Request) -> Response:
        return await state.handle(request, state.host(name), route="v2", parse=parse_v2, v2=True)

    app.add_api_route(
        f"/v2/models/{name}/infer",
        infer,
        methods=["POST"],
        openapi_extra=request_body(v2_schema(host.signature)),
        summary=f"Predict with {name} (Open Inference Protocol v2)",
        name=f"infer_{name}",
    )


def _add_probes(app: FastAPI, state: _Serving) -> None:
    @app.get("/v2/health/live")
    async def live() -> Response:
        return json_response({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = all(h.batcher.running for h in state.hosts.values())
        return json_response({"ready": ok}, status=200 if ok else 503)

    @app.get("/ping")
    @app.get("/health")
    async def ping() -> Response:
        return json_response({"status": "ok"})

    @app.get("/v2")
    async def server_metadata() -> Response:
        return json_response({"name": "keel", "version": _keel_version(), "extensions": []})

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        try:
            host = state.host(name)
        except NotFound as exc:
            return error_response(exc)[0]
        sig = host.signature
        return json_response(
            {
                "name": host.name,
                "versions": [host.version],
                "platform": f"keel-{host.flavor or 'model'}",
                "inputs": v2_tensors(sig),
                "outputs": [o.to_dict() for o in sig.outputs],
            }
        )

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        try:
            host = state.host(name)
        except NotFound as exc:
            return error_response(exc)[0]
        ok = host.batcher.running
        return json_response({"name": name, "ready": ok}, status=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        for host in state.hosts.values():
            state.metrics.queue_depth.labels(host.name, host.version).set(host.batcher.depth)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _keel_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keel")
    except PackageNotFoundError:
        return "0"
