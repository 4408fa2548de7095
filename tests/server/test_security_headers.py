"""Security headers on every response, the Host allowlist, strict CORS, HTTPS-only extras."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keel.server._guard import API_CSP, host_name

BASE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _check_base(r: httpx.Response) -> None:
    for name, value in BASE.items():
        assert r.headers.get(name) == value, (r.request.url, name)
    assert "server" not in r.headers


def test_every_kind_of_response_carries_the_headers(client: httpx.Client) -> None:
    answers = [
        client.get("/api/v1/health"),  # 200
        client.get("/api/v1/auth/me"),  # 401 from the policy
        client.get("/api/v1/missing"),  # 404 from the router
        client.post(  # 413 from the body middleware, before routing
            "/api/v1/auth/login",
            content=b"{" + b" " * (9 << 20) + b"}",
            headers={"Content-Type": "application/json"},
        ),
        client.get("/api/v1/health", headers={"Host": "evil.example"}),  # 400 from the guard
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 413, 400]
    for r in answers:
        _check_base(r)
        assert r.headers["content-security-policy"] == API_CSP
        assert r.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in r.headers  # plain HTTP
        assert r.headers["content-type"].startswith("application/json")


def test_docs_pages_get_a_csp_that_pins_their_inline_script(client: httpx.Client) -> None:
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 200
        _check_base(r)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'sha256-" in client.get("/docs").headers["content-security-policy"]
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/v1/auth/login" in schema.json()["paths"]


def test_host_allowlist(client: httpx.Client, live: Any) -> None:
    for host in ("localhost", f"localhost:{live.port}", "127.0.0.1", f"127.0.0.1:{live.port}"):
        assert client.get("/api/v1/health", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "localhost.evil.example", "", "127.0.0.2"):
        r = client.get("/api/v1/health", headers={"Host": host})
        assert r.status_code == 400, host
        assert r.json()["error"]["field"] == "host"


@pytest.mark.parametrize("server_overrides", [{"allowed_hosts": ("keel.example.com",)}])
def test_configured_hosts_are_allowed(client: httpx.Client) -> None:
    ok = client.get("/api/v1/health", headers={"Host": "KEEL.example.com:8443"})
    assert ok.status_code == 200
    assert client.get("/api/v1/health", headers={"Host": "other.example"}).status_code == 400


def test_host_name_parsing() -> None:
    assert host_name("Example.COM:80") == "example.com"
    assert host_name("[::1]:8080") == "[::1]"
    assert host_name("[::1]") == "[::1]"
    assert host_name("::1") == "::1"


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    origin = {"Origin": "https://app.example.com"}
    pre = client.options(
        "/api/v1/auth/me", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 403
    assert "access-control-allow-origin" not in pre.headers
    r = client.get("/api/v1/health", headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("server_overrides", [{"cors_origins": ("https://app.example.com",)}])
def test_cors_allowlist(client: httpx.Client) -> None:
    good = {"Origin": "https://app.example.com"}
    pre = client.options(
        "/api/v1/runs/search",
        headers={**good, "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in pre.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in pre.headers  # no cookies cross-site
    r = client.get("/api/v1/health", headers=good)
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["vary"] == "Origin"
    bad = client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers


def test_cors_wildcard_is_refused() -> None:
    from pydantic import ValidationError

    from keel.server._settings import ServerSettings

    with pytest.raises(ValidationError, match="full origins"):
        ServerSettings(cors_origins=("*",))


@pytest.mark.parametrize("server_overrides", [{"https": True}])
def test_https_adds_hsts_and_secure_cookies(client: httpx.Client) -> None:
    from server_support import ADMIN_PASSWORD

    r = client.get("/api/v1/health")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    login = client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200
    assert "secure" in login.headers["set-cookie"].lower()


def test_openapi_names_the_credentials_of_guarded_operations(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["token"]["scheme"] == "bearer"
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "keel_session"}
    assert schema["paths"]["/api/v1/users"]["post"]["security"] == [{"token": []}, {"session": []}]
    assert "security" not in schema["paths"]["/api/v1/auth/login"]["post"]
    assert "security" not in schema["paths"]["/api/v1/health"]["get"]
