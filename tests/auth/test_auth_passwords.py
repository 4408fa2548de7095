"""Password rules, argon2id hashing with explicit parameters, rehash on login, and no secret
stored in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_support import FAST, PASSWORD

from keel.auth import AuthStore, HashParams, open_auth_store
from keel.auth._passwords import check_strength, common_passwords
from keel.errors import InvalidInput, Unauthenticated


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short1!", "at least 12 characters"),
        ("x" * 1025, "at most 1024"),
        ("my-name-is-alice-99", "username"),
        ("MY-NAME-IS-ALICE-99", "username"),
        ("abababababababab", "5 different characters"),
        ("123456789012", "only digits and symbols"),
        ("Password1234!", "too common"),
        ("!!baseball2024", "too common"),
        ("monkeymonkey", "too common"),
        ("Superman1234Superman1234", "too common"),
        ("trustno1trustno1", "too common"),
    ],
)
def test_weak_passwords_are_refused_naming_the_field(password: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as info:
        check_strength(password, username="alice")
    assert info.value.field == "password"


def test_good_passphrases_pass() -> None:
    for good in (PASSWORD, "Tr0ub4dor&3-but-longer", "日本語のパスフレーズです"):
        assert check_strength(good, username="alice") == good


def test_the_bundled_list_is_the_common_one() -> None:
    common = common_passwords()
    assert len(common) > 1900
    assert {"password", "123456", "qwerty", "letmein", "trustno1"} <= common
    assert not any(p.startswith("#") for p in common)


def test_store_refuses_weak_password_and_stores_nothing(store: AuthStore) -> None:
    with pytest.raises(InvalidInput) as info:
        store.create_user("bob", "password")
    assert info.value.field == "password"
    assert store.list_users() == []
    store.create_user("bob", PASSWORD)
    with pytest.raises(InvalidInput, match="too common"):
        store.change_password("bob", "letmein123456")
    store.login("bob", PASSWORD, address="a")  # the old password still works


def test_hashes_are_argon2id_with_the_given_parameters(store: AuthStore) -> None:
    from sqlalchemy import select

    from keel.auth._tables import users

    store.create_user("carol", PASSWORD)
    with store._engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert PASSWORD not in stored


def test_default_parameters_are_explicit_and_strong() -> None:
    params = HashParams()
    assert (params.time_cost, params.memory_cost_kib, params.parallelism) == (3, 65536, 4)


def test_login_rehashes_when_parameters_change(db_url: str) -> None:
    from sqlalchemy import select

    from keel.auth._tables import users

    old = AuthStore(db_url, hash_params=FAST)
    old.create_user("dave", PASSWORD)
    stronger = HashParams(time_cost=2, memory_cost_kib=16384, parallelism=1)
    new = AuthStore(db_url, hash_params=stronger)
    with pytest.raises(Unauthenticated):
        new.login("dave", "wrong password here", address="a")

    def stored() -> str:
        with new._engine.connect() as conn:
            return str(conn.execute(select(users.c.password_hash)).scalar_one())

    assert "m=8192,t=1" in stored()  # a failed login changes nothing
    new.login("dave", PASSWORD, address="a")
    assert "m=16384,t=2,p=1" in stored()
    new.login("dave", PASSWORD, address="a")
    # A process still on the old parameters verifies the new hash, and moves it back: the
    # parameters in force decide, not the newest ever seen.
    old.login("dave", PASSWORD, address="a")
    assert "m=8192,t=1,p=1" in stored()
    record = new.audit_search(action="login", limit=3)
    assert [r.detail.get("rehashed") for r in record] == [True, False, True]


def test_no_secret_is_stored_in_the_clear(tmp_path: Path) -> None:
    db = tmp_path / "auth.db"
    store = open_auth_store(f"sqlite:///{db}", hash_params=FAST)
    assert store.bootstrap_admin("operator passphrase long enough") is None
    store.create_user("erin", PASSWORD)
    principal = store.login("erin", PASSWORD, address="127.0.0.1")
    session = store.create_session(principal)
    token, _ = store.create_token("erin", name="ci", role="editor")
    store.close()
    from keel.db import dispose_all

    dispose_all()  # checkpoint the WAL into the file, then read every byte on disk
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("auth.db*"))
    for secret in (PASSWORD, "operator passphrase long enough", session.cookie_value, token):
        assert secret.encode() not in raw, secret
    secret_part = token.split("_", 2)[2]
    assert secret_part.encode() not in raw
    assert session.csrf_token.encode() in raw  # stored as is: useless without the cookie


def test_passwords_are_compared_in_nfc(store: AuthStore) -> None:
    composed = "caf\u00e9 au lait, s'il vous pla\u00eet"
    decomposed = "cafe\u0301 au lait, s'il vous plai\u0302t"
    assert composed != decomposed
    store.create_user("zoe", composed)
    store.login("zoe", decomposed, address="a")
    with pytest.raises(Unauthenticated):
        store.login("zoe", composed.replace("\u00e9", "e"), address="a")
