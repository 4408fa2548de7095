"""The audit trail: every state-changing request, every login attempt (a POST) and every use of
an admin route by a token is appended to the hash-chained audit log of ``keel.auth``; nothing
else is, so the log stays a record of changes rather than of traffic.

A request with a state-changing method that changes nothing is left out: a route says so with
``mark_unchanged(request)`` (a dry run, a gate check), and routes that only read though they
are POSTs (a search, whose filter does not fit a query string) are listed in
``READ_ONLY_ROUTES``. ``UNCHANGED_ANSWERS`` lists routes whose answer says whether anything
changed (``POST /runs/fail-stale`` answering ``{"run_ids":[]}`` failed no run). A refused or
failed attempt at a change is still recorded, with its status.

The record is written before the last piece of the response goes out, so a client never sees
an answer to a write that left no trace. It says who (the principal, or the username a failed
login tried), what (method and route template), which resource (the concrete path and its
parameters), when (the store stamps it), from where (client address) and the outcome (status).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.server._policy import (
    SAFE_METHODS,
    SCOPE_ACTOR,
    SCOPE_PRINCIPAL,
    SCOPE_RESOURCE,
    SCOPE_UNCHANGED,
    policies_of,
)

if TYPE_CHECKING:
    from keel.server._state import ServerState

log = logging.getLogger("keel.server.audit")

# (method, route template) of POST routes that only read.
READ_ONLY_ROUTES = frozenset({("POST", "/api/v1/runs/search")})
# (method, route template) -> the exact 200 answer that means "nothing changed". The answer is
# small JSON, so it is held until its last chunk only for these routes.
UNCHANGED_ANSWERS = {("POST", "/api/v1/runs/fail-stale"): b'{"run_ids":[]}'}


def _admin_by_token(scope: Scope) -> bool:
    principal = scope.get(SCOPE_PRINCIPAL)
    route = scope.get("route")
    if principal is None or principal.via != "token" or route is None:
        return False
    return any(p.kind == "admin" for p in policies_of(getattr(route, "dependencies", [])))


def _unchanged_answer(scope: Scope) -> bytes | None:
    route = scope.get("route")
    if route is None:
        return None
    return UNCHANGED_ANSWERS.get((scope["method"], getattr(route, "path", "")))


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500, "written": False}
        body = bytearray()

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            elif message["type"] == "http.response.body" and not status["written"]:
                unchanged = _unchanged_answer(scope)
                if unchanged is not None and len(body) <= len(unchanged):
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    status["written"] = True
                    code = int(status["code"])
                    if self._wanted(scope) and not (
                        code == 200 and unchanged is not None and bytes(body) == unchanged
                    ):
                        await self._record(scope, code)
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            # The app failed before finishing its answer: the attempt is still on record.
            if not status["written"] and self._wanted(scope):
                status["written"] = True
                await self._record(scope, int(status["code"]))

    @staticmethod
    def _wanted(scope: Scope) -> bool:
        # Requests that matched no route (or were refused before routing: host, size, media
        # type) changed nothing and are left to the access log, so junk traffic cannot flood
        # the audit table.
        route = scope.get("route")
        if route is None:
            return False
        if _admin_by_token(scope):
            return True
        method = scope["method"]
        if method in SAFE_METHODS or scope.get(SCOPE_UNCHANGED):
            return False
        return (method, getattr(route, "path", "")) not in READ_ONLY_ROUTES

    async def _record(self, scope: Scope, status: int) -> None:
        principal = scope.get(SCOPE_PRINCIPAL)
        actor = principal.username if principal is not None else scope.get(SCOPE_ACTOR)
        route = scope.get("route")
        template = getattr(route, "path", None) or scope["path"]
        detail: dict[str, Any] = {}
        params = scope.get("path_params") or {}
        if params:
            detail["params"] = {str(k): str(v) for k, v in params.items()}
        if principal is not None:
            detail["via"] = principal.via
            if principal.token_id is not None:
                detail["token_id"] = principal.token_id
        client = scope.get("client")
        try:
            await run_in_threadpool(
                self.state.auth.audit,
                actor=actor,
                action=f"{scope['method']} {template}",
                resource=str(scope.get(SCOPE_RESOURCE) or scope["path"]),
                address=client[0] if client else None,
                outcome=str(status),
                detail=detail or None,
            )
        except Exception:
            # The request already did its work; losing its record is an operator alarm, not a
            # reason to hide the result from the client.
            log.exception("audit record failed for %s %s", scope["method"], scope["path"])
