"""Every route declares exactly one policy, and each policy admits exactly the callers it says:
the full route x role matrix, built from the policy markers and one example request per route."""

from __future__ import annotations

from typing import Any

import pytest
from server_route_examples import ADMITTED_REFUSALS, EXAMPLES, Ctx
from server_support import Caller

from keel.server._policy import Policy, route_table


def _routes(app: Any) -> list[tuple[str, str, Policy]]:
    out = []
    for path, methods, found in route_table(app.routes):
        assert methods, f"{path}: not an HTTP route with methods, so it carries no policy"
        assert len(found) == 1, f"{sorted(methods)} {path}: {len(found)} policies"
        out.extend((method, path, found[0]) for method in sorted(methods))
    return out


def test_every_route_has_exactly_one_policy(app: Any) -> None:
    routes = _routes(app)
    assert ("GET", "/api/v1/health", Policy("public")) in routes
    assert len(routes) >= 15


def test_a_route_without_policy_is_caught(app: Any) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/api/v1/oops")
    def oops() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(AssertionError, match="0 policies"):
        _routes(app)


def test_a_route_with_two_policies_is_caught(app: Any) -> None:
    from fastapi import APIRouter

    from keel.server._policy import admin, public

    router = APIRouter()

    @router.get("/api/v1/twice", dependencies=[public(), admin()])
    def twice() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(AssertionError, match="2 policies"):
        _routes(app)


def test_the_app_refuses_to_start_with_a_route_without_policy(
    state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi import APIRouter

    from keel.errors import ConfigError
    from keel.server import create_app
    from keel.server.routes import ROUTERS

    router = APIRouter(prefix="/api/v1")

    @router.post("/open-door")
    def open_door() -> dict[str, str]:
        return {}

    monkeypatch.setattr("keel.server.routes.ROUTERS", [*ROUTERS, router])
    with pytest.raises(ConfigError, match="POST /api/v1/open-door declares 0 policies"):
        create_app(state.settings, state=state)


def _expected(policy: Policy, caller: Caller) -> str:
    if policy.kind == "public":
        return "ok"
    if caller.token is None:
        return "401"
    if policy.kind == "authenticated" or caller.global_admin:
        return "ok"
    if policy.kind == "admin":
        return "403"
    assert policy.role is not None  # "project" and "anywhere": the caller's one grant decides
    have = caller.project_role
    return "ok" if have is not None and have >= policy.role else "403"


def _sign_in(client: Any, caller: Caller, ctx: Ctx, via: str) -> dict[str, str]:
    """Credentials of ``caller`` for one request: its token, or a fresh session (the cookie
    stays in the client) and the CSRF header."""
    client.cookies.clear()  # a login example must not sign in the next caller
    if caller.token is None:
        return {}
    if via == "token":
        return caller.headers
    r = client.post(
        "/api/v1/auth/login",
        json={"username": caller.name, "password": ctx.passwords[caller.name]},
    )
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


@pytest.mark.parametrize("via", ["token", "session"])
def test_route_role_matrix(
    app: Any, client: Any, state: Any, callers: dict[str, Caller], via: str
) -> None:
    ctx = Ctx(
        state=state, passwords={c.name: c.password for c in callers.values() if c.password}
    ).setup()
    failures = []
    checked = 0
    for method, path, policy in _routes(app):
        if (method, path) not in EXAMPLES:
            continue  # test_every_route_has_an_example fails for it
        for caller in callers.values():
            credentials = _sign_in(client, caller, ctx, via)
            example = EXAMPLES[(method, path)](ctx, caller.name)
            response = client.request(
                example.method,
                example.path,
                json=example.json,
                params=example.params,
                content=example.content,
                headers={**example.headers, **credentials},
            )
            want = _expected(policy, caller)
            got = response.status_code
            admitted = got < 400 or got in ADMITTED_REFUSALS.get((method, path), ())
            ok = admitted if want == "ok" else str(got) == want
            checked += 1
            if not ok:
                failures.append(
                    f"{method} {path} [{policy.label}] as {caller.name} by {via}: "
                    f"want {want}, got {got} {response.text[:200]}"
                )
    assert not failures, "\n".join(failures)
    assert checked >= 15 * len(callers)


def test_every_route_has_an_example(app: Any) -> None:
    missing = [(m, p) for m, p, _ in _routes(app) if (m, p) not in EXAMPLES]
    assert not missing, (
        "routes without an example request for the role matrix; add them to "
        "tests/server/remote/remote_route_examples.py (an EXAMPLES dict shaped like the one in "
        f"tests/server/server_route_examples.py): {missing}"
    )
