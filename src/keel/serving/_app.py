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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from keel.errors import InvalidInput, KeelError, NotFound
from keel.serving._app_http import (
    HeadersMiddleware,
    error_body,
    error_response,
    header,
    json_response,
    receive_body,
    request_id,
    send_json,
)
from keel.serving._batcher import ModelFailed
from keel.serving._deployments import Role
from keel.serving._endpoint import ROUTE_KEY_HEADER, Endpoint, as_endpoints
from keel.serving._host import ModelHost
from keel.serving._metrics import ServingMetrics
from keel.serving._openapi import invocations_schema, request_body, v2_schema, v2_tensors
from keel.serving._outputs import encode, v2_datatype
from keel.serving._payload import Inputs, MalformedRequest, check_rows, parse_mlflow, parse_v2
from keel.serving._record import PredictionHook, PredictionRecord, no_op
from keel.serving._reload import Source, poll
from keel.serving._settings import ServingSettings

if TYPE_CHECKING:
    from keel.monitoring._feedback import SqlFeedbackStore

log = logging.getLogger("keel.serving")

Parse = Callable[..., Inputs]
_ROUTE_KEY = ROUTE_KEY_HEADER.encode()


class _Serving:
    """The state the routes share: endpoints by name, settings, metrics and the hook."""

    def __init__(
        self,
        hosts: Mapping[str, ModelHost | Endpoint],
        *,
        settings: ServingSettings,
        on_prediction: PredictionHook,
        default_model: str,
    ) -> None:
        self.hosts = as_endpoints(hosts)
        self.settings = settings
        self.on_prediction = on_prediction
        self.default = default_model
        self.metrics = ServingMetrics()
        for endpoint in self.hosts.values():
            endpoint.attach(self.metrics)

    def host(self, name: str) -> Endpoint:
        found = self.hosts.get(name)
        if found is None:
            raise NotFound(f"no model {name!r} here; served: {sorted(self.hosts)}")
        return found

    def versions(self) -> str:
        return ",".join(h.ref for h in self.hosts.values())

    async def after_answer(self, record: PredictionRecord, endpoint: Endpoint) -> None:
        """Runs once the answer is sent: the log hook, then the shadow copy. A coroutine, so
        Starlette runs it on the event loop; a plain function would cost every request a hop
        to its thread pool and back, for what is one append to a list."""
        hook = endpoint.on_prediction or self.on_prediction
        if hook is not no_op:
            try:
                hook(record)
            except Exception:
                # The answer is already sent; the failure is logged and counted, not hidden.
                log.exception("on_prediction hook failed for request %s", record.request_id)
                self.metrics.hook_errors.labels(record.model, record.version).inc()
        if endpoint.shadows():
            endpoint.send_to_shadow(record)

    async def predict(
        self,
        scope: Scope,
        receive: Receive,
        endpoint: Endpoint,
        *,
        route: str,
        parse: Parse,
        v2: bool,
    ) -> _Reply:
        """Read, check and answer one predict request; the reply carries its log record."""
        started = time.perf_counter()
        request_id: str = scope["state"]["request_id"]
        host, role = endpoint.champion, Role.CHAMPION
        # A deployment brings its own limits; a plain model uses the app's.
        limits = host.settings if endpoint.deployment is not None else self.settings
        inputs: Inputs | None = None
        try:
            body = await receive_body(scope, receive, limit=limits.max_body_bytes)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise MalformedRequest(f"the body is not valid JSON: {exc}", field="body") from exc
            inputs = parse(data, host.signature, allow_extra=limits.allow_extra_columns)
            check_rows(inputs, max_rows=limits.max_rows)
            host, role = endpoint.pick(endpoint.route_key(header(scope, _ROUTE_KEY), inputs))
            outputs, version = await host.predict_versioned(inputs)
        except KeelError as exc:
            return self._failed(
                exc,
                endpoint=endpoint,
                host=host,
                role=role,
                route=route,
                started=started,
                request_id=request_id,
                inputs=inputs,
            )
        except ClientDisconnect:
            # Nobody is listening; nothing to answer or log.
            return _Reply(499, b"", host.ref, {}, None, endpoint)
        except Exception as exc:
            log.exception("prediction failed (request %s)", request_id)
            failed = ModelFailed(f"the model failed: {exc}")
            return self._failed(
                failed,
                endpoint=endpoint,
                host=host,
                role=role,
                route=route,
                started=started,
                request_id=request_id,
                inputs=inputs,
            )
        values, non_finite = encode(outputs)
        content: dict[str, Any]
        if v2:
            content = {
                "model_name": endpoint.name,
                "model_version": version,
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
        payload = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
        elapsed = time.perf_counter() - started
        labels = (host.name, version)
        self.metrics.requests.labels(*labels, route, "200").inc()
        self.metrics.latency.labels(*labels, route).observe(elapsed)
        record = None
        if self._hooked(endpoint) or endpoint.shadows():
            record = PredictionRecord(
                request_id=request_id,
                model=host.name,
                version=version,
                route=route,
                inputs=inputs,
                outputs=outputs,
                latency_ms=elapsed * 1000,
                timestamp_ms=int(time.time() * 1000),
                non_finite=tuple(non_finite),
                role=str(role),
                deployment=_deployment_name(endpoint),
            )
        return _Reply(200, payload, f"{host.name}/{version}", {}, record, endpoint)

    def _hooked(self, endpoint: Endpoint) -> bool:
        return endpoint.on_prediction is not None or self.on_prediction is not no_op

    def _failed(
        self,
        exc: KeelError,
        *,
        endpoint: Endpoint,
        host: ModelHost,
        role: Role,
        route: str,
        started: float,
        request_id: str,
        inputs: Inputs | None,
    ) -> _Reply:
        status, payload, headers, reason = error_body(exc, retry_after=self.settings.retry_after_s)
        labels = (host.name, host.version)
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(*labels, route, str(status)).inc()
        self.metrics.errors.labels(*labels, reason).inc()
        self.metrics.latency.labels(*labels, route).observe(elapsed)
        record = None
        if self._hooked(endpoint):
            record = PredictionRecord(
                request_id=request_id,
                model=host.name,
                version=host.version,
                route=route,
                # Overload rejections are logged as cheaply as they are answered.
                inputs=None if status == 503 else inputs,
                outputs=None,
                latency_ms=elapsed * 1000,
                timestamp_ms=int(time.time() * 1000),
                role=str(role),
                deployment=_deployment_name(endpoint),
                status=status,
            )
        return _Reply(status, payload, host.ref, headers, record, endpoint)

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: Endpoint,
        *,
        route: str,
        parse: Parse,
        v2: bool,
    ) -> None:
        """A predict route on plain ASGI: answer, then run the hook and the shadow copy."""
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        reply = await self.predict(scope, receive, endpoint, route=route, parse=parse, v2=v2)
        if reply.status == 499:
            return
        await send_json(
            send,
            reply.status,
            reply.body,
            request_id=rid,
            version=reply.version,
            extra=reply.headers,
        )
        if reply.record is not None:
            await self.after_answer(reply.record, endpoint)

    async def handle(
        self, request: Request, endpoint: Endpoint, *, route: str, parse: Parse, v2: bool
    ) -> Response:
        """The same as ``serve`` for a request that came through FastAPI's router."""
        reply = await self.predict(
            request.scope, request.receive, endpoint, route=route, parse=parse, v2=v2
        )
        request.scope["keel.model_version"] = reply.version
        response = Response(reply.body, status_code=reply.status, media_type="application/json")
        response.headers.update(reply.headers)
        if reply.record is not None:
            response.background = BackgroundTask(self.after_answer, reply.record, endpoint)
        return response


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    version: str  # the keel-model-version header: the version that answered
    headers: dict[str, str]
    record: PredictionRecord | None
    endpoint: Endpoint


def _deployment_name(endpoint: Endpoint) -> str:
    dep = endpoint.deployment
    return dep.name if dep is not None else ""


class _ServingApp(FastAPI):
    """FastAPI, with the predict routes dispatched before its middleware and router: they
    read, check and answer on plain ASGI themselves (request id, headers, body bound, every
    error as JSON), which takes a good share of the time a one-row request spends in the app.
    The same routes stay declared on the router for the OpenAPI schema."""

    predict_routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            target = self.predict_routes.get(path)
            if target is not None:
                await target(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_serving_app(
    hosts: Mapping[str, ModelHost | Endpoint],
    *,
    settings: ServingSettings | None = None,
    on_prediction: PredictionHook | None = None,
    default_model: str | None = None,
    sources: Mapping[str, Source] | None = None,
    poll_s: float = 5.0,
    feedback_store: SqlFeedbackStore | None = None,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> FastAPI:
    """The inference app serving ``hosts`` (name -> host, or an ``Endpoint`` for a
    deployment). ``/invocations`` answers with ``default_model`` (default: the first).
    ``on_prediction(record)`` is called after each answer is sent, unless the endpoint has
    its own hook (keep it quick: it runs on the event loop). ``sources`` (name -> where its
    versions come from) are polled every ``poll_s`` seconds for a hot swap. With
    ``feedback_store``, ``POST /feedback`` is mounted. ``on_shutdown`` callables (closing the
    prediction log writers) run after the models stop, in a thread."""
    if not hosts:
        raise InvalidInput("serve at least one model", field="hosts")
    if not poll_s > 0:
        raise InvalidInput("must be a positive number of seconds", field="poll_s")
    first = next(iter(hosts.values()))
    settings = settings or (first.champion if isinstance(first, Endpoint) else first).settings
    default = default_model or next(iter(hosts))
    state = _Serving(
        hosts, settings=settings, on_prediction=on_prediction or no_op, default_model=default
    )
    state.host(default)
    polled = {name: (state.host(name), source) for name, source in (sources or {}).items()}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for endpoint in state.hosts.values():
            await endpoint.start()
        poller = asyncio.get_running_loop().create_task(poll(polled, interval_s=poll_s))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await asyncio.gather(*(e.stop() for e in state.hosts.values()))
            for close in on_shutdown:
                await asyncio.to_thread(close)

    app = _ServingApp(
        title="Keel inference",
        version="1",
        description="MLflow-compatible /invocations and the Open Inference Protocol v2. "
        f"Models: {', '.join(h.ref for h in state.hosts.values())}.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(HeadersMiddleware, versions=state.versions)

    default_host = state.host(default)
    if feedback_store is not None:
        from keel.serving._feedback_routes import feedback_router

        app.include_router(feedback_router(feedback_store))

    @app.post(
        "/invocations",
        openapi_extra=request_body(invocations_schema(default_host.signature)),
        summary=f"Predict with {default_host.name} (MLflow scoring protocol)",
    )
    async def invocations(request: Request) -> Response:
        return await state.handle(
            request, state.host(default), route="invocations", parse=parse_mlflow, v2=False
        )

    app.predict_routes = {"/invocations": _predict_route(state, default, "invocations")}
    for name, host in state.hosts.items():
        _add_v2_infer(app, state, name, host)
        app.predict_routes[f"/v2/models/{name}/infer"] = _predict_route(state, name, "v2")

    @app.post("/v2/models/{name}/infer", include_in_schema=False)
    async def infer_unknown(name: str) -> Response:
        return error_response(NotFound(f"no model {name!r}; served: {sorted(state.hosts)}"))[0]

    _add_probes(app, state)
    return app


def _predict_route(
    state: _Serving, name: str, route: str
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    endpoint = state.host(name)
    v2 = route == "v2"
    parse = parse_v2 if v2 else parse_mlflow

    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        await state.serve(scope, receive, send, endpoint, route=route, parse=parse, v2=v2)

    return predict


def _add_v2_infer(app: FastAPI, state: _Serving, name: str, host: Endpoint) -> None:
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
        ok = all(h.running for h in state.hosts.values())
        detail = {name: h.detail() for name, h in state.hosts.items()}
        return json_response({"ready": ok, "models": detail}, status=200 if ok else 503)

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
        challenger = host.challenger
        return json_response(
            {
                "name": name,
                "versions": [host.champion.version]
                + ([challenger.version] if challenger is not None else []),
                "platform": f"keel-{host.champion.flavor or 'model'}",
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
        ok = host.running
        return json_response({"name": name, "ready": ok}, status=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        for endpoint in state.hosts.values():
            for host in (endpoint.champion, endpoint.challenger):
                if host is not None:
                    depth = host.batcher.depth
                    state.metrics.queue_depth.labels(host.name, host.version).set(depth)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _keel_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keel")
    except PackageNotFoundError:
        return "0"
