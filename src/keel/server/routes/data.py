"""Dataset versions over HTTP (``HttpDataStore``'s server): parse, call the server's data
store, serialise. Datasets belong to no project, so reading and adding versions takes any
signed-in caller, and deleting one a global admin. Bytes go through the artifact routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel.auth import Principal, Role
from keel.data._http import new_from_wire, version_to_wire
from keel.errors import InvalidInput
from keel.server._idempotency import idempotent
from keel.server._policy import admin, authenticated, current_principal, role_anywhere
from keel.server._state import get_state
from keel.server.routes.artifacts import check_readable
from keel.server.routes.tracking import read_json, reply

Caller = Annotated[Principal, Depends(current_principal)]
router = APIRouter(prefix="/api/v1/data", tags=["data"])


@router.post("/versions", dependencies=[role_anywhere(Role.EDITOR)], status_code=201)
async def create_version(request: Request, principal: Caller) -> Response:
    """Record a version whose bytes are already stored (numbered race-free)."""
    state = get_state(request)
    raw, body = await read_json(request)
    new = new_from_wire(body)

    def call() -> Response:
        # A dataset's objects become readable to anyone with a role: the caller must be able
        # to read each one already (it uploaded them, or they are shared with it).
        objects = new.objects if isinstance(new.objects, tuple) else ()
        check_readable(state, principal, [d for d in (new.digest, *objects) if isinstance(d, str)])
        return reply(version_to_wire(state.data.create_version(new)), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/resolve", dependencies=[authenticated()])
async def resolve(ref: str, request: Request) -> Response:
    """The version ``ref`` names (``name``, ``name@vN``, ``name@tag``)."""
    state = get_state(request)
    return reply(version_to_wire(await run_in_threadpool(state.data.resolve, ref)))


@router.get("/find-by-source", dependencies=[authenticated()])
async def find_by_source(name: str, source_digest: str, request: Request) -> Response:
    """The latest live version of ``name`` made from ``source_digest``, or null."""
    state = get_state(request)
    found = await run_in_threadpool(state.data.find_by_source, name, source_digest)
    return reply({"version": None if found is None else version_to_wire(found)})


@router.get("/versions", dependencies=[authenticated()])
async def list_versions(request: Request, name: str | None = None) -> Response:
    """Live versions, by name then version."""
    state = get_state(request)
    found = await run_in_threadpool(state.data.list_versions, name)
    return reply({"versions": [version_to_wire(v) for v in found]})


@router.post("/tags", dependencies=[role_anywhere(Role.EDITOR)])
async def set_tag(request: Request) -> Response:
    """Point ``name@tag`` at a version."""
    state = get_state(request)
    _, body = await read_json(request)
    ref, tag = body.get("ref"), body.get("tag")
    got = await run_in_threadpool(state.data.set_tag, ref, tag)  # type: ignore[arg-type]
    return reply(version_to_wire(got))


@router.delete("/versions", dependencies=[admin()])
async def delete_version(ref: str, request: Request) -> Response:
    """Soft-delete a version (its bytes stay for garbage collection)."""
    state = get_state(request)
    return reply(version_to_wire(await run_in_threadpool(state.data.delete_version, ref)))


@router.get("/referenced-digests", dependencies=[admin()])
async def referenced_digests(request: Request) -> Response:
    """Every object digest a live version needs."""
    state = get_state(request)
    digests = await run_in_threadpool(lambda: sorted(set(state.data.referenced_digests())))
    return reply({"digests": digests})


@router.post("/contracts", dependencies=[role_anywhere(Role.EDITOR)])
async def save_contract(request: Request, principal: Caller) -> Response:
    """Store a new version of a data contract; its number."""
    state = get_state(request)
    raw, body = await read_json(request)
    name: Any = body.get("name")
    text: Any = body.get("text")

    def call() -> Response:
        return reply({"version": state.data.save_contract(name, text)})

    return await idempotent(request, principal, raw, call)


@router.get("/contracts", dependencies=[authenticated()])
async def get_contract(name: str, request: Request, version: int | None = None) -> Response:
    """A contract's text (default: its newest version)."""
    state = get_state(request)
    if version is not None and version < 1:
        raise InvalidInput("versions count from 1", field="version")
    number, text = await run_in_threadpool(state.data.get_contract, name, version)
    return reply({"version": number, "text": text})
