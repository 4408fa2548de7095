"""The outermost middleware: Host allowlist, the bound on requests in flight, CORS, and the
security headers every response carries (error pages included)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.server._errors import error_body
from keel.server._settings import ServerSettings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_CORS_METHODS = b"GET, POST, PUT, PATCH, DELETE"
_CORS_HEADERS = b"authorization, content-type, idempotency-key, x-csrf-token"


def host_name(value: str) -> str:
    """The host of a Host header, without the port (``[::1]:8080`` -> ``[::1]``)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, settings: ServerSettings) -> None:
        self.app = app
        self.hosts = settings.host_allowlist()
        self.origins = frozenset(settings.cors_origins)
        self.https = settings.https
        self.max_in_flight = settings.max_in_flight
        # One event loop per process runs every request of this app: a plain counter is exact.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        hsts = self.https or scope.get("scheme") == "https"
        if host not in self.hosts:
            await self._reject(
                send, 400, type_="InvalidInput", message="host not allowed", field="host", hsts=hsts
            )
            return
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            # Overload is answered at once, with when to retry, instead of queueing without end.
            await self._reject(
                send,
                503,
                type_="StoreUnavailable",
                message=f"the server is busy ({self.in_flight} requests in progress); retry",
                field=None,
                hsts=hsts,
                retry_after=1,
            )
            return
        self.in_flight += 1
        try:
            await self._admitted(scope, receive, send, headers=headers, hsts=hsts)
        finally:
            self.in_flight -= 1

    async def _admitted(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        headers: dict[bytes, bytes],
        hsts: bool,
    ) -> None:
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors = bool(origin) and origin in self.origins
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            if not cors:
                await self._reject(
                    send,
                    403,
                    type_="PermissionDenied",
                    message="origin not allowed",
                    field="origin",
                    hsts=hsts,
                )
                return
            await self._preflight(send, origin, hsts)
            return
        api = not scope["path"].startswith(("/docs", "/redoc"))

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in out}
                out.extend(_BASE_HEADERS)
                if b"content-security-policy" not in present:
                    out.append((b"content-security-policy", API_CSP.encode()))
                if api and b"cache-control" not in present:
                    out.append((b"cache-control", b"no-store"))
                if hsts:
                    out.append(_HSTS)
                if cors:
                    out.append((b"access-control-allow-origin", origin.encode("latin-1")))
                    out.append((b"vary", b"Origin"))
                message = {**message, "headers": out}
            await send(message)

        await self.app(scope, receive, send_secured)

    async def _reject(
        self,
        send: Send,
        status: int,
        *,
        type_: str,
        message: str,
        field: str | None,
        hsts: bool,
        retry_after: int | None = None,
    ) -> None:
        body = error_body(type_, message, field)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"content-security-policy", API_CSP.encode()),
            (b"cache-control", b"no-store"),
            *_BASE_HEADERS,
        ]
        if hsts:
            headers.append(_HSTS)
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _preflight(self, send: Send, origin: str, hsts: bool) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-allow-headers", _CORS_HEADERS),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
            *_BASE_HEADERS,
        ]
        if hsts:
            headers.append(_HSTS)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
