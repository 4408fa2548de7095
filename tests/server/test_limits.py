"""Limits and bad input: body size (checked as it streams), JSON depth, media type, malformed
JSON, field-named validation errors, request rate. Never a 500, and nothing stored."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from server_support import strong_password

SMALL = {"max_json_bytes": 4096, "max_body_bytes": 8192, "max_json_depth": 8}


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    return SMALL


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_declared_oversize_body_is_refused_before_it_is_sent(live: Any) -> None:
    sock = _raw(live.port)
    with sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        )
        status, data = _read_status(sock)  # answered with not one body byte sent
    assert status == 413
    assert b"LimitExceeded" in data


def test_streamed_oversize_body_is_refused_mid_stream(live: Any) -> None:
    sock = _raw(live.port)
    sent = 0
    with sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        piece = b'{"username": "' + b"a" * 1000
        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sent += len(piece)
        filler = b"a" * 1024
        sock.settimeout(0.2)
        status = 0
        data = b""
        for _ in range(64):  # never more than 64 KiB, and never the final chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(filler), filler))
            sent += len(filler)
            try:
                status, data = _read_status(sock)
                break
            except TimeoutError:
                continue
    assert status == 413, data
    assert sent <= SMALL["max_json_bytes"] + 4 * 1024  # answered while the body still streamed


def test_json_nesting_deeper_than_the_limit_is_refused(client: httpx.Client) -> None:
    deep = "[" * 9 + "]" * 9
    r = client.post(
        "/api/v1/auth/login", content=deep, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"] == {
        "type": "InvalidInput",
        "message": "JSON nested deeper than 8 levels",
        "field": "body",
    }
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    text = {"username": '[[[[[[[[[[\\"[[[[[[' * 3, "password": "{{{{{{{{{{{{"}
    r = client.post("/api/v1/auth/login", json=text)
    assert r.status_code == 401, r.text


def test_wrong_media_type_is_415(client: httpx.Client) -> None:
    body = json.dumps({"username": "admin", "password": "x" * 12})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = client.post("/api/v1/auth/login", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 415, content_type
        assert r.json()["error"]["field"] == "content-type"
    # Raw bytes are what PUT uploads take; a POST never does.
    r = client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 415
    assert "PUT" in r.json()["error"]["message"]
    r = client.post("/api/v1/auth/login", content=body, headers={"Content-Type": ""})
    assert r.status_code == 415


def test_a_put_with_raw_bytes_to_a_json_route_is_415(
    client: httpx.Client, admin_token: str
) -> None:
    r = client.put(
        "/api/v1/projects/p/members/admin",
        content=b'{"role": "viewer"}',
        headers={
            "Authorization": f"Bearer {admin_token}",
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status_code == 415, r.text


def test_refused_bodies_leave_no_error_in_the_log(
    client: httpx.Client, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The refusal is answered by the middleware; the route that wanted the body sees a
    # disconnect, which is not a server error.
    deep = "[" * 9 + "]" * 9
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    with caplog.at_level("ERROR"):
        r = client.post("/api/v1/runs/search", content=deep, headers=headers)
        assert r.status_code == 422
        r = client.post("/api/v1/users", content=deep, headers=headers)
        assert r.status_code == 422
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"], caplog.text


def test_malformed_json_is_400(client: httpx.Client) -> None:
    for broken in ('{"username": "admin", ', "{'single': 1}", "nul\x00l", "[1,]"):
        r = client.post(
            "/api/v1/auth/login", content=broken, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, (broken, r.text)
        assert r.json()["error"]["type"] == "InvalidInput"
        assert r.json()["error"]["field"] == "body"


def test_malformed_json_to_a_route_that_parses_its_own_body_is_400(
    client: httpx.Client, admin_token: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    r = client.post("/api/v1/runs/search", content=b'{"filter": ', headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "InvalidInput"
    assert r.json()["error"]["field"] == "body"


def test_validation_errors_name_the_field(client: httpx.Client) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "", "password": "p" * 12})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "username"
    r = client.post("/api/v1/auth/login", json={"username": "a", "password": "p" * 2000})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    r = client.post("/api/v1/auth/login", json={"username": "a", "password": "b", "extra": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "extra"
    r = client.post("/api/v1/auth/login", json=["not", "an", "object"])
    assert r.status_code == 422
    r = client.get("/api/v1/audit", params={"limit": "many"})
    assert r.status_code in (401, 422)


def test_unknown_routes_and_methods_answer_json(client: httpx.Client) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    r = client.delete("/api/v1/health")
    assert r.status_code == 405 and r.json()["error"]["type"] == "MethodNotAllowed"


def test_refused_bodies_store_nothing(client: httpx.Client, admin_token: str, state: Any) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    big = {"username": "heidi", "password": strong_password(), "is_admin": False}
    padded = json.dumps(big)[:-1] + ', "pad": "' + "x" * 5000 + '"}'
    r = client.post(
        "/api/v1/users",
        content=padded,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    deep = json.dumps(big)[:-1] + ', "x": ' + "[" * 9 + "]" * 9 + "}"
    r = client.post(
        "/api/v1/users", content=deep, headers={**headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "heidi" not in {u.username for u in state.auth.list_users()}


@pytest.mark.parametrize("server_overrides", [{"rate_per_minute": 5}])
def test_request_rate_is_limited_per_principal_with_retry_after(
    client: httpx.Client, admin_token: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    window = int(time.time() // 60)
    codes = [client.get("/api/v1/auth/me", headers=headers).status_code for _ in range(6)]
    if int(time.time() // 60) != window:
        pytest.skip("the one-minute window rolled over during the test")
    assert codes[:5] == [200] * 5 and codes[5] == 429
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"]["type"] == "RateLimited"
    # Another principal (here: anonymous, by address) has its own allowance.
    assert client.get("/api/v1/health").status_code == 200


def test_rate_limiter_windows(sqlite_url: str) -> None:
    from keel.db import connect
    from keel.errors import RateLimited
    from keel.server._ratelimit import RateLimiter

    now = [120.0]
    engine = connect(sqlite_url)
    limiter = RateLimiter(engine, per_minute=2, clock=lambda: now[0])
    limiter.hit("a")
    limiter.hit("a")
    limiter.hit("b")
    with pytest.raises(RateLimited) as info:
        limiter.hit("a")
    assert info.value.retry_after == 60.0
    now[0] = 179.5
    with pytest.raises(RateLimited) as info:
        limiter.hit("a")
    assert info.value.retry_after == 1.0  # at least one second
    now[0] = 180.0  # a new window
    limiter.hit("a")
    RateLimiter(engine, per_minute=0).hit("x")  # 0 turns the limit off


def test_integers_beyond_64_bits_are_422_not_500(client: httpx.Client, admin_token: str) -> None:
    # Found by the schema fuzz: SQLite cannot bind them.
    headers = {"Authorization": f"Bearer {admin_token}"}
    for value in ("99999999999999999999999", "-205717466488220844032", "0"):
        r = client.delete(f"/api/v1/tokens/{value}", headers=headers)
        assert r.status_code == 422, (value, r.text)
        assert r.json()["error"]["field"] == "token_id"
    r = client.get("/api/v1/audit", params={"since_ms": 2**70}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "since_ms"


@pytest.mark.parametrize("server_overrides", [{"max_in_flight": 1}])
def test_overload_is_503_with_retry_after_not_a_queue(live: Any, client: httpx.Client) -> None:
    # One request held in flight: its body is still arriving.
    slow = _raw(live.port)
    slow.sendall(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"use\r\n'
    )
    deadline = time.monotonic() + 10
    r = client.get("/api/v1/health")
    while r.status_code == 200 and time.monotonic() < deadline:  # until the first is admitted
        time.sleep(0.05)
        r = client.get("/api/v1/health")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["type"] == "StoreUnavailable"
    assert r.headers["x-content-type-options"] == "nosniff"
    slow.close()  # the held request ends; capacity returns
    while r.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        r = client.get("/api/v1/health")
    assert r.status_code == 200
