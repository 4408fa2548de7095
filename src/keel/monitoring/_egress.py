"""An SSRF-safe HTTP client for outbound webhooks: Keel posts to URLs an admin typed in, from a
machine that can usually reach things the admin's browser cannot (the metadata service at
169.254.169.254, databases on 10.x, the server's own admin ports on 127.0.0.1).

The policy, checked on every connection rather than once before it:

* ``https`` only, unless ``allow_http`` (tests, a receiver on a trusted network).
* The host is resolved here, EVERY address it resolves to is checked, and the socket connects
  to a checked address (``_CheckedBackend``, an httpcore network backend under httpx). A name
  that resolves to a public address when it is checked and to 127.0.0.1 when it is used (DNS
  rebinding) therefore cannot slip through: there is no second lookup. TLS still verifies the
  certificate for the name in the URL, and SNI and the Host header carry that name.
* Refused unless ``allow_private``: loopback, private (RFC 1918, fc00::/7), shared address
  space (100.64.0.0/10) and any other non-global address. Refused always: link-local
  (169.254.0.0/16 with the cloud metadata service, fe80::/10), multicast, unspecified and
  reserved addresses. IPv4 addresses inside IPv6 (``::ffff:a.b.c.d``, 6to4, Teredo, NAT64
  ``64:ff9b::/96``) are checked as the IPv4 address they carry.
* No redirects (a 3xx is a failed delivery: following one would let the receiver pick the next
  destination), no proxies from the environment, timeouts on every phase, a bounded read of the
  response body.
* Retries with exponential backoff and full jitter on connection errors, timeouts, 429 and 5xx
  (honouring ``Retry-After``), within a bound on the total time. A refused destination is
  never retried.

A refused destination raises ``PermissionDenied``; every other outcome is an ``EgressResult``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from keel.errors import InvalidInput, PermissionDenied

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_USER_AGENT = "keel-alerts/1"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Where and how patiently the client may connect (see the module docstring)."""

    allow_http: bool = False
    allow_private: bool = False
    timeout_s: float = 10.0  # each of connect, write, read
    attempts: int = 4  # the first try included
    backoff_s: float = 0.5  # first retry waits up to this; doubles each time
    max_backoff_s: float = 8.0
    max_total_s: float = 30.0  # no retry starts after this much time
    max_response_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 10:
            raise InvalidInput("must be 1..10", field="attempts")
        if not 0 < self.timeout_s <= 120:
            raise InvalidInput("must be in (0, 120] seconds", field="timeout_s")
        if not 0 < self.max_total_s <= 600:
            raise InvalidInput("must be in (0, 600] seconds", field="max_total_s")


@dataclass(frozen=True, slots=True)
class EgressResult:
    """What a POST came to: ``ok`` for a 2xx, else ``error`` says why."""

    ok: bool
    status: int | None  # the last HTTP status, None when no answer came
    attempts: int
    error: str | None
    body: bytes  # the first ``max_response_bytes`` of the last answer


def address_problem(address: str, *, allow_private: bool) -> str | None:
    """Why the policy refuses ``address`` (an IP literal), or None if it may be connected to."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(str(embedded), allow_private=allow_private)
            return None if problem is None else f"{problem} (inside {ip})"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return None if allow_private else f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is link-local (cloud metadata services live there)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if not ip.is_global:
        return None if allow_private else f"{ip} is a private (non-global) address"
    return None


_RESOLVE_TIMEOUT_S = 10.0


@functools.cache
def _resolver_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(4, thread_name_prefix="keel-egress-dns")


# A forked child has none of the pool's threads: it starts a pool of its own.
os.register_at_fork(after_in_child=_resolver_pool.cache_clear)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6, TCP), in the resolver's order, within
    ``_RESOLVE_TIMEOUT_S`` (``getaddrinfo`` itself has no timeout; a lookup left running in the
    pool finishes on its own)."""
    pool = _resolver_pool()
    lookup = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=_RESOLVE_TIMEOUT_S)
    except FutureTimeout:
        raise httpcore.ConnectTimeout(
            f"resolving {host!r} took over {_RESOLVE_TIMEOUT_S:g} s"
        ) from None
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, except that ``connect_tcp`` resolves the host itself, refuses
    it unless every address passes the policy, and connects to the checked addresses."""

    def __init__(self, *, allow_private: bool, resolver: Resolver) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._resolve = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolves to no address")
        for address in addresses:
            problem = address_problem(address, allow_private=self._allow_private)
            if problem is not None:
                raise PermissionDenied(
                    f"webhook destination {host}:{port} refused: {problem}. Outbound webhooks "
                    "go to public addresses only; an admin may set allow_private=true on the "
                    "channel for a receiver on a trusted private network"
                )
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise PermissionDenied("webhooks never connect to a Unix socket")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets come from ``_CheckedBackend``.

    httpx 0.28 has no public hook for httpcore's ``network_backend``; the pool is rebuilt here
    with the same SSL context. A test refuses a name that resolves to 127.0.0.1, so a change in
    httpx that bypassed the backend would fail it."""

    def __init__(self, *, ssl_context: ssl.SSLContext, backend: _CheckedBackend) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=0,
            retries=0,
            network_backend=backend,
        )


def check_url(url: str, policy: EgressPolicy) -> None:
    """``InvalidInput`` (field ``url``) unless ``url`` is an absolute http(s) URL the policy's
    scheme rule allows."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"not a URL: {exc}", field="url") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("must be an absolute https:// URL", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "must not hold credentials (user:password@): they would be stored; put a URL that "
            "holds a secret in an environment variable (url_env)",
            field="url",
        )
    if parts.scheme == "http" and not policy.allow_http:
        raise InvalidInput(
            "must use https://; an admin may set allow_http=true on the channel for a test "
            "receiver",
            field="url",
        )
    if port == 0:
        raise InvalidInput("port 0 is not a destination", field="url")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def post(
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    policy: EgressPolicy | None = None,
    ssl_context: ssl.SSLContext | None = None,
    resolver: Resolver | None = None,
    sign: Callable[[bytes], Mapping[str, str]] | None = None,
) -> EgressResult:
    """POST ``body`` to ``url`` under ``policy`` (default: the strict one).

    ``sign(body)`` returns headers computed afresh for each attempt (a signature over a new
    timestamp). ``ssl_context`` and ``resolver`` default to the system's trust store and DNS."""
    policy = policy or EgressPolicy()
    check_url(url, policy)
    backend = _CheckedBackend(
        allow_private=policy.allow_private, resolver=resolver or system_resolver
    )
    transport = _CheckedTransport(
        ssl_context=ssl_context or ssl.create_default_context(), backend=backend
    )
    timeout = httpx.Timeout(policy.timeout_s)
    base = {"User-Agent": _USER_AGENT, **(headers or {})}
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    answer = b""
    attempt = 0
    with httpx.Client(
        transport=transport, follow_redirects=False, trust_env=False, timeout=timeout
    ) as client:
        while attempt < policy.attempts:
            attempt += 1
            retry_after: float | None = None
            try:
                with client.stream(
                    "POST", url, content=body, headers={**base, **(sign(body) if sign else {})}
                ) as response:
                    status = response.status_code
                    answer = _bounded(response, policy.max_response_bytes)
                    retry_after = _retry_after(response)
            except httpx.HTTPError as exc:
                status, answer = None, b""
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    return EgressResult(True, status, attempt, None, answer)
                if 300 <= status < 400:
                    return EgressResult(
                        False, status, attempt, f"HTTP {status}: redirects are not followed", answer
                    )
                error = f"HTTP {status}"
                if status != 429 and status < 500:
                    return EgressResult(False, status, attempt, error, answer)
            if attempt >= policy.attempts:
                break
            wait = random.uniform(
                0, min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1))
            )
            if retry_after is not None:
                wait = max(wait, retry_after)
            if time.monotonic() - started + wait > policy.max_total_s:
                error = f"{error}; gave up after {attempt} attempts within {policy.max_total_s:g} s"
                break
            time.sleep(wait)
    return EgressResult(False, status, attempt, error, answer)


def _bounded(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)
