"""Login sessions (cookie + CSRF token) and API tokens (scoped, capped, expiring, revocable)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from auth_support import FAST, PASSWORD, Clock

from keel.auth import AuthStore, Role
from keel.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated


@pytest.fixture
def alice(store: AuthStore) -> str:
    store.create_user("alice", PASSWORD)
    return "alice"


def test_session_lifecycle(store: AuthStore, clock: Clock, alice: str) -> None:
    principal = store.login(alice, PASSWORD, address="10.0.0.1")
    session = store.create_session(principal)
    assert len(session.cookie_value) >= 43 and len(session.csrf_token) >= 43  # 256 bits
    assert session.cookie_value != session.csrf_token
    assert session.expires_ms == clock.ms + 12 * 3600 * 1000
    assert session.expires_at.timestamp() * 1000 == session.expires_ms
    assert session.cookie_value not in repr(session)
    again, csrf = store.authenticate_session(session.cookie_value)
    assert (again.username, again.via, csrf) == ("alice", "session", session.csrf_token)
    other = store.create_session(principal)
    assert other.csrf_token != session.csrf_token  # one CSRF token per session
    store.end_session(session.cookie_value)
    with pytest.raises(Unauthenticated):
        store.authenticate_session(session.cookie_value)
    store.authenticate_session(other.cookie_value)  # ending one leaves the others
    store.end_session(session.cookie_value)  # ending twice is harmless


def test_session_expires(store: AuthStore, clock: Clock, alice: str) -> None:
    session = store.create_session(store.login(alice, PASSWORD, address="a"))
    clock.advance(12 * 3600 - 1)
    store.authenticate_session(session.cookie_value)
    clock.advance(1)
    with pytest.raises(Unauthenticated, match="log in again"):
        store.authenticate_session(session.cookie_value)
    store.create_user("bob", PASSWORD)
    store.create_session(store.login("bob", PASSWORD, address="b"))
    with store._engine.connect() as conn:  # the expired row went with the next login
        assert conn.exec_driver_sql("SELECT count(*) FROM auth_sessions").scalar() == 1


@pytest.mark.parametrize("cookie", ["", "x" * 500, "not-a-session"])
def test_unknown_session_cookies_are_refused(store: AuthStore, cookie: str) -> None:
    with pytest.raises(Unauthenticated):
        store.authenticate_session(cookie)


def test_a_token_cannot_start_a_session(store: AuthStore, alice: str) -> None:
    token, _ = store.create_token(alice, name="ci", role="admin")
    with pytest.raises(PermissionDenied):
        store.create_session(store.authenticate_token(token))


def test_token_format_lookup_and_listing(store: AuthStore, clock: Clock, alice: str) -> None:
    token, info = store.create_token(
        alice, name="ci", role=Role.EDITOR, projects=["churn", "churn", "fraud"]
    )
    assert re.fullmatch(r"keel_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(info.prefix) and len(info.prefix) == 17
    assert info.projects == ("churn", "fraud") and info.role is Role.EDITOR
    assert info.expires_ms is None and info.last_used_ms is None and info.active(clock.ms)
    principal = store.authenticate_token(token)
    assert principal.via == "token" and principal.token_id == info.id
    assert principal.token_role is Role.EDITOR and principal.token_projects == ("churn", "fraud")
    assert not principal.is_admin
    [listed] = store.list_tokens("ALICE")
    assert listed.last_used_ms == clock.ms and listed.prefix == info.prefix
    assert store.list_tokens() == [listed]
    assert listed.to_dict()["role"] == "editor"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret, right lookup id
        lambda t: t.replace("keel_", "keal_"),
        lambda t: t[:17],
        lambda t: "keel_000000000000_" + t[18:],  # right secret, unknown lookup id
        lambda t: "",
        lambda t: t + "x",
        lambda t: t[:6] + "\x00" + t[7:],  # NUL in the lookup id (PostgreSQL text has none)
        lambda t: t.upper(),
    ],
)
def test_tampered_tokens_are_refused(store: AuthStore, alice: str, mangle) -> None:  # type: ignore[no-untyped-def]
    token, _ = store.create_token(alice, name="ci", role="viewer")
    with pytest.raises(Unauthenticated, match="invalid, expired or revoked"):
        store.authenticate_token(mangle(token))


def test_token_expiry_and_revocation(store: AuthStore, clock: Clock, alice: str) -> None:
    short, info = store.create_token(
        alice, name="short", role="viewer", expires_in=timedelta(days=1)
    )
    assert info.expires_ms == clock.ms + 86_400_000
    long, long_info = store.create_token(alice, name="long", role="viewer")
    clock.advance(86_400)
    with pytest.raises(Unauthenticated):
        store.authenticate_token(short)
    store.authenticate_token(long)
    revoked = store.revoke_token(long_info.id, actor="admin")
    assert revoked.revoked_ms == clock.ms and not revoked.active(clock.ms)
    with pytest.raises(Unauthenticated):
        store.authenticate_token(long)
    clock.advance(5)
    assert store.revoke_token(long_info.id).revoked_ms == revoked.revoked_ms  # idempotent
    with pytest.raises(NotFound):
        store.revoke_token(99_999)
    actions = [(r.action, r.resource) for r in store.audit_search(action="token.*")]
    assert actions == [
        ("token.revoke", f"token:{long_info.id}"),
        ("token.revoke", f"token:{long_info.id}"),
        ("token.create", "user:alice"),
        ("token.create", "user:alice"),
    ]


def test_last_used_is_written_at_most_once_a_minute(
    store: AuthStore, clock: Clock, alice: str
) -> None:
    token, _ = store.create_token(alice, name="ci", role="viewer")
    first = clock.ms
    store.authenticate_token(token)
    clock.advance(30)
    store.authenticate_token(token)
    assert store.list_tokens()[0].last_used_ms == first
    clock.advance(30)
    store.authenticate_token(token)
    assert store.list_tokens()[0].last_used_ms == clock.ms


def test_last_used_throttle_skips_the_write(store: AuthStore, alice: str) -> None:
    from sqlalchemy import event

    token, _ = store.create_token(alice, name="ci", role="viewer")
    store.authenticate_token(token)
    statements: list[str] = []
    event.listen(store._engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(5):
        store.authenticate_token(token)
    assert statements and not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "role": "viewer"}, "name"),
        ({"name": "x" * 101, "role": "viewer"}, "name"),
        ({"name": "ci", "role": "owner"}, "role"),
        ({"name": "ci", "role": "viewer", "projects": []}, "projects"),
        ({"name": "ci", "role": "viewer", "projects": "churn"}, "projects"),
        ({"name": "ci", "role": "viewer", "projects": ["bad\x01"]}, "projects"),
        ({"name": "ci", "role": "viewer", "expires_in": timedelta(0)}, "expires_in"),
        ({"name": "ci", "role": "viewer", "expires_in": timedelta(days=5000)}, "expires_in"),
    ],
)
def test_bad_token_requests_name_the_field(
    store: AuthStore, alice: str, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        store.create_token(alice, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert store.list_tokens() == []


def test_tokens_of_other_store_instances_agree(db_url: str, store: AuthStore, alice: str) -> None:
    token, _ = store.create_token(alice, name="ci", role="viewer")
    other = AuthStore(db_url, hash_params=FAST)
    assert other.authenticate_token(token).username == "alice"


def test_a_lookup_id_collision_draws_again(
    store: AuthStore, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.auth import _sql_creds

    draws = iter(["aaaaaaaaaaaa", "aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(_sql_creds.secrets, "token_hex", lambda _n: next(draws))
    first, _ = store.create_token(alice, name="one", role="viewer")
    second, info = store.create_token(alice, name="two", role="viewer")
    assert first.startswith("keel_aaaaaaaaaaaa_") and second.startswith("keel_bbbbbbbbbbbb_")
    assert store.authenticate_token(second).token_id == info.id
