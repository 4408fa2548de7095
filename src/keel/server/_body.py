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
# A whole string literal; what follows an open quote up to and including its closing quote;
# what a string may hold (a chunk can end after a lone backslash, escaping the next byte).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STRING_CONTENT = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
RAW_MEDIA = "application/octet-stream"


def _media(content_type: bytes) -> str:
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1")


def is_json_media(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _DepthScanner:
    """Tracks JSON nesting across chunks, skipping brackets inside strings.

    String literals are cut out in C (a split on quotes when the chunk has no backslash, else
    one regular-expression pass) and the brackets left are counted from a ``bytes.translate``,
    so a body of thousands of short strings (a metric batch's ``keys`` column) costs a fraction
    of a millisecond, not a Python step per quote.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the chunk ended inside a string, right after a backslash

    def feed(self, chunk: bytes) -> bool:
        """False once the nesting goes past the limit."""
        if not chunk:
            return True
        pos = 0
        if self.in_string:
            pos = 1 if self.escaped else 0
            closed = _STRING_REST.match(chunk, pos)
            if closed is None:
                self._open_until_end(chunk, pos)
                return True
            pos, self.in_string, self.escaped = closed.end(), False, False
        rest = chunk[pos:] if pos else chunk
        if b"\\" in rest:
            outside = _STRING.sub(b"", rest)
            opened = outside.find(b'"')  # a string that the chunk does not close
            if opened >= 0:
                start = len(chunk) - (len(outside) - opened) + 1
                outside = outside[:opened]
                self.in_string = True
                self._open_until_end(chunk, start)
        else:  # no escapes: every quote opens or closes a string, in turn
            parts = rest.split(b'"')
            outside = b"".join(parts[0::2])
            if len(parts) % 2 == 0:
                self.in_string, self.escaped = True, False
        for bracket in outside.translate(None, _NOT_BRACKETS):
            if bracket in _OPENERS:
                self.depth += 1
                if self.depth > self.limit:
                    return False
            else:
                self.depth -= 1
        return True

    def _open_until_end(self, chunk: bytes, pos: int) -> None:
        """The chunk ends inside a string that is open at ``pos``: note a trailing escape."""
        content = _STRING_CONTENT.match(chunk, min(pos, len(chunk)))
        self.escaped = content is not None and content.end() < len(chunk)


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
