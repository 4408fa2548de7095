"""HTTP plumbing of the inference app: bounded body reads, one JSON error shape, and the
``keel-request-id`` / ``keel-model-version`` headers on every response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.errors import InvalidInput, KeelError, LimitExceeded, NotFound, RateLimited
from keel.serving._batcher import PredictTimeout
from keel.serving._payload import MalformedRequest

# A client's id is echoed only if it cannot smuggle anything into headers or logs.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def json_response(content: Any, *, status: int = 200) -> Response:
    # NumPy scalars can reach here from model outputs; orjson writes them natively.
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


def error_response(exc: KeelError, *, retry_after: int = 1) -> tuple[Response, str]:
    """``(response, metric reason)`` for a Keel error; the body names the field."""
    headers: dict[str, str] = {}
    if isinstance(exc, MalformedRequest):
        status, code, reason = 400, "BAD_REQUEST", "malformed"
    elif isinstance(exc, LimitExceeded):
        status, code, reason = 413, "LIMIT_EXCEEDED", "too_large"
    elif isinstance(exc, InvalidInput):
        status, code, reason = 422, "INVALID_INPUT", "invalid_input"
    elif isinstance(exc, NotFound):
        status, code, reason = 404, "NOT_FOUND", "not_found"
    elif isinstance(exc, RateLimited):
        status, code, reason = 503, "OVERLOADED", "overloaded"
        headers["Retry-After"] = str(max(1, round(exc.retry_after or retry_after)))
    elif isinstance(exc, PredictTimeout):
        status, code, reason = 504, "TIMEOUT", "timeout"
    else:
        status, code, reason = 500, "MODEL_ERROR", "model_error"
    field = getattr(exc, "field", None)
    body = {"error": str(exc), "error_code": code, "field": field}
    response = json_response(body, status=status)
    response.headers.update(headers)
    return response, reason


async def read_body(request: Request, *, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded(f"the body is {declared} bytes; the limit is {limit}", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"the body is over the {limit}-byte limit", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"keel-request-id":
            text: str = bytes(value).decode("latin-1")
            if _SAFE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class HeadersMiddleware:
    """Pure ASGI (no per-request task, unlike ``BaseHTTPMiddleware``): tags each response
    with its request id and the model version that answered (all served versions when no
    single model did)."""

    def __init__(self, app: ASGIApp, *, versions: Callable[[], str]) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                version = scope.get("keel.model_version") or self.versions()
                headers = [
                    *message.get("headers", ()),
                    (b"keel-request-id", rid.encode()),
                    (b"keel-model-version", str(version).encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
