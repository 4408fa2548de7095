"""The SSRF-safe webhook client against a real receiver on 127.0.0.1: refused by default,
accepted with the explicit allow; names that resolve to loopback refused; the socket goes to
the checked address with the name kept for Host and TLS; no redirects; bounded retries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keel.errors import InvalidInput, PermissionDenied
from keel.monitoring._egress import EgressPolicy, address_problem, post

from .alert_support import loopback_resolver, receiver, self_signed

OPEN = EgressPolicy(allow_http=True, allow_private=True, backoff_s=0.01, max_backoff_s=0.05)


def test_loopback_receiver_is_refused_by_default_and_reached_with_the_explicit_allow() -> None:
    with receiver() as hook:
        with pytest.raises(PermissionDenied, match="loopback"):
            post(hook.url, b"{}", policy=EgressPolicy(allow_http=True))
        assert hook.requests == []  # refused before any byte left
        result = post(hook.url, b'{"a": 1}', policy=OPEN)
        assert (result.ok, result.status, result.attempts) == (True, 200, 1)
        assert result.body == b"ok"
        assert [r.body for r in hook.requests] == [b'{"a": 1}']


def test_plain_http_needs_its_own_allow() -> None:
    with pytest.raises(InvalidInput) as info:
        post("http://example.com/hook", b"{}")
    assert info.value.field == "url"
    for bad in ("ftp://example.com/x", "/relative", "https://", "file:///etc/passwd"):
        with pytest.raises(InvalidInput):
            post(bad, b"{}")


def test_a_name_resolving_to_loopback_is_refused_at_connect_time() -> None:
    with receiver() as hook:
        url = f"http://localhost:{hook.port}/hook"  # the system resolver: 127.0.0.1 / ::1
        with pytest.raises(PermissionDenied, match="loopback"):
            post(url, b"{}", policy=EgressPolicy(allow_http=True))
        assert hook.requests == []


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "10.1.2.3", "::ffff:127.0.0.1", "fe80::1", "0.0.0.0", "224.0.0.1"],
)
def test_every_address_a_name_resolves_to_is_checked(address: str) -> None:
    # One public and one forbidden answer: the forbidden one refuses the whole name.
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", address]

    with pytest.raises(PermissionDenied):
        post("https://hooks.example.test/x", b"{}", resolver=resolve)


def test_metadata_and_link_local_stay_refused_even_with_allow_private() -> None:
    for address in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "0.0.0.0"):
        assert address_problem(address, allow_private=True) is not None
    for address in ("127.0.0.1", "10.0.0.1", "192.168.1.5", "fc00::1", "::1"):
        assert address_problem(address, allow_private=False) is not None
        assert address_problem(address, allow_private=True) is None
    for address in ("8.8.8.8", "2606:4700:4700::1111"):
        assert address_problem(address, allow_private=False) is None
    # IPv4 inside IPv6 is judged as the IPv4 address: 6to4 and NAT64 of 127.0.0.1 / 10.0.0.1.
    assert "loopback" in (address_problem("2002:7f00:1::", allow_private=False) or "")
    assert "private" in (address_problem("64:ff9b::a00:1", allow_private=False) or "")


def test_the_socket_goes_to_the_checked_address_and_tls_verifies_the_name(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = self_signed("hooks.example.test", tmp_path)
    with receiver(tls=server_tls) as hook:
        url = f"https://hooks.example.test:{hook.port}/hook"
        resolve = loopback_resolver("hooks.example.test")
        result = post(
            url,
            b"{}",
            policy=EgressPolicy(allow_private=True),
            ssl_context=client_tls,
            resolver=resolve,
        )
        assert result.ok, result.error
        assert hook.requests[0].headers["Host"] == f"hooks.example.test:{hook.port}"
        # The certificate names hooks.example.test, so the same socket under another name fails
        # verification: SNI and the check use the URL's name, not the address connected to.
        other = post(
            f"https://other.example.test:{hook.port}/hook",
            b"{}",
            policy=EgressPolicy(allow_private=True, attempts=1),
            ssl_context=client_tls,
            resolver=loopback_resolver("other.example.test"),
        )
        assert not other.ok
        assert "CERTIFICATE_VERIFY_FAILED" in (other.error or "")
        assert len(hook.requests) == 1
        # Without allow_private the same name is refused before connecting.
        with pytest.raises(PermissionDenied):
            post(url, b"{}", ssl_context=client_tls, resolver=resolve)


def test_a_redirect_is_not_followed() -> None:
    with receiver() as target, receiver((302, {"Location": "PLACEHOLDER"})) as hook:
        hook.script = [(302, {"Location": target.url})]
        result = post(hook.url, b"{}", policy=OPEN)
        assert (result.ok, result.status, result.attempts) == (False, 302, 1)
        assert "redirect" in (result.error or "")
        assert target.requests == []


def test_5xx_and_429_are_retried_then_succeed() -> None:
    with receiver((503, {}), (429, {"Retry-After": "0"}), (200, {})) as hook:
        result = post(hook.url, b"{}", policy=OPEN)
        assert (result.ok, result.status, result.attempts) == (True, 200, 3)
        assert len(hook.requests) == 3


def test_a_4xx_is_final_and_retries_stop_at_the_bounds() -> None:
    with receiver((400, {})) as hook:
        result = post(hook.url, b"{}", policy=OPEN)
        assert (result.ok, result.status, result.attempts, result.error) == (
            False,
            400,
            1,
            "HTTP 400",
        )
    with receiver((500, {})) as hook:
        result = post(hook.url, b"{}", policy=OPEN)
        assert (result.ok, result.attempts, len(hook.requests)) == (False, OPEN.attempts, 4)
    # A Retry-After beyond the total bound ends the retries at once instead of sleeping.
    bounded = EgressPolicy(allow_http=True, allow_private=True, max_total_s=1.0)
    with receiver((503, {"Retry-After": "120"})) as hook:
        started = time.monotonic()
        result = post(hook.url, b"{}", policy=bounded)
        assert time.monotonic() - started < 30  # generous: it must not wait the 120 s
        assert result.attempts == 1
        assert "gave up" in (result.error or "")


def test_connection_errors_are_retried_and_reported() -> None:
    from live_server import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    result = post(url, b"{}", policy=OPEN)
    assert (result.ok, result.status, result.attempts) == (False, None, OPEN.attempts)
    assert "ConnectError" in (result.error or "")


def test_the_response_read_is_bounded() -> None:
    policy = EgressPolicy(allow_http=True, allow_private=True, max_response_bytes=1)
    with receiver() as hook:
        assert post(hook.url, b"{}", policy=policy).body == b"o"


def test_credentials_in_the_url_are_refused_and_an_unknown_name_is_a_failed_delivery() -> None:
    with pytest.raises(InvalidInput, match="credentials"):
        post("https://user:secret@hooks.example.com/x", b"{}")
    result = post(
        "https://keel-alert-test.invalid/x",  # .invalid never resolves (RFC 6761)
        b"{}",
        policy=EgressPolicy(attempts=1),
    )
    assert (result.ok, result.status, result.attempts) == (False, None, 1)
    assert "resolve" in (result.error or "")
