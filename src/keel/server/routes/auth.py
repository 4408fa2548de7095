"""Signing in and out: ``/api/v1/auth``.

Login answers with a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) and the
session's CSRF token, which the page sends back as ``X-CSRF-Token`` on every write. Scripts use
API tokens instead (``Authorization: Bearer keel_…``), made under ``/api/v1/tokens``.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from keel._time import now_ms
from keel.auth import Principal
from keel.errors import InvalidInput, Unauthenticated
from keel.server._policy import SCOPE_ACTOR, authenticated, current_principal, public
from keel.server._state import ServerState, get_state

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Long enough for any real passphrase, short enough that hashing it costs nothing extra.
_MAX_PASSWORD = 1024


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=_MAX_PASSWORD)


class LoginAnswer(BaseModel):
    username: str
    is_admin: bool
    csrf_token: str
    expires_ms: int


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=_MAX_PASSWORD)
    new_password: str = Field(min_length=1, max_length=_MAX_PASSWORD)


class Me(BaseModel):
    user_id: int
    username: str
    is_admin: bool
    via: str
    token_id: int | None = None
    token_role: str | None = None
    token_projects: list[str] | None = None


class Done(BaseModel):
    ok: bool = True


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _secure(request: Request, state: ServerState) -> bool:
    return state.settings.https or request.url.scheme == "https"


def _clear_cookie(response: Response, request: Request, state: ServerState) -> None:
    response.delete_cookie(
        state.settings.session_cookie,
        path="/",
        secure=_secure(request, state),
        httponly=True,
        samesite="strict",
    )


@router.post("/login", dependencies=[public()])
def login(body: LoginBody, request: Request, response: Response) -> LoginAnswer:
    """Sign in with a username and password: sets the session cookie and returns the CSRF
    token to send as ``X-CSRF-Token`` on state-changing requests."""
    state = get_state(request)
    if _USERNAME.fullmatch(body.username):
        # Who tried, for the audit record; a name no account could have is left out of it.
        request.scope[SCOPE_ACTOR] = body.username
    principal = state.auth.login(body.username, body.password, address=_address(request) or "")
    secret = state.auth.create_session(principal)
    max_age = max(0, (secret.expires_ms - now_ms()) // 1000)
    response.set_cookie(
        state.settings.session_cookie,
        secret.cookie_value,
        max_age=max_age,
        path="/",
        secure=_secure(request, state),
        httponly=True,
        samesite="strict",
    )
    return LoginAnswer(
        username=principal.username,
        is_admin=principal.is_admin,
        csrf_token=secret.csrf_token,
        expires_ms=secret.expires_ms,
    )


@router.post("/logout", dependencies=[authenticated()])
def logout(request: Request, response: Response) -> Done:
    """End this session (a token request has no session to end; revoke the token instead)."""
    state = get_state(request)
    cookie = request.cookies.get(state.settings.session_cookie)
    if cookie and "authorization" not in request.headers:
        state.auth.end_session(cookie)
        _clear_cookie(response, request, state)
    return Done()


@router.get("/me", dependencies=[authenticated()])
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    """Who the credentials of this request belong to."""
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        is_admin=principal.is_admin,
        via=principal.via,
        token_id=principal.token_id,
        token_role=principal.token_role.label if principal.token_role is not None else None,
        token_projects=list(principal.token_projects)
        if principal.token_projects is not None
        else None,
    )


@router.post("/password", dependencies=[authenticated()])
async def change_password(
    body: PasswordBody,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(current_principal)],
) -> Done:
    """Change your own password (the current one is checked, with the login attempt limits).
    Every session of the account ends, this one included."""
    state = get_state(request)
    address = _address(request) or ""

    def work() -> None:
        try:
            state.auth.login(principal.username, body.current_password, address=address)
        except Unauthenticated:
            # The caller is signed in; what is wrong is this field, not their credentials.
            raise InvalidInput("is not your current password", field="current_password") from None
        state.auth.change_password(
            principal.username, body.new_password, actor=principal.username, address=address
        )

    await run_in_threadpool(work)
    _clear_cookie(response, request, state)
    return Done()
