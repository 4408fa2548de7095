"""Deployments over HTTP (``HttpDeploymentStore``'s server): list, show and history for
viewers, create and change for maintainers (on some project: deployments, like registered
models, belong to none). The server runs the same ``Deployments`` checks as the library (the
versions exist and are READY) and records every change under the signed-in user. Feedback
(true labels) is posted to the serving app, not here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel.auth import Principal, Role
from keel.errors import InvalidInput
from keel.server._idempotency import idempotent
from keel.server._policy import current_principal, role_anywhere
from keel.server._state import get_state
from keel.server.routes.tracking import read_json, reply
from keel.serving._deployments_http import deployment_from_wire

Caller = Annotated[Principal, Depends(current_principal)]
router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])

# What a change may name (Deployment.config_dict()).
_FIELDS = frozenset(
    {"model", "champion", "challenger", "mode", "percent", "sticky_key", "settings"}
)
READ = role_anywhere(Role.VIEWER)
WRITE = role_anywhere(Role.MAINTAINER)


@router.get("", dependencies=[READ])
async def list_deployments(request: Request) -> Response:
    """Every deployment, by name."""
    state = get_state(request)
    found = await run_in_threadpool(state.deployments.list)
    return reply({"deployments": [d.to_dict() for d in found]})


@router.post("", dependencies=[WRITE], status_code=201)
async def create_deployment(request: Request, principal: Caller) -> Response:
    """Create a deployment (409 if the name is taken); its versions must exist and be READY."""
    state = get_state(request)
    raw, body = await read_json(request)
    deployment = deployment_from_wire(body)

    def call() -> Response:
        made = state.deployments.create(deployment, actor=principal.username)
        return reply(made.to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.get("/{name}", dependencies=[READ])
async def get_deployment(name: str, request: Request) -> Response:
    """One deployment."""
    state = get_state(request)
    return reply((await run_in_threadpool(state.deployments.get, name)).to_dict())


@router.patch("/{name}", dependencies=[WRITE])
async def set_deployment(name: str, request: Request, principal: Caller) -> Response:
    """Change fields of a deployment (``changes``: champion, challenger, mode, percent,
    sticky_key, settings) as its next revision; with ``expected_revision``, 409 if someone
    changed it since."""
    state = get_state(request)
    _, body = await read_json(request)
    changes = body.get("changes")
    if not isinstance(changes, dict):
        raise InvalidInput("must be an object of fields to change", field="changes")
    unknown = set(changes) - _FIELDS
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {sorted(unknown)}; changeable: {', '.join(sorted(_FIELDS))}",
            field="changes",
        )
    expected = body.get("expected_revision")
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
        raise InvalidInput("must be a revision number", field="expected_revision")
    if "settings" in changes and not isinstance(changes["settings"], dict):
        raise InvalidInput("must be an object", field="settings")
    got = await run_in_threadpool(
        lambda: state.deployments.set(
            name, actor=principal.username, expected_revision=expected, **changes
        )
    )
    return reply(got.to_dict())


@router.get("/{name}/history", dependencies=[READ])
async def history(name: str, request: Request) -> Response:
    """Every change of a deployment, oldest first: who, what, when."""
    state = get_state(request)
    found = await run_in_threadpool(state.deployments.history, name)
    return reply({"history": [c.to_dict() for c in found]})
