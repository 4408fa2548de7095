"""Route policies: who may call a route. Every route declares exactly one, in its
``dependencies=[...]``; ``tests/server/test_route_policy.py`` fails on a route without one.

Usage (the factories return ``Depends`` objects; do not wrap them in ``Depends`` again)::

    @router.get("/runs/{run_id}", dependencies=[project_role(Role.VIEWER, project=run_project)])
    def get_run(run_id: str, principal: Annotated[Principal, Depends(current_principal)]) -> ...

- ``public()``: anyone, no credentials (health, login, the API schema and docs pages).
- ``authenticated()``: any signed-in user or valid token.
- ``admin()``: a global admin.
- ``role_anywhere(role)``: at least ``role`` on some project, for what belongs to no project
  (dataset versions and contracts): a viewer-only user or token cannot write them.
- ``project_role(role, project=...)``: at least ``role`` on the project the target belongs to.
  ``project(request, state)`` returns the project NAME from STORED data (the run's project for
  a ``run_id`` path parameter), never from a client-supplied field, except a create call whose
  path names the project it creates into. It may be sync (run in a thread) or async.

Credentials: ``Authorization: Bearer keel_…`` (a token), else the session cookie set by
``POST /api/v1/auth/login``. A cookie-authenticated request with a state-changing method must
carry ``X-CSRF-Token`` equal to its session's CSRF token (403 otherwise); token requests are
exempt because a browser never attaches them on its own.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from fastapi import Depends, Request, params
from starlette.concurrency import run_in_threadpool

# FastAPI reads the annotations at runtime: Principal must be imported for real (it is light).
from keel.auth import Principal
from keel.errors import PermissionDenied, Unauthenticated
from keel.server._state import ServerState, get_state

if TYPE_CHECKING:
    from keel.auth import Role

ProjectOf = Callable[[Request, ServerState], "str | Awaitable[str]"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
# Keys in the ASGI scope the audit middleware reads.
SCOPE_PRINCIPAL = "keel.principal"
SCOPE_ACTOR = "keel.actor"  # who tried, when no principal exists (a failed login's username)
SCOPE_RESOURCE = "keel.resource"  # what a route acted on, when the path does not say it
SCOPE_UNCHANGED = "keel.unchanged"  # set by a POST that turned out to change nothing

PolicyKind = Literal["public", "authenticated", "admin", "project", "anywhere"]


@dataclass(frozen=True, slots=True)
class Policy:
    """The marker each policy dependency carries as ``keel_policy``."""

    kind: PolicyKind
    role: int | None = None  # the minimum keel.auth.Role for "project" and "anywhere"

    @property
    def label(self) -> str:
        if self.kind not in ("project", "anywhere"):
            return self.kind
        from keel.auth import Role

        return f"{self.kind}:{Role(self.role or Role.VIEWER).label}"


def _marked(fn: Callable[..., Any], policy: Policy) -> params.Depends:
    fn.keel_policy = policy  # type: ignore[attr-defined]
    marked: params.Depends = Depends(fn)
    return marked


def policies_of(dependencies: list[params.Depends]) -> list[Policy]:
    """The policy markers among a route's dependencies."""
    found = []
    for dep in dependencies:
        marker = getattr(dep.dependency, "keel_policy", None)
        if isinstance(marker, Policy):
            found.append(marker)
    return found


def route_table(routes: Sequence[Any]) -> list[tuple[str, frozenset[str], list[Policy]]]:
    """``(path, methods, policies)`` of every route of an app (``app.routes``), with included
    routers flattened and their prefixes and router-level dependencies applied."""
    from fastapi import routing

    table = []
    for ctx in routing.iter_route_contexts(routes):
        dependencies = getattr(ctx, "dependencies", None)
        table.append(
            (
                str(ctx.path),
                frozenset(ctx.methods or ()),
                policies_of(list(dependencies)) if dependencies is not None else [],
            )
        )
    return table


def mark_unchanged(request: Request) -> None:
    """Say that this (state-changing method's) request changed nothing, so it is not audited
    as a change: a dry run, a check, a read with a body too large for a query string."""
    request.scope[SCOPE_UNCHANGED] = True


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _rate_check(state: ServerState, key: str) -> None:
    state.rate.hit(key)


def _authenticate(request: Request, state: ServerState) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        principal = state.auth.authenticate_token(credential.strip())
    else:
        cookie = request.cookies.get(state.settings.session_cookie)
        if not cookie:
            raise Unauthenticated(
                "sign in first: POST /api/v1/auth/login, or send 'Authorization: Bearer <token>'"
            )
        principal, csrf = state.auth.authenticate_session(cookie)
        if request.method not in SAFE_METHODS:
            request.scope[SCOPE_PRINCIPAL] = principal  # the refusal is audited under its name
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise PermissionDenied(
                    "missing or wrong X-CSRF-Token header (the token login returned)"
                )
    return principal


def current_principal(request: Request) -> Principal:
    """The caller, from a bearer token or a session cookie; ``Unauthenticated`` without either.

    Cached per request by FastAPI, so a route and its policy share one lookup."""
    cached = request.scope.get(SCOPE_PRINCIPAL)
    if cached is not None:
        return cast("Principal", cached)
    state = get_state(request)
    try:
        principal = _authenticate(request, state)
    except Unauthenticated:
        # Failed attempts count against the address, so guessing is as slow as the limit.
        _rate_check(state, f"addr:{_address(request)}")
        raise
    request.scope[SCOPE_PRINCIPAL] = principal
    _rate_check(state, f"user:{principal.user_id}")
    return principal


def public() -> params.Depends:
    """Anyone may call the route; requests are rate limited per address."""

    def _public(request: Request) -> None:
        _rate_check(get_state(request), f"addr:{_address(request)}")

    return _marked(_public, Policy("public"))


def authenticated() -> params.Depends:
    """Any signed-in user or valid token."""

    def _authenticated(principal: Annotated[Principal, Depends(current_principal)]) -> None:
        del principal  # resolving it is the check

    return _marked(_authenticated, Policy("authenticated"))


def admin() -> params.Depends:
    """Global admins only."""

    def _admin(principal: Annotated[Principal, Depends(current_principal)]) -> None:
        if not principal.is_admin:
            raise PermissionDenied("this needs a global admin")

    return _marked(_admin, Policy("admin"))


def role_anywhere(role: Role) -> params.Depends:
    """At least ``role`` on at least one project the principal can reach (a token's ceiling and
    project scope included)."""
    needed = int(role)

    async def _role_anywhere(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> None:
        state = get_state(request)
        visible = await run_in_threadpool(state.auth.visible_projects, principal)
        if visible is not None and not any(int(r) >= needed for r in visible.values()):
            from keel.auth import Role

            raise PermissionDenied(f"this needs the {Role(needed).label} role on some project")

    return _marked(_role_anywhere, Policy("anywhere", needed))


def project_role(role: Role, *, project: ProjectOf) -> params.Depends:
    """At least ``role`` on the project ``project(request, state)`` names."""
    needed = int(role)

    async def _project_role(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> None:
        state = get_state(request)
        name = await run_in_threadpool(project, request, state)
        if inspect.isawaitable(name):
            name = await name
        have = await run_in_threadpool(state.auth.role_in, principal, name)
        if have is None or int(have) < needed:
            from keel.auth import Role

            raise PermissionDenied(f"this needs the {Role(needed).label} role on project {name!r}")

    return _marked(_project_role, Policy("project", needed))


def path_project(param: str = "project") -> ProjectOf:
    """A ``ProjectOf`` for routes whose path names the project (``/projects/{project}/…``)."""

    def _of(request: Request, state: ServerState) -> str:
        del state
        return str(request.path_params[param])

    return _of
