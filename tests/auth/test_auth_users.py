"""Users: canonical names, bootstrap of the admin account, disabling, password changes."""

from __future__ import annotations

import threading

import pytest
from auth_support import FAST, PASSWORD

from keel.auth import AuthStore, open_auth_store
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unauthenticated


def test_usernames_are_nfc_and_compared_ignoring_case(store: AuthStore) -> None:
    alice = store.create_user("Alice", PASSWORD)
    assert alice.username == "Alice" and not alice.is_admin and not alice.disabled
    for same in ("alice", "ALICE", " Alice "):
        with pytest.raises(AlreadyExists):
            store.create_user(same, PASSWORD + "!")
        assert store.get_user(same).id == alice.id
    assert [u.username for u in store.list_users()] == ["Alice"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "a" * 65,
        "-leading-dash",
        "has space",
        "slash/name",
        "\u0430lice",  # Cyrillic a: would display like "alice"
        "\uff21lice",  # full-width A
        "e\u0301mile",  # combining accent (NFC makes it é, which is not ASCII either)
        "nul\x00",
    ],
)
def test_bad_usernames_name_the_field(store: AuthStore, bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store.create_user(bad, PASSWORD)
    assert info.value.field == "username"
    assert store.list_users() == []


def test_non_string_username_is_invalid_input(store: AuthStore) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        store.create_user(42, PASSWORD)  # type: ignore[arg-type]


def test_bootstrap_creates_admin_once_with_a_random_password(store: AuthStore) -> None:
    generated = store.bootstrap_admin()
    assert generated is not None and len(generated) >= 20
    admin = store.get_user("admin")
    assert admin.is_admin
    principal = store.login("admin", generated, address="127.0.0.1")
    assert principal.is_admin and principal.via == "password"
    assert store.bootstrap_admin() is None  # an admin exists: nothing changes
    assert store.bootstrap_admin("some other long passphrase") is None
    store.login("admin", generated, address="127.0.0.1")
    created = store.audit_search(action="user.create")
    assert [(r.actor, r.resource, r.detail) for r in created] == [
        ("system", "user:admin", {"is_admin": True})
    ]


def test_bootstrap_with_given_password_checks_the_rules(store: AuthStore) -> None:
    with pytest.raises(InvalidInput) as info:
        store.bootstrap_admin("password123")
    assert info.value.field == "password"
    assert store.list_users() == []
    assert store.bootstrap_admin("a long operator passphrase") is None
    store.login("admin", "a long operator passphrase", address="x")


def test_bootstrap_refuses_a_plain_user_named_admin(store: AuthStore) -> None:
    store.create_user("Admin", PASSWORD)
    with pytest.raises(Conflict, match="users create NAME --admin"):
        store.bootstrap_admin()
    assert not store.get_user("admin").is_admin
    store.create_user("root", PASSWORD, is_admin=True)
    assert store.bootstrap_admin() is None


def test_concurrent_bootstrap_makes_one_admin(db_url: str) -> None:
    stores = [open_auth_store(db_url, hash_params=FAST) for _ in range(4)]
    results: list[str | None] = []
    barrier = threading.Barrier(len(stores))

    def run(s: AuthStore) -> None:
        barrier.wait()
        results.append(s.bootstrap_admin())

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    passwords = [r for r in results if r is not None]
    assert len(passwords) == 1
    assert [u.username for u in stores[0].list_users()] == ["admin"]
    stores[0].login("admin", passwords[0], address="x")


def test_disabled_user_loses_sessions_and_tokens_at_once(store: AuthStore) -> None:
    store.create_user("bob", PASSWORD)
    session = store.create_session(store.login("bob", PASSWORD, address="a"))
    token, _ = store.create_token("bob", name="ci", role="editor")
    store.authenticate_session(session.cookie_value)
    store.authenticate_token(token)
    assert store.disable_user("bob", actor="admin").disabled
    with pytest.raises(Unauthenticated):
        store.authenticate_session(session.cookie_value)
    with pytest.raises(Unauthenticated):
        store.authenticate_token(token)
    with pytest.raises(Unauthenticated, match="invalid username or password"):
        store.login("bob", PASSWORD, address="a")
    with pytest.raises(Conflict, match="disabled"):
        store.create_token("bob", name="again", role="viewer")
    store.enable_user("bob")
    store.authenticate_token(token)  # tokens come back with the account ...
    with pytest.raises(Unauthenticated):  # ... sessions do not: they were ended
        store.authenticate_session(session.cookie_value)
    actions = [r.action for r in store.audit_search(user="admin")]
    assert actions == ["user.disable"]


def test_password_change_ends_sessions_and_keeps_tokens(store: AuthStore) -> None:
    store.create_user("carol", PASSWORD)
    first = store.create_session(store.login("carol", PASSWORD, address="a"))
    second = store.create_session(store.login("carol", PASSWORD, address="b"))
    token, _ = store.create_token("carol", name="ci", role="viewer")
    store.change_password("carol", "a brand new passphrase", actor="carol")
    for session in (first, second):
        with pytest.raises(Unauthenticated):
            store.authenticate_session(session.cookie_value)
    store.authenticate_token(token)
    with pytest.raises(Unauthenticated):
        store.login("carol", PASSWORD, address="a")
    store.login("carol", "a brand new passphrase", address="a")
    assert store.get_user("carol").password_changed_ms > 0
    [record] = store.audit_search(action="user.password")
    assert (record.actor, record.resource) == ("carol", "user:carol")


def test_unknown_users_are_not_found(store: AuthStore) -> None:
    with pytest.raises(NotFound):
        store.disable_user("ghost")
    with pytest.raises(NotFound):
        store.change_password("ghost", "a brand new passphrase")
    with pytest.raises(NotFound):
        store.create_token("ghost", name="x", role="viewer")
    assert store.audit_search() == []  # nothing happened, nothing recorded
