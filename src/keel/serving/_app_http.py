"""HTTP plumbing of the inference app: bounded body reads, one JSON error shape, and the
``keel-request-id`` / ``keel-model-version`` headers on every response. The predict routes
run on plain ASGI (``receive_body``, ``header``, ``send_json``); the others on Starlette."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.requests import ClientDisconnect
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


def classify(exc: BaseException) -> tuple[int, str, str]:
    """``(HTTP status, error code, metric reason)`` of an error answering a request."""
    if isinstance(exc, MalformedRequest):
        return 400, "BAD_REQUEST", "malformed"
    if isinstance(exc, LimitExceeded):
        return 413, "LIMIT_EXCEEDED", "too_large"
    if isinstance(exc, InvalidInput):
        return 422, "INVALID_INPUT", "invalid_input"
    if isinstance(exc, NotFound):
        return 404, "NOT_FOUND", "not_found"
    if isinstance(exc, RateLimited):
        return 503, "OVERLOADED", "overloaded"
    if isinstance(exc, PredictTimeout):
        return 504, "TIMEOUT", "timeout"
    return 500, "MODEL_ERROR", "model_error"


def error_body(exc: KeelError, *, retry_after: int = 1) -> tuple[int, bytes, dict[str, str], str]:
    """``(status, JSON body naming the field, extra headers, metric reason)`` for ``exc``."""
    status, code, reason = classify(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after or retry_after)))
    field = getattr(exc, "field", None)
    body = orjson.dumps({"error": str(exc), "error_code": code, "field": field})
    return status, body, headers, reason


def error_response(exc: KeelError, *, retry_after: int = 1) -> tuple[Response, str]:
    """``(response, metric reason)`` for a Keel error; the body names the field."""
    status, body, headers, reason = error_body(exc, retry_after=retry_after)
    response = Response(body, status_code=status, media_type="application/json")
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


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header of the request (``name`` in lower case), if any."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def receive_body(scope: Scope, receive: Receive, *, limit: int) -> bytes:
    """``read_body`` on plain ASGI; ``ClientDisconnect`` if the client went away."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded(f"the body is {declared} bytes; the limit is {limit}", field="body")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"the body is over the {limit}-byte limit", field="body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    *,
    request_id: str,
    version: str,
    extra: dict[str, str] | None = None,
) -> None:
    """One JSON response with the Keel headers, as the two ASGI messages of a whole body."""
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
        (b"keel-request-id", request_id.encode()),
        (b"keel-model-version", version.encode()),
    ]
    if extra:
        headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def request_id(scope: Scope) -> str:
    """The client's ``keel-request-id`` when it is a safe token, else a random one."""
    text = header(scope, b"keel-request-id")
    if text is not None and _SAFE_ID.fullmatch(text):
        return text
    return os.urandom(16).hex()


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
