"""Users, API tokens, project grants and the audit log: ``/api/v1``.

Global admins manage users and read the audit log. Anyone signed in manages their own tokens
(a token can only mint tokens within its own role ceiling and project scope). Project grants
are managed by that project's admins and by global admins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from keel.auth import Principal, Role, TokenInfo
from keel.errors import NotFound, PermissionDenied
from keel.server._policy import (
    SCOPE_PRINCIPAL,
    SCOPE_RESOURCE,
    admin,
    authenticated,
    current_principal,
    path_project,
    project_role,
)
from keel.server._state import get_state

router = APIRouter(prefix="/api/v1", tags=["admin"])

_NAME = Field(min_length=1, max_length=64)
# Integers the databases can hold (SQLite and PostgreSQL BIGINT are signed 64-bit).
MAX_INT64 = 2**63 - 1
_MAX_PASSWORD = 1024


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = _NAME
    password: str = Field(min_length=1, max_length=_MAX_PASSWORD)
    is_admin: bool = False


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    disabled: bool
    created_ms: int
    password_changed_ms: int
    last_login_ms: int | None = None


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(default="admin", description="viewer, editor, maintainer or admin")
    projects: list[str] | None = Field(default=None, max_length=1000)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)
    username: str | None = Field(default=None, description="another user's (global admins)")


class TokenOut(BaseModel):
    id: int
    username: str
    name: str
    prefix: str
    role: str
    projects: list[str] | None
    created_ms: int
    expires_ms: int | None = None
    last_used_ms: int | None = None
    revoked_ms: int | None = None


class NewTokenOut(BaseModel):
    token: str = Field(description="the secret, shown only now")
    info: TokenOut


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="viewer, editor, maintainer or admin")


class Done(BaseModel):
    ok: bool = True


class AuditOut(BaseModel):
    id: int
    ts_ms: int
    actor: str | None
    action: str
    resource: str
    address: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str | None


Caller = Annotated[Principal, Depends(current_principal)]


def _who(request: Request) -> dict[str, str | None]:
    """``actor`` and ``address`` for the store's own audit record of the change."""
    principal = request.scope.get(SCOPE_PRINCIPAL)
    return {
        "actor": principal.username if principal is not None else None,
        "address": request.client.host if request.client else None,
    }


def _token_out(info: TokenInfo) -> TokenOut:
    return TokenOut.model_validate(info.to_dict())


# -- users --------------------------------------------------------------------------------


@router.post("/users", status_code=201, dependencies=[admin()])
def create_user(body: NewUser, request: Request) -> UserOut:
    """Create a user (global admins)."""
    request.scope[SCOPE_RESOURCE] = f"user:{body.username}"
    user = get_state(request).auth.create_user(body.username, body.password, is_admin=body.is_admin)
    return UserOut.model_validate(user.to_dict())


@router.get("/users", dependencies=[admin()])
def list_users(request: Request) -> list[UserOut]:
    """Every user (global admins)."""
    return [UserOut.model_validate(u.to_dict()) for u in get_state(request).auth.list_users()]


@router.post("/users/{username}/disable", dependencies=[admin()])
def disable_user(username: str, request: Request, principal: Caller) -> UserOut:
    """Disable a user: their sessions and tokens stop working at once (global admins)."""
    if username.casefold() == principal.username.casefold():
        raise PermissionDenied("you cannot disable your own account")
    user = get_state(request).auth.disable_user(username, **_who(request))
    return UserOut.model_validate(user.to_dict())


# -- tokens -------------------------------------------------------------------------------


def _within_ceiling(principal: Principal, role: Role, projects: list[str] | None) -> None:
    """A token may not mint a token stronger or wider than itself."""
    if principal.via != "token":
        return
    ceiling = principal.token_role
    if ceiling is not None and role > ceiling:
        raise PermissionDenied(f"this token can only create tokens up to role {ceiling.label}")
    scope = principal.token_projects
    if scope is not None and (projects is None or not set(projects) <= set(scope)):
        raise PermissionDenied("this token can only create tokens scoped to its own projects")


@router.post("/tokens", status_code=201, dependencies=[authenticated()])
def create_token(body: NewToken, request: Request, principal: Caller) -> NewTokenOut:
    """Create an API token for yourself (global admins: for anyone). The secret is in the
    answer and nowhere else, ever."""
    role = Role.parse(body.role)
    owner = body.username or principal.username
    if owner.casefold() != principal.username.casefold() and not principal.is_admin:
        raise PermissionDenied("only global admins create tokens for other users")
    _within_ceiling(principal, role, body.projects)
    request.scope[SCOPE_RESOURCE] = f"user:{owner}"
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    secret, info = get_state(request).auth.create_token(
        owner,
        name=body.name,
        role=role,
        projects=body.projects,
        expires_in=expires,
        **_who(request),
    )
    return NewTokenOut(token=secret, info=_token_out(info))


@router.get("/tokens", dependencies=[authenticated()])
def list_tokens(
    request: Request,
    principal: Caller,
    username: Annotated[str | None, Query(max_length=64)] = None,
) -> list[TokenOut]:
    """Your tokens (global admins: anyone's, or everyone's without ``username``)."""
    auth = get_state(request).auth
    if principal.is_admin:
        tokens = auth.list_tokens(username)
    else:
        if username is not None and username.casefold() != principal.username.casefold():
            raise PermissionDenied("only global admins list other users' tokens")
        tokens = auth.list_tokens(principal.username)
    return [_token_out(t) for t in tokens]


@router.delete("/tokens/{token_id}", dependencies=[authenticated()])
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_INT64)], request: Request, principal: Caller
) -> TokenOut:
    """Revoke a token of yours (global admins: anyone's)."""
    auth = get_state(request).auth
    if not principal.is_admin:
        mine = {t.id for t in auth.list_tokens(principal.username)}
        if token_id not in mine:
            # Not "forbidden": whether someone else's token id exists is none of the caller's
            # business.
            raise NotFound(f"no token {token_id} of yours")
    return _token_out(auth.revoke_token(token_id, **_who(request)))


# -- project grants ---------------------------------------------------------------------


@router.put(
    "/projects/{project}/members/{username}",
    dependencies=[project_role(Role.ADMIN, project=path_project())],
)
def grant(project: str, username: str, body: Grant, request: Request) -> Done:
    """Give ``username`` a role on ``project`` (project admins and global admins)."""
    get_state(request).auth.grant(project, username, Role.parse(body.role), **_who(request))
    return Done()


@router.delete(
    "/projects/{project}/members/{username}",
    dependencies=[project_role(Role.ADMIN, project=path_project())],
)
def revoke(project: str, username: str, request: Request) -> Done:
    """Take away ``username``'s role on ``project`` (project admins and global admins)."""
    get_state(request).auth.revoke(project, username, **_who(request))
    return Done()


# -- audit ------------------------------------------------------------------------------


@router.get("/audit", dependencies=[admin()])
def search_audit(
    request: Request,
    *,
    user: Annotated[str | None, Query(max_length=64)] = None,
    resource: Annotated[str | None, Query(max_length=1000)] = None,
    action: Annotated[str | None, Query(max_length=300)] = None,
    since_ms: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    until_ms: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Audit records, newest first, filtered by user, resource, action and time (admins)."""
    records = get_state(request).auth.audit_search(
        user=user,
        resource=resource,
        action=action,
        since_ms=since_ms,
        until_ms=until_ms,
        limit=limit,
    )
    return [
        AuditOut(
            id=r.id,
            ts_ms=r.ts_ms,
            actor=r.actor,
            action=r.action,
            resource=r.resource,
            address=r.address,
            outcome=r.outcome,
            detail=dict(r.detail),
            hash=r.hash,
        )
        for r in records
    ]


@router.get("/audit/verify", dependencies=[admin()])
def verify_audit(request: Request) -> AuditVerifyOut:
    """Check the audit log's hash chain from the first record to the last (admins)."""
    v = get_state(request).auth.audit_verify()
    return AuditVerifyOut(ok=v.ok, checked=v.checked, first_bad_id=v.first_bad_id, reason=v.reason)
