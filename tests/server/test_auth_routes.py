"""Login, sessions and CSRF, tokens, users, grants and the audit trail, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from server_support import ADMIN_PASSWORD, PROJECT, strong_password


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_sets_a_strict_httponly_cookie_and_returns_the_csrf_token(
    client: httpx.Client,
) -> None:
    r = _login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["username"] == "admin" and body["is_admin"] is True
    assert len(body["csrf_token"]) >= 20
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("keel_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # plain http on loopback; see the https test
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["via"] == "session"


def test_failed_login_is_401_and_audited_without_the_password(
    client: httpx.Client, state: Any
) -> None:
    r = _login(client, "admin", "wrong-password-123")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "Unauthenticated"
    assert "set-cookie" not in r.headers
    records = state.auth.audit_search(action="POST /api/v1/auth/login")
    assert records and records[0].outcome == "401" and records[0].actor == "admin"
    dump = repr([(x.detail, x.resource, x.action) for x in state.auth.audit_search(limit=50)])
    assert "wrong-password-123" not in dump


def test_repeated_failed_logins_are_rate_limited_with_retry_after(client: httpx.Client) -> None:
    answers = [_login(client, "admin", f"wrong-password-{i:03d}").status_code for i in range(12)]
    assert answers[0] == 401 and 429 in answers
    r = _login(client, "admin", ADMIN_PASSWORD)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1


def test_session_writes_need_the_csrf_header(client: httpx.Client) -> None:
    csrf = _login(client, "admin", ADMIN_PASSWORD).json()["csrf_token"]
    new = {"name": "from-session", "role": "viewer"}
    missing = client.post("/api/v1/tokens", json=new)
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["error"]["message"]
    wrong = client.post("/api/v1/tokens", json=new, headers={"X-CSRF-Token": "x" * len(csrf)})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/tokens", json=new, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    # Reads need no CSRF header.
    assert client.get("/api/v1/tokens").status_code == 200


def test_bearer_requests_are_exempt_from_csrf(client: httpx.Client, admin_token: str) -> None:
    r = client.post(
        "/api/v1/tokens",
        json={"name": "by-token", "role": "viewer"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["token"].startswith("keel_")


def test_logout_ends_the_session(client: httpx.Client) -> None:
    csrf = _login(client, "admin", ADMIN_PASSWORD).json()["csrf_token"]
    cookie = client.cookies.get("keel_session")
    r = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401
    # The old cookie value is dead on the server, not just deleted in this client.
    client.cookies.set("keel_session", str(cookie))
    assert client.get("/api/v1/auth/me").status_code == 401


def test_bad_authorization_headers_are_401(client: httpx.Client) -> None:
    for value in ("Basic YWRtaW46eA==", "Bearer", "Bearer keel_not-a-token", "keel_x"):
        r = client.get("/api/v1/auth/me", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_change_password(client: httpx.Client, state: Any) -> None:
    state.auth.create_user("carol", "first-Passphrase-for-c4r0l-9")
    csrf = _login(client, "carol", "first-Passphrase-for-c4r0l-9").json()["csrf_token"]
    new = strong_password()
    wrong = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it-at-all-42", "new_password": new},
        headers={"X-CSRF-Token": csrf},
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "current_password"
    weak = client.post(
        "/api/v1/auth/password",
        json={"current_password": "first-Passphrase-for-c4r0l-9", "new_password": "short"},
        headers={"X-CSRF-Token": csrf},
    )
    assert weak.status_code == 422 and weak.json()["error"]["field"] == "password"
    ok = client.post(
        "/api/v1/auth/password",
        json={"current_password": "first-Passphrase-for-c4r0l-9", "new_password": new},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 200, ok.text
    assert client.get("/api/v1/auth/me").status_code == 401  # sessions end with the change
    assert _login(client, "carol", "first-Passphrase-for-c4r0l-9").status_code == 401
    assert _login(client, "carol", new).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_users_and_tokens_lifecycle(client: httpx.Client, admin_token: str) -> None:
    admin = _bearer(admin_token)
    r = client.post(
        "/api/v1/users", json={"username": "dave", "password": strong_password()}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "dave" and r.json()["is_admin"] is False
    dup = client.post(
        "/api/v1/users", json={"username": "Dave", "password": strong_password()}, headers=admin
    )
    assert dup.status_code == 409 and dup.json()["error"]["type"] == "AlreadyExists"
    made = client.post(
        "/api/v1/tokens",
        json={"name": "ci", "role": "editor", "username": "dave", "projects": [PROJECT]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    dave = _bearer(made.json()["token"])
    me = client.get("/api/v1/auth/me", headers=dave).json()
    assert me["username"] == "dave" and me["token_role"] == "editor"
    assert me["token_projects"] == [PROJECT]
    # dave sees only his tokens, and may not list anyone else's.
    assert [t["name"] for t in client.get("/api/v1/tokens", headers=dave).json()] == ["ci"]
    assert client.get("/api/v1/tokens?username=admin", headers=dave).status_code == 403
    # An editor-ceiling token cannot mint an admin one, nor widen its project scope.
    assert (
        client.post("/api/v1/tokens", json={"name": "up", "role": "admin"}, headers=dave)
    ).status_code == 403
    assert (
        client.post("/api/v1/tokens", json={"name": "wide", "role": "viewer"}, headers=dave)
    ).status_code == 403
    narrow = client.post(
        "/api/v1/tokens",
        json={"name": "narrow", "role": "viewer", "projects": [PROJECT]},
        headers=dave,
    )
    assert narrow.status_code == 201, narrow.text
    # Someone else's token id is "not found" to dave.
    admin_ids = [t["id"] for t in client.get("/api/v1/tokens?username=admin", headers=admin).json()]
    assert client.delete(f"/api/v1/tokens/{admin_ids[0]}", headers=dave).status_code == 404
    # Revoking works and the token stops at once.
    ci_id = made.json()["info"]["id"]
    revoked = client.delete(f"/api/v1/tokens/{ci_id}", headers=dave)
    assert revoked.status_code == 200 and revoked.json()["revoked_ms"] is not None
    assert client.get("/api/v1/auth/me", headers=dave).status_code == 401
    # Disabling a user stops their tokens.
    n = _bearer(narrow.json()["token"])
    assert client.get("/api/v1/auth/me", headers=n).status_code == 200
    assert client.post("/api/v1/users/dave/disable", headers=admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=n).status_code == 401
    assert client.post("/api/v1/users/admin/disable", headers=admin).status_code == 403
    names = [u["username"] for u in client.get("/api/v1/users", headers=admin).json()]
    assert {"admin", "dave"} <= set(names)


def test_project_admins_manage_grants_on_their_project_only(
    client: httpx.Client, state: Any, admin_token: str
) -> None:
    from keel.auth import Role

    state.auth.create_user("erin", strong_password())
    state.auth.create_user("frank", strong_password())
    state.auth.grant("alpha", "erin", Role.ADMIN)
    erin, _ = state.auth.create_token("erin", name="t", role=Role.ADMIN)
    h = _bearer(erin)
    r = client.put("/api/v1/projects/alpha/members/frank", json={"role": "editor"}, headers=h)
    assert r.status_code == 200, r.text
    assert state.auth.role_in(_principal(state, "frank"), "alpha") == Role.EDITOR
    assert (
        client.put("/api/v1/projects/beta/members/frank", json={"role": "editor"}, headers=h)
    ).status_code == 403
    bad = client.put("/api/v1/projects/alpha/members/frank", json={"role": "god"}, headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "role"
    assert client.delete("/api/v1/projects/alpha/members/frank", headers=h).status_code == 200
    assert state.auth.role_in(_principal(state, "frank"), "alpha") is None
    gone = client.delete("/api/v1/projects/alpha/members/frank", headers=h)
    assert gone.status_code == 404
    # A global admin manages any project.
    assert (
        client.put(
            "/api/v1/projects/beta/members/frank",
            json={"role": "viewer"},
            headers=_bearer(admin_token),
        )
    ).status_code == 200


def _principal(state: Any, username: str) -> Any:
    from keel.auth import Principal

    user = next(u for u in state.auth.list_users() if u.username == username)
    return Principal(user_id=user.id, username=username, is_admin=user.is_admin, via="password")


def test_every_write_is_audited_with_route_template_and_outcome(
    client: httpx.Client, admin_token: str, state: Any
) -> None:
    admin = _bearer(admin_token)
    client.post(
        "/api/v1/users", json={"username": "gail", "password": strong_password()}, headers=admin
    )
    client.post("/api/v1/users/nobody/disable", headers=admin)
    records = client.get("/api/v1/audit", params={"user": "admin", "limit": 100}, headers=admin)
    assert records.status_code == 200
    by_action = {}
    for rec in records.json():
        by_action.setdefault(rec["action"], rec)
    created = by_action["POST /api/v1/users"]
    assert created["outcome"] == "201" and created["resource"] == "user:gail"
    assert created["address"] == "127.0.0.1" and created["detail"]["via"] == "token"
    failed = by_action["POST /api/v1/users/{username}/disable"]
    assert failed["outcome"] == "404"
    assert failed["detail"]["params"] == {"username": "nobody"}
    # Reading the audit log with a token is itself on record (token use of an admin route).
    assert "GET /api/v1/audit" in by_action or any(
        r.action == "GET /api/v1/audit" for r in state.auth.audit_search(limit=200)
    )
    verify = client.get("/api/v1/audit/verify", headers=admin)
    assert verify.status_code == 200 and verify.json()["ok"] is True
    assert verify.json()["checked"] >= 3


def test_reads_by_session_are_not_audited(client: httpx.Client, state: Any) -> None:
    _login(client, "admin", ADMIN_PASSWORD)
    before = len(state.auth.audit_search(limit=1000))
    for _ in range(3):
        assert client.get("/api/v1/users").status_code == 200
    assert len(state.auth.audit_search(limit=1000)) == before


def test_a_failed_login_with_a_junk_name_records_no_actor(client: httpx.Client, state: Any) -> None:
    junk = "x\u202e<script>" * 3
    assert _login(client, junk, "whatever-password-1").status_code == 401
    records = state.auth.audit_search(action="POST /api/v1/auth/login", limit=5)
    assert records[0].outcome == "401" and records[0].actor is None
