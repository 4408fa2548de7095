"""The model registry and model releases over HTTP (``HttpModelRegistry`` and
``HttpReleaseStore``'s server): parse, call the server's stores, serialise.

Registered models belong to no project (like datasets): reading them needs a role on some
project, changing them (registering versions, tags, aliases, promotion decisions, approvals,
card fields) the maintainer role on some project, and marking a version trusted a global
admin. Identities come from the signed-in principal, never from the body: a decision is
recorded under the caller's name, an approval is the caller's. Names travel in the query or
the body (``keel.models._http``), so a bad one meets the registry's own check.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel.auth import Principal, Role
from keel.errors import InvalidInput
from keel.models._http import files_from_wire, new_version_from_wire
from keel.models._release_http import approval_to_wire, decision_from_wire, evaluation_from_wire
from keel.server._idempotency import idempotent
from keel.server._policy import admin, current_principal, mark_unchanged, role_anywhere
from keel.server._state import ServerState, get_state
from keel.server.routes.artifacts import check_readable
from keel.server.routes.tracking import read_json, reply

Caller = Annotated[Principal, Depends(current_principal)]
router = APIRouter(prefix="/api/v1/models", tags=["models"])

READ = role_anywhere(Role.VIEWER)
WRITE = role_anywhere(Role.MAINTAINER)


def _text(body: dict[str, Any], field: str, *, optional: bool = False) -> Any:
    value = body.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    return value


def _number(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise InvalidInput("must be a version number >= 1", field=field)
    return value


def _tags(body: dict[str, Any]) -> tuple[dict[str, str] | None, list[str]]:
    tags, delete = body.get("tags"), body.get("delete_tags") or []
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise InvalidInput("must be an object of strings", field="tags")
    if not isinstance(delete, list) or not all(isinstance(k, str) for k in delete):
        raise InvalidInput("must be a list of strings", field="delete_tags")
    return tags, delete


def _v(version: int) -> int:
    if not 1 <= version < 2**31:
        raise InvalidInput("must be a version number >= 1", field="version")
    return version


# -- models ------------------------------------------------------------------------------------


@router.get("", dependencies=[READ])
async def list_models(request: Request) -> Response:
    """Every registered model, by name."""
    state = get_state(request)
    found = await run_in_threadpool(state.models.registry.list_models)
    return reply({"models": [m.to_dict() for m in found]})


@router.post("", dependencies=[WRITE], status_code=201)
async def create_model(request: Request, principal: Caller) -> Response:
    """Register a model name (409 if taken)."""
    state = get_state(request)
    raw, body = await read_json(request)
    name, description = _text(body, "name"), _text(body, "description", optional=True) or ""
    tags, _ = _tags(body)

    def call() -> Response:
        made = state.models.registry.create_model(name, description=description, tags=tags)
        return reply(made.to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/model", dependencies=[READ])
async def get_model(name: str, request: Request) -> Response:
    """One registered model with its tags and aliases."""
    state = get_state(request)
    return reply((await run_in_threadpool(state.models.registry.get_model, name)).to_dict())


@router.patch("/model", dependencies=[WRITE])
async def update_model(request: Request) -> Response:
    """Replace the description and/or set and delete tags of a model."""
    state = get_state(request)
    _, body = await read_json(request)
    name = _text(body, "name")
    description = _text(body, "description", optional=True)
    tags, delete = _tags(body)
    got = await run_in_threadpool(
        lambda: state.models.registry.update_model(
            name, description=description, tags=tags, delete_tags=delete
        )
    )
    return reply(got.to_dict())


# -- versions ----------------------------------------------------------------------------------


@router.post("/versions", dependencies=[WRITE], status_code=201)
async def create_version(request: Request, principal: Caller) -> Response:
    """Record a PENDING version (numbered race-free); its files follow with ``complete``."""
    state = get_state(request)
    raw, body = await read_json(request)
    new = new_version_from_wire(body)

    def call() -> Response:
        return reply(state.models.registry.create_version(new).to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.post("/versions/complete", dependencies=[WRITE])
async def complete_version(request: Request, principal: Caller) -> Response:
    """End a PENDING version: READY with its files (stored objects the caller can read), or
    FAILED with ``error``."""
    state = get_state(request)
    _, body = await read_json(request)
    name, number = _text(body, "name"), _number(body, "version")
    error = _text(body, "error", optional=True)
    files = files_from_wire(body.get("files") or [])
    if len(files) > state.limits.max_batch_items:
        from keel.errors import LimitExceeded

        raise LimitExceeded(f"at most {state.limits.max_batch_items} files", field="files")

    def call() -> dict[str, Any]:
        # A version's files become readable to its readers: the caller must be able to read
        # each one already (the client has verified the bytes before completing).
        check_readable(state, principal, [f.digest for f in files])
        done = state.models.registry.complete_version(name, number, files=files, error=error)
        return done.to_dict()

    return reply(await run_in_threadpool(call))


@router.post("/versions/search", dependencies=[READ])
async def list_versions(request: Request) -> Response:
    """Versions of ``name`` (or of every model), optionally only those of ``run_ids`` or in
    ``status``. A POST because a list of run ids may not fit a query string; it changes
    nothing and is not audited."""
    mark_unchanged(request)
    state = get_state(request)
    _, body = await read_json(request)
    name = _text(body, "name", optional=True)
    run_ids = body.get("run_ids")
    if run_ids is not None and (
        not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids)
    ):
        raise InvalidInput("must be a list of run ids", field="run_ids")
    if run_ids is not None and len(run_ids) > state.limits.max_batch_items:
        from keel.errors import LimitExceeded

        raise LimitExceeded(f"at most {state.limits.max_batch_items} run ids", field="run_ids")
    status_text = _text(body, "status", optional=True)
    from keel.models import VersionStatus

    try:
        status = None if status_text is None else VersionStatus(status_text)
    except ValueError:
        raise InvalidInput(
            f"must be one of {', '.join(s.value for s in VersionStatus)}", field="status"
        ) from None
    found = await run_in_threadpool(
        lambda: state.models.registry.list_versions(name, run_ids=run_ids, status=status)
    )
    return reply({"versions": [v.to_dict() for v in found]})


@router.get("/version", dependencies=[READ])
async def get_version(name: str, version: int, request: Request) -> Response:
    """One version with its files, tags and aliases."""
    state = get_state(request)
    got = await run_in_threadpool(state.models.registry.get_version, name, _v(version))
    return reply(got.to_dict())


@router.patch("/version", dependencies=[WRITE])
async def update_version(request: Request) -> Response:
    """Replace the description and/or set and delete tags of a version."""
    state = get_state(request)
    _, body = await read_json(request)
    name, number = _text(body, "name"), _number(body, "version")
    description = _text(body, "description", optional=True)
    tags, delete = _tags(body)
    got = await run_in_threadpool(
        lambda: state.models.registry.update_version(
            name, number, description=description, tags=tags, delete_tags=delete
        )
    )
    return reply(got.to_dict())


@router.post("/trust", dependencies=[admin()])
async def mark_trusted(request: Request) -> Response:
    """Allow (or forbid again) loading a version whose files run code: global admins."""
    state = get_state(request)
    _, body = await read_json(request)
    name, number, reason = _text(body, "name"), _number(body, "version"), _text(body, "reason")
    trusted = body.get("trusted", True)
    if not isinstance(trusted, bool):
        raise InvalidInput("expected true or false", field="trusted")
    got = await run_in_threadpool(
        lambda: state.models.registry.mark_trusted(name, number, reason=reason, trusted=trusted)
    )
    return reply(got.to_dict())


@router.get("/referenced-digests", dependencies=[admin()])
async def referenced_digests(request: Request) -> Response:
    """Every file digest a version refers to (what garbage collection keeps)."""
    state = get_state(request)
    digests = await run_in_threadpool(
        lambda: sorted(set(state.models.registry.referenced_digests()))
    )
    return reply({"digests": digests})


@router.get("/lineage", dependencies=[READ])
async def lineage(uri: str, request: Request, principal: Caller) -> Response:
    """A version's run (params, metrics; only if the caller can read its project), datasets
    and code commit."""
    state = get_state(request)

    def call() -> dict[str, Any]:
        found = state.models.lineage(uri)
        data = found.to_dict()
        run = found.run
        if run is not None and state.auth.role_in(principal, run.project) is None:
            data["run"] = None  # the run id stays: it is part of the version's own record
        return data

    return reply(await run_in_threadpool(call))


# -- aliases -----------------------------------------------------------------------------------


@router.put("/aliases", dependencies=[WRITE])
async def set_alias(request: Request) -> Response:
    """Point ``name@alias`` at a READY version."""
    state = get_state(request)
    _, body = await read_json(request)
    name, alias, number = _text(body, "name"), _text(body, "alias"), _number(body, "version")
    got = await run_in_threadpool(state.models.registry.set_alias, name, alias, number)
    return reply(got.to_dict())


@router.delete("/aliases", dependencies=[WRITE])
async def delete_alias(name: str, alias: str, request: Request) -> Response:
    """Remove ``name@alias`` (404 if absent)."""
    state = get_state(request)
    await run_in_threadpool(state.models.registry.delete_alias, name, alias)
    return Response(status_code=204)


@router.get("/aliases", dependencies=[READ])
async def resolve_alias(name: str, alias: str, request: Request) -> Response:
    """The version ``name@alias`` points at (``latest``: the newest READY one)."""
    state = get_state(request)
    got = await run_in_threadpool(state.models.registry.resolve_alias, name, alias)
    return reply(got.to_dict())


# -- releases: decisions, approvals, evaluations, cards -----------------------------------------


def _versions_of(state: ServerState, name: str, version: int | None) -> None:
    """404 unless the model (and version) exist: the registry is the authority."""
    if version is None:
        state.models.registry.get_model(name)
    else:
        state.models.registry.get_version(name, version)


@router.post("/decisions", dependencies=[WRITE], status_code=201)
async def save_decision(request: Request, principal: Caller) -> Response:
    """Record a promotion decision or gate check with its evidence, under the caller's name
    (what ``keel.models.promote`` records; the alias moves by ``PUT /aliases``)."""
    from dataclasses import replace

    state = get_state(request)
    raw, body = await read_json(request)
    decision = replace(decision_from_wire(body), actor=principal.username, moved=False)

    def call() -> Response:
        _versions_of(state, decision.name, decision.version)
        return reply(state.releases.save_decision(decision).to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.post("/promote", dependencies=[WRITE])
async def promote(request: Request, principal: Caller) -> Response:
    """Run the gates for ``alias`` on the server, record the decision under the caller's name
    and move the alias when every gate passed or ``override_reason`` is given (``check: true``
    moves nothing: a recorded gate check). The gates travel in the body as the ``[gates]``
    table of ``keel.toml`` (the server reads no gates file); gates that score the model on a
    dataset run where the data is read, with ``keel models promote`` pointed at the server."""
    from keel.models._gates import parse_gates
    from keel.models._promote import promote as promote_version

    state = get_state(request)
    _, body = await read_json(request)
    name, number = _text(body, "name"), _number(body, "version")
    alias = _text(body, "alias", optional=True) or "champion"
    override = _text(body, "override_reason", optional=True)
    check = body.get("check", False)
    if not isinstance(check, bool):
        raise InvalidInput("expected true or false", field="check")
    table = body.get("gates")
    table = {} if table is None else table
    if not isinstance(table, dict):
        raise InvalidInput("must be the [gates] table as a JSON object", field="gates")
    spec = parse_gates(table, alias, source="<request>")
    if spec.needs_predictions:
        raise InvalidInput(
            "metric, beat and fairness gates score the model on a dataset; run them with "
            "`keel models promote` (KEEL_TRACKING_URI pointed at this server)",
            field="gates",
        )

    def call() -> dict[str, Any]:
        decision = promote_version(
            state.models,
            state.releases,
            name,
            number,
            alias,
            gates=spec,
            override_reason=override,
            actor=principal.username,
            move=not check,
        )
        return decision.to_dict()

    return reply(await run_in_threadpool(call))


@router.post("/decisions/moved", dependencies=[WRITE])
async def mark_moved(request: Request) -> Response:
    """Record that the alias of a stored decision has moved."""
    state = get_state(request)
    _, body = await read_json(request)
    decision_id = _text(body, "id")
    got = await run_in_threadpool(state.releases.mark_moved, decision_id)
    return reply(got.to_dict())


@router.get("/decisions", dependencies=[READ])
async def list_decisions(
    name: str, request: Request, version: Annotated[int | None, Query()] = None
) -> Response:
    """Decisions about ``name`` (one version if given), newest first."""
    state = get_state(request)
    number = None if version is None else _v(version)
    found = await run_in_threadpool(state.releases.list_decisions, name, number)
    return reply({"decisions": [d.to_dict() for d in found]})


@router.post("/approvals", dependencies=[WRITE], status_code=201)
async def approve(request: Request, principal: Caller) -> Response:
    """The caller approves a version (the author of a version cannot approve it)."""
    from keel.models._promote import approve as approve_version

    state = get_state(request)
    _, body = await read_json(request)
    name, number = _text(body, "name"), _number(body, "version")
    comment = _text(body, "comment", optional=True) or ""
    got = await run_in_threadpool(
        lambda: approve_version(
            state.models, state.releases, name, number, user=principal.username, comment=comment
        )
    )
    return reply(approval_to_wire(got), 201)


@router.get("/approvals", dependencies=[READ])
async def list_approvals(name: str, version: int, request: Request) -> Response:
    """Approvals of one version, oldest first."""
    state = get_state(request)
    found = await run_in_threadpool(state.releases.list_approvals, name, _v(version))
    return reply({"approvals": [approval_to_wire(a) for a in found]})


@router.post("/evaluations", dependencies=[role_anywhere(Role.EDITOR)], status_code=201)
async def save_evaluation(request: Request, principal: Caller) -> Response:
    """Store an evaluation of a version (what ``keel.models.evaluate`` computed)."""
    state = get_state(request)
    raw, body = await read_json(request)
    result = evaluation_from_wire(body)

    def call() -> Response:
        _versions_of(state, result.name, result.version)
        return reply(state.releases.save_evaluation(result).to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/evaluations", dependencies=[READ])
async def list_evaluations(
    name: str, request: Request, version: Annotated[int | None, Query()] = None
) -> Response:
    """Stored evaluations of ``name`` (one version if given), newest first."""
    state = get_state(request)
    number = None if version is None else _v(version)
    found = await run_in_threadpool(state.releases.list_evaluations, name, number)
    return reply({"evaluations": [e.to_dict() for e in found]})


@router.put("/cards", dependencies=[WRITE])
async def set_card_fields(request: Request) -> Response:
    """Set the hand-written fields of a version's model card (an empty value removes one)."""
    state = get_state(request)
    _, body = await read_json(request)
    name, number = _text(body, "name"), _number(body, "version")
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise InvalidInput("must be an object of card fields", field="fields")

    def call() -> None:
        state.models.registry.get_version(name, number)
        state.releases.set_card_fields(name, number, fields)

    await run_in_threadpool(call)
    return Response(status_code=204)


@router.get("/cards", dependencies=[READ])
async def card_fields(name: str, version: int, request: Request) -> Response:
    """The hand-written card fields of a version (``[text, version it was set on]`` each)."""
    state = get_state(request)
    found = await run_in_threadpool(state.releases.card_fields, name, _v(version))
    return reply({"fields": {k: list(v) for k, v in found.items()}})
