"""Tracking over HTTP: projects, runs, logging, search, lineage (``HttpTrackingStore``'s server).

Each handler parses the request, calls the server's tracking store and serialises the answer
with orjson in the shapes of ``keel.tracking._wire``. Run-scoped routes take their project
from the STORED run (``run_project``), never from the request. Create and batch routes honour
``Idempotency-Key`` (``keel.server._idempotency``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel._time import now_ms
from keel.auth import Principal, Role
from keel.errors import InvalidInput, KeelError, LimitExceeded, PermissionDenied
from keel.server._errors import status_of
from keel.server._idempotency import HEADER, Stored, claim_with_answer, idempotent, replay
from keel.server._policy import (
    admin,
    authenticated,
    current_principal,
    path_project,
    project_role,
)
from keel.server._state import ServerState, get_state
from keel.tracking import _wire
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import RunStatus
from keel.tracking._sql import SqlTrackingStore

Caller = Annotated[Principal, Depends(current_principal)]

router = APIRouter(prefix="/api/v1", tags=["tracking"])

_RUN_PROJECTS: OrderedDict[tuple[int, str], str] = OrderedDict()
_RUN_PROJECTS_MAX = 10_000
_cache_lock = threading.Lock()


def run_project(request: Request, state: ServerState) -> str:
    """The project of the run named by the ``run_id`` path parameter, as stored. A run never
    moves between projects, so the answer is cached (per store) after the first lookup."""
    run_id = str(request.path_params["run_id"])
    key = (id(state.tracking), run_id)
    with _cache_lock:
        found = _RUN_PROJECTS.get(key)
    if found is not None:
        return found
    project = state.tracking.get_run(run_id).project
    with _cache_lock:
        _RUN_PROJECTS[key] = project
        if len(_RUN_PROJECTS) > _RUN_PROJECTS_MAX:
            _RUN_PROJECTS.popitem(last=False)
    return project


def reply(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def read_json(request: Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body (for idempotency hashing) and the JSON object it holds ({} if empty)."""
    raw = await request.body()
    if not raw:
        return raw, {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}", field="body") from exc
    return raw, _wire.obj(data)


def _batch_limit(state: ServerState, count: int, field: str) -> None:
    if count > state.limits.max_batch_items:
        raise LimitExceeded(
            f"{count} items in one request; the server takes at most "
            f"{state.limits.max_batch_items} (send several batches)",
            field=field,
        )


def _viewable(state: ServerState, principal: Principal) -> list[str] | None:
    """The projects ``principal`` may read; None means all of them (a global admin)."""
    if principal.is_admin:
        return None
    return [
        p.name
        for p in state.tracking.list_projects()
        if state.auth.role_in(principal, p.name) is not None
    ]


# -- projects ------------------------------------------------------------------------------


@router.post("/projects", dependencies=[admin()], status_code=201)
async def create_project(request: Request, principal: Caller) -> Response:
    """Create a project (global admins; others are granted roles on existing projects)."""
    state = get_state(request)
    raw, body = await read_json(request)

    def call() -> Response:
        name: Any = body.get("name")  # the store checks the type
        made = state.tracking.create_project(name, description=body.get("description", ""))
        return reply(_wire.project_to_wire(made), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/projects", dependencies=[authenticated()])
async def list_projects(request: Request, principal: Caller) -> Response:
    """The projects the caller can see, by name."""
    state = get_state(request)

    def call() -> Response:
        visible = _viewable(state, principal)
        projects = state.tracking.list_projects()
        if visible is not None:
            projects = [p for p in projects if p.name in set(visible)]
        return reply({"projects": [_wire.project_to_wire(p) for p in projects]})

    return await run_in_threadpool(call)


@router.get("/projects/{project}", dependencies=[project_role(Role.VIEWER, project=path_project())])
async def get_project(project: str, request: Request) -> Response:
    """One project."""
    state = get_state(request)
    got = await run_in_threadpool(state.tracking.get_project, project)
    return reply(_wire.project_to_wire(got))


@router.put("/projects/{project}", dependencies=[project_role(Role.EDITOR, project=path_project())])
async def ensure_project(project: str, request: Request) -> Response:
    """The project, created if absent (race-free)."""
    state = get_state(request)
    got = await run_in_threadpool(lambda: state.tracking.get_project(project, create=True))
    return reply(_wire.project_to_wire(got))


# -- runs ----------------------------------------------------------------------------------


@router.post(
    "/projects/{project}/runs",
    dependencies=[project_role(Role.EDITOR, project=path_project())],
    status_code=201,
)
async def create_run(project: str, request: Request, principal: Caller) -> Response:
    """Start a run in ``project``; a given ``run_id`` makes the call idempotent."""
    state = get_state(request)
    raw, body = await read_json(request)
    tags = body.get("tags")
    if isinstance(tags, dict):
        _batch_limit(state, len(tags), "tags")

    def call() -> Response:
        given = body.get("run_id")
        if given is not None and not principal.is_admin:
            # An existing id returns that run, which may live in another project: only to
            # someone who may read it there.
            from keel.errors import NotFound

            try:
                existing = state.tracking.get_run(given)
            except NotFound:
                existing = None
            if existing is not None and state.auth.role_in(principal, existing.project) is None:
                raise PermissionDenied(f"run {given} belongs to a project you cannot read")
        run = state.tracking.create_run(
            project=project,
            name=body.get("name"),
            parent_id=body.get("parent_id"),
            env=_wire.env_from_wire(body.get("env")),
            tags=tags,
            start_ms=body.get("start_ms"),
            run_id=given,
        )
        return reply(_wire.run_to_wire(run), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/runs/{run_id}", dependencies=[project_role(Role.VIEWER, project=run_project)])
async def get_run(run_id: str, request: Request) -> Response:
    """One run with its params, latest metrics, tags and inputs/outputs."""
    state = get_state(request)
    run = await run_in_threadpool(state.tracking.get_run, run_id)
    return reply(_wire.run_to_wire(run))


@router.patch("/runs/{run_id}", dependencies=[project_role(Role.EDITOR, project=run_project)])
async def update_run(run_id: str, request: Request, principal: Caller) -> Response:
    """Change a run's status, name, note, heartbeat or git state; optional final points."""
    state = get_state(request)
    raw, body = await read_json(request)
    status = body.get("status")

    def call() -> Response:
        points = _wire.metrics_from_wire(body.get("metrics"))
        _batch_limit(state, len(points), "metrics")
        state.tracking.update_run(
            run_id,
            status=None if status is None else _status(status),
            end_ms=body.get("end_ms"),
            name=body.get("name"),
            note=body.get("note"),
            heartbeat_ms=body.get("heartbeat_ms"),
            git_dirty=body.get("git_dirty"),
            metrics=points,
        )
        return Response(status_code=204)

    return await idempotent(request, principal, raw, call)


def _status(value: object) -> RunStatus:
    try:
        return RunStatus(str(value))
    except ValueError as exc:
        raise InvalidInput(f"unknown status {value!r}", field="status") from exc


@router.delete("/runs/{run_id}", dependencies=[project_role(Role.EDITOR, project=run_project)])
async def delete_run(run_id: str, request: Request) -> Response:
    """Soft-delete a run (hidden from search, restorable)."""
    state = get_state(request)
    await run_in_threadpool(state.tracking.delete_run, run_id)
    return Response(status_code=204)


@router.post(
    "/runs/{run_id}/purge", dependencies=[project_role(Role.MAINTAINER, project=run_project)]
)
async def purge_run(run_id: str, request: Request, principal: Caller) -> Response:
    """Delete a run for good (its metrics, params, tags and file records)."""
    state = get_state(request)

    def call() -> Response:
        state.tracking.delete_run(run_id, hard=True)
        return Response(status_code=204)

    return await idempotent(request, principal, b"", call)


@router.post("/runs/search", dependencies=[authenticated()])
async def search_runs(request: Request, principal: Caller) -> Response:
    """Runs matching a filter (the search language), one page at a time, among the projects
    the caller can read."""
    state = get_state(request)
    _, body = await read_json(request)
    projects = body.get("projects")
    max_results = body.get("max_results", 1000)
    if isinstance(max_results, int) and max_results > state.limits.max_page_size:
        max_results = state.limits.max_page_size  # a page, not an error: next_token follows

    def call() -> Response:
        visible = _viewable(state, principal)
        wanted = projects
        if visible is not None:
            if wanted is None:
                wanted = visible
            elif isinstance(wanted, list):
                hidden = [p for p in wanted if p not in visible]
                if hidden:
                    raise PermissionDenied(f"you cannot read project {hidden[0]!r}")
            if not wanted:
                return reply({"items": [], "next_token": None})
        page = state.tracking.search_runs(
            projects=wanted,
            filter=body.get("filter", ""),
            order_by=body.get("order_by", ()),
            max_results=max_results,
            page_token=body.get("page_token"),
            include_deleted=bool(body.get("include_deleted", False)),
        )
        return reply(_wire.page_to_wire(page))

    return await run_in_threadpool(call)


@router.post("/runs/fail-stale", dependencies=[authenticated()])
async def fail_stale_runs(request: Request, principal: Caller) -> Response:
    """Mark FAILED the RUNNING runs whose heartbeat lapsed. Admins choose the clock and the
    timeout; anyone else gets the server's clock and at least the default timeout, so a client
    cannot fail other people's live runs."""
    state = get_state(request)
    raw, body = await read_json(request)

    def call() -> Response:
        now, timeout = body.get("now_ms"), body.get("timeout_ms")
        if not principal.is_admin:
            from keel.config import get_settings

            floor = int(get_settings().heartbeat_timeout_s * 1000)
            now = now_ms()
            timeout = max(timeout, floor) if isinstance(timeout, int) else floor
        failed = state.tracking.fail_stale_runs(now_ms=now, timeout_ms=timeout)  # type: ignore[arg-type]
        return reply({"run_ids": failed})

    return await idempotent(request, principal, raw, call)


# -- logging -------------------------------------------------------------------------------


@router.post("/runs/{run_id}/batch", dependencies=[project_role(Role.EDITOR, project=run_project)])
async def log_batch(run_id: str, request: Request, principal: Caller) -> Response:
    """Metrics (as columns), params and tags, stored all together or not at all.

    With an ``Idempotency-Key`` on a SQL store, the key is claimed and its answer recorded in
    the batch's own transaction (one commit per batch instead of three); a batch refused with
    a client error is answered through the general path, which records errors too.
    """
    state = get_state(request)
    raw, body = await read_json(request)
    params, tags = body.get("params"), body.get("tags")
    for name, value in (("params", params), ("tags", tags)):
        if isinstance(value, dict):
            _batch_limit(state, len(value), name)

    def points() -> MetricColumns:
        found = _wire.metrics_from_wire(body.get("metrics"))
        if len(found) > state.limits.max_batch_items:
            _batch_limit(state, len(found), "metrics")
        return found

    def call() -> Response:
        state.tracking.log_batch(run_id, metrics=points(), params=params, tags=tags)
        return Response(status_code=204)

    tracking = state.tracking
    if HEADER not in request.headers or not isinstance(tracking, SqlTrackingStore):
        return await idempotent(request, principal, raw, call)

    def once() -> Response:
        claim = claim_with_answer(request, principal, raw, Stored(204, b""))
        stored = tracking.log_batch_guarded(
            run_id, metrics=points(), params=params, tags=tags, guard=claim
        )
        return Response(status_code=204) if stored is None else replay(stored)

    try:
        return await run_in_threadpool(once)
    except KeelError as exc:
        if status_of(exc) >= 500:
            raise
    return await idempotent(request, principal, raw, call)


@router.get(
    "/runs/{run_id}/metric-history",
    dependencies=[project_role(Role.VIEWER, project=run_project)],
)
async def metric_history(run_id: str, key: str, request: Request) -> Response:
    """Every point of one metric, by (step, timestamp)."""
    state = get_state(request)
    points = await run_in_threadpool(state.tracking.metric_history, run_id, key)
    return reply(_wire.metrics_to_wire(points))


@router.post("/runs/{run_id}/io", dependencies=[project_role(Role.EDITOR, project=run_project)])
async def log_io(run_id: str, request: Request, principal: Caller) -> Response:
    """Record what a run read or wrote."""
    state = get_state(request)
    raw, body = await read_json(request)
    items = _wire.io_from_wire(body.get("items", []))
    _batch_limit(state, len(items), "items")

    def call() -> Response:
        state.tracking.log_io(run_id, items)
        return Response(status_code=204)

    return await idempotent(request, principal, raw, call)


@router.get("/lineage", dependencies=[authenticated()])
async def runs_using(
    ref: str,
    request: Request,
    principal: Caller,
    kind: str = "dataset",
    direction: str = "input",
) -> Response:
    """Ids of the runs that recorded ``ref``, among the projects the caller can read."""
    state = get_state(request)

    def call() -> Response:
        ids = state.tracking.runs_using(ref, kind=kind, direction=direction)
        visible = _viewable(state, principal)
        if visible is not None:
            allowed = set(visible)
            ids = [i for i in ids if state.tracking.get_run(i).project in allowed]
        return reply({"run_ids": ids})

    return await run_in_threadpool(call)


@router.post(
    "/runs/{run_id}/artifact-files",
    dependencies=[project_role(Role.EDITOR, project=run_project)],
)
async def record_artifacts(run_id: str, request: Request, principal: Caller) -> Response:
    """Attach stored files (path, digest, size) to a run. Every digest must be readable by the
    caller already (``check_readable``): naming a digest cannot earn the right to read it."""
    from keel.server.routes.artifacts import check_readable

    state = get_state(request)
    raw, body = await read_json(request)
    files = _wire.files_from_wire(body.get("files", []))
    _batch_limit(state, len(files), "files")

    def call() -> Response:
        check_readable(state, principal, [f.digest for f in files])
        state.tracking.record_artifacts(run_id, files)
        return Response(status_code=204)

    return await idempotent(request, principal, raw, call)


@router.get(
    "/runs/{run_id}/artifact-files",
    dependencies=[project_role(Role.VIEWER, project=run_project)],
)
async def list_artifacts(run_id: str, request: Request, prefix: str = "") -> Response:
    """The files of a run under ``prefix``, by path."""
    state = get_state(request)
    files = await run_in_threadpool(state.tracking.list_artifacts, run_id, prefix)
    return reply({"files": _wire.files_to_wire(files)})


@router.get("/artifacts/referenced-digests", dependencies=[admin()])
async def referenced_digests(request: Request) -> Response:
    """Every artifact digest the metadata refers to (what garbage collection keeps)."""
    state = get_state(request)
    digests = await run_in_threadpool(lambda: sorted(set(state.tracking.referenced_digests())))
    return reply({"digests": digests})
