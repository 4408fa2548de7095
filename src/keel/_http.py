"""The one HTTP client of Keel's remote backends (tracking, artifacts, data over a team server).

What every remote call needs, in one place: a keep-alive connection pool to one server, the
bearer token (``KEEL_TOKEN``; the settings have no token field, so it is read from the
environment here and never written anywhere), timeouts, retries and error mapping.

Retries: a request is sent again after a connection error or a ``503`` (the server's answer
when a store is momentarily unavailable or overloaded), with exponential backoff and full
jitter, waiting at least what ``Retry-After`` asks. Only requests that are safe to repeat are
retried: reads, ``PUT``/``DELETE`` (idempotent by definition) and anything carrying an
``Idempotency-Key`` (create and batch calls carry one, generated once per logical call, so a
retried request whose first answer was lost is answered by the server from its record instead
of being applied twice). A connection that could not be opened is always safe to retry.

The server's error body ``{"error": {"type", "message", "field"}}`` is raised again as the same
``keel.errors`` class, so code behind a remote store sees exactly what a local one raises;
``httpx`` exceptions never leave this module.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from keel import errors
from keel.errors import (
    InvalidInput,
    KeelError,
    NotFound,
    RateLimited,
    StoreError,
    StoreUnavailable,
    Unauthenticated,
)

TOKEN_ENV = "KEEL_TOKEN"  # noqa: S105 - the variable's name, not a secret
IDEMPOTENCY_HEADER = "Idempotency-Key"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Error classes the server may name; anything else becomes a StoreError.
_ERROR_TYPES: dict[str, type[KeelError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, KeelError)
}

Body = bytes | Callable[[], Iterable[bytes]] | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a request is sent again (see the module docstring)."""

    attempts: int = 6  # the first try included
    base_s: float = 0.1  # backoff of the first retry; doubles each time
    cap_s: float = 8.0  # longest backoff between two tries
    max_retry_after_s: float = 60.0  # a Retry-After longer than this is not waited for

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        backoff = random.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after_s))
        return backoff


def new_idempotency_key() -> str:
    """A fresh key for one logical create or batch call (kept across its retries)."""
    return uuid.uuid4().hex


def env_token() -> str | None:
    """The bearer token from ``KEEL_TOKEN`` (None when unset or blank)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def error_from_response(response: httpx.Response) -> KeelError:
    """The ``keel.errors`` exception an error response stands for."""
    status = response.status_code
    payload: Any = None
    with suppress(orjson.JSONDecodeError):
        payload = orjson.loads(response.content)
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        text = response.text[:200].strip() or response.reason_phrase
        if status == 401:
            return Unauthenticated(f"the server refused the credentials ({text})")
        if status == 404:  # a HEAD answer has no body to say more
            return NotFound(f"not found on the server ({text})")
        if status in (502, 503, 504):
            return StoreUnavailable(f"the server is unavailable: HTTP {status} {text}")
        return StoreError(f"the server answered HTTP {status}: {text}")
    name = body.get("type")
    message = str(body.get("message", ""))
    field = body.get("field")
    cls = _ERROR_TYPES.get(name, StoreError) if isinstance(name, str) else StoreError
    # Built without calling the class's __init__: some take extra arguments (query,
    # position) the wire does not carry; the attributes they set are filled in below.
    field = field if isinstance(field, str) and field else None
    exc = cls.__new__(cls)
    if issubclass(cls, InvalidInput):
        # The server sends the message without the "field: " prefix InvalidInput adds.
        Exception.__init__(exc, f"{field}: {message}" if field else message)
        exc.field = field  # type: ignore[attr-defined]
    else:
        Exception.__init__(exc, message)
    if issubclass(cls, RateLimited):
        after = body.get("retry_after")
        exc.retry_after = (  # type: ignore[attr-defined]
            float(after) if isinstance(after, int | float) else _retry_after(response) or 1.0
        )
    if issubclass(cls, errors.QuerySyntaxError):
        exc.query, exc.position, exc.reason = "", 0, message  # type: ignore[attr-defined]
    if issubclass(cls, errors.MissingDependency):
        exc.package, exc.extra = "", ""  # type: ignore[attr-defined]
    return exc


def dumps(data: object, *, field: str = "body") -> bytes:
    """``data`` as JSON; a value JSON cannot carry is ``InvalidInput`` naming ``field``."""
    try:
        return orjson.dumps(data)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise InvalidInput(f"cannot be sent to the server: {exc}", field=field) from exc


class HttpClient:
    """A connection pool to one Keel server, with the token, retries and error mapping.

    Thread-safe (one pool shared by every thread) and fork-safe: a child process opens its
    own pool on first use instead of sharing the parent's sockets.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise errors.ConfigError(f"expected an http(s):// server URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token if token is not None else env_token()
        self._timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self.retry = retry or RetryPolicy()
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    @property
    def client(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    headers = {"User-Agent": "keel-client"}
                    if self._token:
                        headers["Authorization"] = f"Bearer {self._token}"
                    # The parent's pool is dropped, not closed: its sockets belong to it.
                    self._client = httpx.Client(
                        base_url=self.base_url,
                        headers=headers,
                        timeout=self._timeout,
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                    )
                    self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    # -- sending ---------------------------------------------------------------------------

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        content: Body,
        headers: Mapping[str, str] | None,
    ) -> httpx.Request:
        body: bytes | Iterable[bytes] | None = content() if callable(content) else content
        return self.client.build_request(
            method, path, params=params, content=body, headers=dict(headers or {})
        )

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """Send a request (retried as the module docstring says) and yield the successful
        response with its body unread; an error answer is raised as its ``keel.errors``
        class. ``content`` is bytes or a callable returning the body's chunks afresh for each
        try (so a streamed upload can be retried)."""
        retryable = method in _SAFE_METHODS or IDEMPOTENCY_HEADER in (headers or {})
        attempt = 0
        while True:
            request = self._build(method, path, params=params, content=content, headers=headers)
            try:
                response = self.client.send(request, stream=True)
            except httpx.TransportError as exc:
                opened = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt + 1 < self.retry.attempts and (retryable or not opened):
                    time.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise StoreUnavailable(
                    f"cannot reach the Keel server at {self.base_url}: {type(exc).__name__}: "
                    f"{exc or 'connection failed'}"
                ) from exc
            if response.status_code == 503 and attempt + 1 < self.retry.attempts:
                wait = self.retry.delay(attempt, _retry_after(response))
                response.close()
                time.sleep(wait)
                attempt += 1
                continue
            try:
                if response.status_code >= 400:
                    try:
                        response.read()
                    except httpx.HTTPError as exc:
                        raise StoreUnavailable(f"the server dropped the connection: {exc}") from exc
                    raise error_from_response(response)
                yield response
            finally:
                response.close()
            return

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``stream`` with the whole body read (for small answers)."""
        with self.stream(method, path, params=params, content=content, headers=headers) as r:
            try:
                r.read()
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"the server dropped the connection: {exc}") from exc
            return r

    def call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, Any] | None = None,
        idempotent_create: bool = False,
        field: str = "body",
    ) -> Any:
        """A JSON call: ``body`` sent as JSON (orjson), the decoded answer returned (None for
        an empty one). ``idempotent_create`` adds a fresh ``Idempotency-Key`` that all retries
        of this call share."""
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = dumps(body, field=field)
            headers["Content-Type"] = "application/json"
        if idempotent_create:
            headers[IDEMPOTENCY_HEADER] = new_idempotency_key()
        response = self.request(method, path, params=params, content=content, headers=headers)
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise StoreError(
                f"the server at {self.base_url} answered {method} {path} with invalid JSON"
            ) from exc


class ServerBacked:
    """The shared part of every store that talks to a Keel server (tracking, data, models,
    releases, deployments): the server ``url``, one ``HttpClient`` and its closing. Put it
    first among the bases, so its ``close`` fills the store interface's."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = HttpClient(self.url, token=token, timeout_s=timeout_s, retry=retry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        self.http.close()
