"""Request bodies: size, media type and JSON nesting, checked as the bytes arrive.

A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked body
is counted as it streams and refused the moment it passes the limit, so an oversized upload
never sits in memory. JSON bodies are scanned for nesting depth on the way in (a deep
``[[[[…`` would otherwise exhaust the parser's recursion). The refusal is sent from here and
the app sees a disconnect; whatever it tries to send afterwards is dropped.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.server._errors import error_body
from keel.server._state import Limits

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON_TOKENS = re.compile(rb'[\[\]{}"\\]')
RAW_MEDIA = "application/octet-stream"


def _media(content_type: bytes) -> str:
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1")


def is_json_media(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _DepthScanner:
    """Tracks JSON nesting across chunks, skipping brackets inside strings."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped_until = -1  # absolute offset up to which a backslash escape reaches
        self.offset = 0

    def feed(self, chunk: bytes) -> bool:
        """False once the nesting goes past the limit."""
        base = self.offset
        for m in _JSON_TOKENS.finditer(chunk):
            pos = base + m.start()
            if pos <= self.escaped_until:
                continue
            token = m.group()
            if self.in_string:
                if token == b"\\":
                    self.escaped_until = pos + 1
                elif token == b'"':
                    self.in_string = False
            elif token == b'"':
                self.in_string = True
            elif token in (b"[", b"{"):
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif token in (b"]", b"}"):
                self.depth -= 1
        self.offset += len(chunk)
        return True


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        try:
            length = int(declared) if declared is not None else None
        except ValueError:
            await _refuse(
                send, 400, "InvalidInput", "Content-Length is not a number", "content-length"
            )
            return
        has_body = chunked or bool(length)
        media = _media(headers.get(b"content-type", b""))
        json_body = is_json_media(media)
        # Bytes are uploaded with PUT (artifact objects and keys); every other body is JSON.
        raw_ok = media == RAW_MEDIA and scope["method"] == "PUT"
        if has_body and not json_body and not raw_ok:
            await _refuse(
                send,
                415,
                "UnsupportedMediaType",
                f"unsupported Content-Type {media or '(none)'!r} for {scope['method']}; send "
                f"application/json (or {RAW_MEDIA} to a PUT that uploads bytes)",
                "content-type",
            )
            return
        limit = self.limits.max_json_bytes if json_body else self.limits.max_body_bytes
        if length is not None and length > limit:
            await _refuse(send, 413, "LimitExceeded", _too_large(limit), "body")
            return
        scanner = _DepthScanner(self.limits.max_json_depth) if json_body else None
        state = {"seen": 0, "refused": False}

        async def checked_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            state["seen"] += len(chunk)
            if state["seen"] > limit:
                state["refused"] = True
                await _refuse(send, 413, "LimitExceeded", _too_large(limit), "body")
                return {"type": "http.disconnect"}
            if scanner is not None and not scanner.feed(chunk):
                state["refused"] = True
                await _refuse(
                    send,
                    422,
                    "InvalidInput",
                    f"JSON nested deeper than {self.limits.max_json_depth} levels",
                    "body",
                )
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not state["refused"]:
                await send(message)

        await self.app(scope, checked_receive, guarded_send)


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


async def _refuse(send: Send, status: int, type_: str, message: str, field: str) -> None:
    body = error_body(type_, message, field)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
