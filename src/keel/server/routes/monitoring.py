"""Monitoring over HTTP: stored monitor results and their history, monitor runs on the server,
HTML/JSON reports, schedules and the Prometheus export (alerts: ``monitoring_alerts``).

Monitoring belongs to no project (like deployments): reading needs the viewer role on some
project, running a monitor or changing schedules the maintainer role on some project.

The server reads only its own stores: the prediction log in its artifact store, labels and
results in its metadata database, and dataset references through its own data store. A
reference is a dataset version or a ``log:`` window, never a file: ``profile:PATH`` (a file on
the server) is refused, so no request makes the server read a path it names. Without a
reference the server finds the training dataset of the champion that served the window in its
own registry (reading the window once more to find it); a window with no champion
predictions needs an explicit reference.

The stores are opened once per app (``monitoring_stores``) and share the server's engine:
opening and closing a store per request would dispose that shared engine under concurrent
requests.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel import _time
from keel.auth import Role
from keel.errors import InvalidInput, NotFound
from keel.server._policy import role_anywhere
from keel.server._state import ServerState, get_state
from keel.server.routes.tracking import read_json, reply

if TYPE_CHECKING:
    from keel.monitoring._alert_sql import SqlAlertStore
    from keel.monitoring._feedback import SqlFeedbackStore
    from keel.monitoring._monitor_sql import SqlMonitorStore
    from keel.monitoring._reference import ReferenceProfile

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])

READ = role_anywhere(Role.VIEWER)
WRITE = role_anywhere(Role.MAINTAINER)

# The report page's own policy: inline styles and data: images, nothing else (it has no script).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_ID = 128
_PROFILES = 8  # dataset reference profiles kept per process (versions are immutable)

# run_monitor keyword arguments a request may set: their JSON types, and how to say them.
_TEXT, _WHOLE, _NUMBER = (str,), (int,), (int, float)
_RUN_OPTIONS: dict[str, tuple[tuple[type, ...], str]] = {
    "window": (_TEXT, "text such as 24h or START..END"),
    "last_rows": (_WHOLE, "a whole number"),
    "reference": (_TEXT, "text: a dataset version (churn@v3) or a log window (log:7d..1d)"),
    "columns": ((list,), "a list of column names"),
    "tests": ((str, dict), "a test name or an object of column -> test"),
    "thresholds": ((dict,), "an object of test or column -> number"),
    "multivariate": ((bool,), "true or false"),
    "drift_share": (_NUMBER, "a number"),
    "task": (_TEXT, "classification or regression"),
    "positive_label": ((str, int, float, bool), "a label value"),
    "slices": ((list,), "a list of column names"),
    "business": ((dict,), "an object of business metrics"),
    "bucket_ms": (_WHOLE, "a whole number of milliseconds"),
}


@dataclass(frozen=True, slots=True)
class MonitoringStores:
    monitors: SqlMonitorStore
    alerts: SqlAlertStore
    feedback: SqlFeedbackStore


_open_lock = threading.Lock()
_profile_lock = threading.Lock()
_profiles: OrderedDict[tuple[str, str], ReferenceProfile] = OrderedDict()


def monitoring_stores(request: Request) -> MonitoringStores:
    """The app's monitor, alert and feedback stores, opened on first use (call it in a worker
    thread: opening checks the schema). They share the engine ``ServerState.close`` disposes."""
    holder = request.app.state
    found: MonitoringStores | None = getattr(holder, "keel_monitoring", None)
    if found is not None:
        return found
    with _open_lock:
        found = getattr(holder, "keel_monitoring", None)
        if found is None:
            from keel.monitoring._alert_sql import SqlAlertStore
            from keel.monitoring._feedback import SqlFeedbackStore
            from keel.monitoring._monitor_sql import SqlMonitorStore

            uri = get_state(request).tracking_uri
            found = MonitoringStores(
                SqlMonitorStore(uri), SqlAlertStore(uri), SqlFeedbackStore(uri)
            )
            holder.keel_monitoring = found
    return found


def deployment_name(name: str) -> str:
    from keel.monitoring._predlog import check_name

    return check_name(name, "deployment")


def server_reference(spec: object) -> str | None:
    """A reference a request may give: None (lineage), ``log:…`` or a dataset version
    (returned as ``dataset:NAME@…``). Anything naming a file is refused."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise InvalidInput(
            "must be text: a dataset version (churn@v3) or a log window (log:7d..1d)",
            field="reference",
        )
    text = spec.strip()
    if not text:
        return None
    if text.startswith("log:"):
        return text
    ref = text.removeprefix("dataset:")
    if text.startswith("profile:") or ref.lower().endswith(".json") or "/" in ref or "\\" in ref:
        raise InvalidInput(
            "the server reads no file a request names: give a dataset version (churn@v3) or "
            "a log window (log:24h, log:7d..1d); a saved profile works with a local "
            "`keel monitor run --reference profile:PATH`",
            field="reference",
        )
    from keel.data._names import parse_ref

    try:
        parse_ref(ref)
    except InvalidInput as exc:
        raise InvalidInput(
            f"not a dataset version or log window: {exc}", field="reference"
        ) from None
    return f"dataset:{ref}"


def _dataset_profile(state: ServerState, ref: str) -> ReferenceProfile:
    """The profile of a dataset version in the server's own data store (cached per version)."""
    from keel.data._datasets import Datasets
    from keel.monitoring._reference import ReferenceProfile

    datasets = Datasets(state.data, state.content)
    version = datasets.show(ref)  # an alias moves; the resolved NAME@vN does not
    if version.kind != "table":
        raise InvalidInput(f"{version.ref} is a folder, not a table", field="reference")
    key = (state.tracking_uri, version.ref)
    with _profile_lock:
        found = _profiles.get(key)
    if found is not None:
        return found
    profile = ReferenceProfile.from_frame(datasets.get(version, as_="arrow"), source=version.ref)
    with _profile_lock:
        _profiles[key] = profile
        while len(_profiles) > _PROFILES:
            _profiles.popitem(last=False)
    return profile


def _lineage_profile(
    state: ServerState, deployment: str, options: Mapping[str, Any], now: int
) -> ReferenceProfile:
    """The training data of the champion that served the window, from the server's registry."""
    from keel.monitoring._monitor import DEFAULT_WINDOW
    from keel.monitoring._monitor_reference import champion_version
    from keel.monitoring._windows import read_window

    last_rows = options.get("last_rows")
    window = options.get("window") or (None if last_rows is not None else DEFAULT_WINDOW)
    log = read_window(
        deployment,
        window,
        last_rows=last_rows,
        now_ms=now,
        backend=state.content.backend,
        with_feedback=False,
    )
    hint = "pass a reference: a dataset version (churn@v3) or a log window (log:7d..1d)"
    found = champion_version(log)
    if found is None:
        raise InvalidInput(
            f"no champion predictions in the window to find the model's training data; {hint}",
            field="reference",
        )
    model, version = found
    registry = state.models.registry
    try:
        mv = (
            registry.get_version(model, int(version))
            if version.isdigit()
            else registry.resolve_alias(model, version)
        )
    except NotFound:
        raise InvalidInput(
            f"model {model} v{version} is not in the registry; {hint}", field="reference"
        ) from None
    inputs = [d for d in mv.datasets if d.direction == "input"]
    if not inputs:
        raise InvalidInput(
            f"{model} v{version} has no training dataset in its lineage; {hint}",
            field="reference",
        )
    return _dataset_profile(state, inputs[0].ref)


def run_options(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``run_monitor`` options of a request body, type-checked (values are checked again
    by the monitor itself), with the reference made server-safe."""
    unknown = sorted(set(body) - set(_RUN_OPTIONS))
    if unknown:
        raise InvalidInput(
            f"unknown option(s) {unknown}; known: {', '.join(sorted(_RUN_OPTIONS))}",
            field=unknown[0],
        )
    out: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue
        kinds, text = _RUN_OPTIONS[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise InvalidInput(f"must be {text}", field=key)
        out[key] = value
    for key in ("columns", "slices"):
        if key in out and not all(isinstance(c, str) for c in out[key]):
            raise InvalidInput("must be a list of column names", field=key)
    thresholds = out.get("thresholds") or {}
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in thresholds.values()):
        raise InvalidInput("must map a test or column to a number", field="thresholds")
    if isinstance(out.get("tests"), dict) and not all(
        isinstance(v, str) for v in out["tests"].values()
    ):
        raise InvalidInput("must map a column to a test name", field="tests")
    if "window" in out and "last_rows" in out:
        raise InvalidInput("give either a window or last_rows, not both", field="window")
    reference = server_reference(out.pop("reference", None))
    if reference is not None:
        out["reference"] = reference
    return out


# -- results -----------------------------------------------------------------------------------


@router.get("/deployments/{deployment}/results", dependencies=[READ])
async def list_results(
    deployment: str,
    request: Request,
    *,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    since_ms: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    status: Annotated[str | None, Query(pattern="^(ok|error)$")] = None,
    full: bool = False,
) -> Response:
    """Stored monitor results of a deployment, newest first (``full``: each whole document)."""
    name = deployment_name(deployment)
    limit = min(limit, get_state(request).limits.max_page_size)

    def call() -> dict[str, Any]:
        found = monitoring_stores(request).monitors.list_results(
            name, limit=limit, since_ms=since_ms, status=status, full=full
        )
        return {"results": [r.to_dict() for r in found]}

    return reply(await run_in_threadpool(call))


@router.get("/results/{result_id}", dependencies=[READ])
async def get_result(result_id: str, request: Request) -> Response:
    """One stored result with its whole document."""
    if len(result_id) > MAX_ID:
        raise InvalidInput(f"longer than {MAX_ID} characters", field="result_id")
    got = await run_in_threadpool(lambda: monitoring_stores(request).monitors.get_result(result_id))
    return reply(got.to_dict())


@router.get("/latest", dependencies=[READ])
async def latest_results(request: Request) -> Response:
    """The newest ``ok`` result of every deployment, by deployment name."""

    def call() -> dict[str, Any]:
        found = monitoring_stores(request).monitors.latest_results()
        return {"results": [r.to_dict() for r in found]}

    return reply(await run_in_threadpool(call))


@router.post("/deployments/{deployment}/run", dependencies=[WRITE], status_code=201)
async def run(deployment: str, request: Request) -> Response:
    """Run the monitor of a deployment on the server, store the result and judge the alert
    rules on it. Body (all optional): ``window`` (``24h``, ``START..END``) or ``last_rows``,
    ``reference`` (a dataset version or ``log:`` window; default: the champion's training
    data), ``columns``, ``tests``, ``thresholds``, ``multivariate``, ``drift_share``, ``task``,
    ``positive_label``, ``slices``, ``business``, ``bucket_ms``. Answers the result document
    with its ``summary``."""
    from dataclasses import replace

    name = deployment_name(deployment)
    _, body = await read_json(request)
    options = run_options(body)
    state = get_state(request)

    def call() -> dict[str, Any]:
        from keel.monitoring._alerts import evaluate
        from keel.monitoring._monitor import run_monitor

        stores = monitoring_stores(request)
        now = _time.now_ms()
        spec: str | None = options.pop("reference", None)
        reference: str | ReferenceProfile
        if spec is None:
            reference = _lineage_profile(state, name, options, now)
        elif spec.startswith("dataset:"):
            reference = _dataset_profile(state, spec.removeprefix("dataset:"))
        else:
            reference = spec  # a log: window, read from the server's log
        result = run_monitor(
            name,
            reference=reference,
            now_ms=now,
            store=stores.monitors,
            backend=state.content.backend,
            feedback_store=stores.feedback,
            uri=state.tracking_uri,
            evaluate_alerts=False,  # judged below on the app's alert store
            **options,
        )
        events = evaluate(
            stores.alerts,
            name,
            result.id,
            result.quantities(),
            window_ms=result.window.duration_ms,
            at_ms=result.created_ms,
        )
        if events:
            stores.monitors.attach_alerts(result.id, [e.to_dict() for e in events])
            result = replace(result, alerts=tuple(events))
        return result.to_dict() | {"summary": result.summary}

    return reply(await run_in_threadpool(call), 201)


# -- reports -----------------------------------------------------------------------------------


@router.get("/deployments/{deployment}/report", dependencies=[READ])
async def report(
    deployment: str,
    request: Request,
    result_id: Annotated[str | None, Query(max_length=MAX_ID)] = None,
    history: Annotated[int, Query(ge=1, le=1000)] = 50,
    format: Annotated[str, Query(pattern="^(html|json)$")] = "html",
) -> Response:
    """The monitoring report of a deployment: the chosen (default newest) result and the
    history. ``format=html`` (default) is the self-contained page as a download (no script;
    its own CSP; ``nosniff`` as on every answer); ``format=json`` the same content as JSON."""
    name = deployment_name(deployment)

    def call() -> Response:
        from keel.monitoring._report import render_html, report_document

        doc = report_document(
            monitoring_stores(request).monitors,
            name,
            result_id=result_id,
            history=history,
            run_hint=f"POST /api/v1/monitoring/deployments/{name}/run",
        )
        if format == "json":
            return reply(doc)
        return Response(
            render_html(doc).encode(),
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}-monitor-report.html"',
                "Content-Security-Policy": REPORT_CSP,
            },
        )

    return await run_in_threadpool(call)


# -- schedules ---------------------------------------------------------------------------------


@router.get("/schedules", dependencies=[READ])
async def list_schedules(request: Request) -> Response:
    """Every recurring monitor, by deployment (with readable next/last run times)."""
    from keel.monitoring._monitor_worker import describe

    def call() -> dict[str, Any]:
        return {"schedules": describe(monitoring_stores(request).monitors.list_schedules())}

    return reply(await run_in_threadpool(call))


@router.put("/schedules/{deployment}", dependencies=[WRITE])
async def set_schedule(deployment: str, request: Request) -> Response:
    """Create or replace the schedule of a deployment: ``every`` (``1h``, at least ``1m``),
    ``first_due_ms`` (default: now) and ``options`` as for a run (a relative ``window``;
    a ``reference`` is a dataset version or ``log:`` window). A worker runs it when due."""
    from keel.monitoring._monitor_worker import MIN_EVERY_MS, check_options, describe
    from keel.monitoring._windows import parse_duration

    name = deployment_name(deployment)
    _, body = await read_json(request)
    unknown = sorted(set(body) - {"every", "first_due_ms", "options"})
    if unknown:
        raise InvalidInput("known: every, first_due_ms, options", field=unknown[0])
    every = body.get("every")
    if not isinstance(every, str) and (isinstance(every, bool) or not isinstance(every, int)):
        raise InvalidInput("must be a duration such as 1h, or milliseconds", field="every")
    every_ms = parse_duration(every, field="every") if isinstance(every, str) else every
    if every_ms < MIN_EVERY_MS:
        raise InvalidInput("must be at least 1m", field="every")
    first = body.get("first_due_ms")
    if first is not None and (isinstance(first, bool) or not isinstance(first, int)):
        raise InvalidInput("must be a time in epoch milliseconds", field="first_due_ms")
    if first is not None and not 0 <= first < 2**62:
        raise InvalidInput("must be a time in epoch milliseconds", field="first_due_ms")
    raw_options = body.get("options") or {}
    if not isinstance(raw_options, dict):
        raise InvalidInput("must be an object of monitor options", field="options")
    if raw_options.get("reference") is not None:
        server_reference(raw_options["reference"])  # refuse paths; stored as written
    stored = check_options(raw_options)

    def call() -> dict[str, Any]:
        got = monitoring_stores(request).monitors.set_schedule(
            name,
            every_ms=every_ms,
            options=stored,
            first_due_ms=_time.now_ms() if first is None else first,
        )
        return describe([got])[0]

    return reply(await run_in_threadpool(call))


@router.delete("/schedules/{deployment}", dependencies=[WRITE])
async def delete_schedule(deployment: str, request: Request) -> Response:
    """Stop monitoring a deployment on a schedule (404 if it had none; results stay)."""
    name = deployment_name(deployment)
    await run_in_threadpool(lambda: monitoring_stores(request).monitors.delete_schedule(name))
    return Response(status_code=204)


# -- Prometheus --------------------------------------------------------------------------------


@router.get("/metrics", dependencies=[READ])
async def metrics(request: Request) -> Response:
    """The newest stored result of every deployment in the Prometheus text format (scrape it
    with a viewer token: ``authorization: {credentials: keel_…}``)."""

    def call() -> bytes:
        from prometheus_client import generate_latest

        from keel.monitoring._prometheus import registry

        return generate_latest(registry(store=monitoring_stores(request).monitors))

    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(await run_in_threadpool(call), media_type=CONTENT_TYPE_LATEST)
