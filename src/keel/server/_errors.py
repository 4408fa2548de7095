"""Errors as JSON: every failure answers ``{"error": {"type", "message", "field"}}``.

``type`` is the ``keel.errors`` class name, so the HTTP client raises the same exception the
SQL store would have raised. ``message`` is the text without the ``field:`` prefix that
``InvalidInput`` adds (the client adds it back by constructing the error with ``field``).
Validation errors name the offending field; malformed JSON is 400, a body that is not JSON on
a JSON route 415. Nothing but a bug answers 500, and a 500 carries no internals.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from keel import errors as e

log = logging.getLogger("keel.server")

# Most specific first: the first isinstance match wins.
_STATUS: tuple[tuple[type[e.KeelError], int], ...] = (
    (e.LimitExceeded, 413),
    (e.UnsafePath, 422),
    (e.InvalidInput, 422),
    (e.NotFound, 404),
    (e.AlreadyExists, 409),
    (e.Conflict, 409),
    (e.Unauthenticated, 401),
    (e.PermissionDenied, 403),
    (e.RateLimited, 429),
    (e.IntegrityError, 422),
    (e.StoreUnavailable, 503),
    (e.StoreError, 500),
    (e.MissingDependency, 501),
)
_HTTP_TYPES = {400: "InvalidInput", 404: "NotFound", 405: "MethodNotAllowed", 413: "LimitExceeded"}


def status_of(exc: e.KeelError) -> int:
    if isinstance(exc, e.InvalidInput) and isinstance(exc.__cause__, json.JSONDecodeError):
        return 400  # a route that parses its own body found it malformed: as FastAPI's do
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(type_: str, message: str, field: str | None = None, **extra: Any) -> bytes:
    return orjson.dumps({"error": {"type": type_, "message": message, "field": field, **extra}})


def error_response(
    status: int,
    type_: str,
    message: str,
    field: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        error_body(type_, message, field, **extra),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def keel_error_response(exc: e.KeelError) -> Response:
    status = status_of(exc)
    field = getattr(exc, "field", None)
    message = str(exc)
    if field and message.startswith(f"{field}: "):
        message = message[len(field) + 2 :]
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, e.RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        extra["retry_after"] = exc.retry_after
    elif isinstance(exc, e.StoreUnavailable):
        headers["Retry-After"] = "1"
    elif isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="keel"'
    if status >= 500:
        # Driver messages can carry SQL and paths: log them, answer without them.
        log.error("%s: %s", type(exc).__name__, exc, exc_info=exc)
        message = "the server failed to complete the request; see its log"
    return error_response(status, type(exc).__name__, message, field, headers=headers, **extra)


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie")
        else [str(p) for p in loc]
    )
    return ".".join(parts) or (str(loc[0]) if loc else None)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def validation_response(request: Request, exc: RequestValidationError) -> Response:
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        first = next(p for p in problems if p.get("type") == "json_invalid")
        detail = (first.get("ctx") or {}).get("error", "invalid JSON")
        pos = first["loc"][1] if len(first.get("loc", ())) > 1 else "?"
        return error_response(
            400, "InvalidInput", f"malformed JSON at position {pos}: {detail}", "body"
        )
    body_problem = any(p.get("loc", ("",))[0] == "body" for p in problems)
    if (
        body_problem
        and request.method not in ("GET", "HEAD")
        and not _is_json(request.headers.get("content-type"))
    ):
        return error_response(
            415,
            "UnsupportedMediaType",
            "send the body as JSON with 'Content-Type: application/json'",
            "content-type",
        )
    first = problems[0] if problems else {}
    field = _field_of(tuple(first.get("loc", ())))
    messages = [
        f"{_field_of(tuple(p.get('loc', ()))) or 'request'}: {p.get('msg', 'invalid')}"
        for p in problems[:10]
    ]
    return error_response(422, "InvalidInput", "; ".join(messages), field)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def on_keel(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, e.KeelError)
        return keel_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        type_ = _HTTP_TYPES.get(exc.status_code, "HTTPError")
        return error_response(
            exc.status_code, type_, str(exc.detail), headers=dict(exc.headers or {})
        )

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(
            500, "InternalError", "the server failed to complete the request; see its log"
        )

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # The client went away mid-body, or _body refused the body and already answered (it
        # hands the app a disconnect): nobody reads this answer, and it is not an error.
        return error_response(400, "InvalidInput", "the request body was cut off", "body")

    app.add_exception_handler(e.KeelError, on_keel)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)
