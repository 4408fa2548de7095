"""Login: one answer for every kind of failure, comparable timing, and rate limits per username
and per address kept in the database (shared by every process)."""

from __future__ import annotations

import statistics
import time

import pytest
from auth_support import FAST, PASSWORD, Clock

from keel.auth import AuthStore, HashParams, LoginLimits
from keel.errors import RateLimited, Unauthenticated


def _fails(store: AuthStore, username: str, password: str, address: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        store.login(username, password, address=address)
    return str(info.value)


def test_every_failure_looks_the_same(store: AuthStore) -> None:
    store.create_user("alice", PASSWORD)
    store.create_user("mallory", PASSWORD)
    store.disable_user("mallory")
    messages = {
        _fails(store, "alice", "wrong password!!", "a1"),
        _fails(store, "nobody", PASSWORD, "a2"),
        _fails(store, "mallory", PASSWORD, "a3"),  # right password, disabled account
        _fails(store, "bad name!", PASSWORD, "a4"),
        _fails(store, "alice", "x" * 5000, "a5"),
    }
    assert messages == {"invalid username or password"}
    reasons = [r.detail["reason"] for r in store.audit_search(action="login")]  # newest first
    assert reasons == ["bad password", "unknown user", "disabled", "unknown user", "bad password"]


def test_login_is_case_insensitive_and_audited(store: AuthStore) -> None:
    store.create_user("Alice", PASSWORD)
    principal = store.login("ALICE", PASSWORD, address="10.1.1.1")
    assert principal.username == "Alice" and principal.via == "password"
    assert store.get_user("alice").last_login_ms is not None
    [record] = store.audit_search(action="login")
    assert (record.actor, record.outcome, record.address) == ("Alice", "ok", "10.1.1.1")


def test_unknown_user_takes_as_long_as_a_wrong_password(db_url: str) -> None:
    # Realistic parameters so the hash dominates the database round trips.
    params = HashParams(time_cost=2, memory_cost_kib=32768, parallelism=1)
    store = AuthStore(db_url, hash_params=params, login_limits=LoginLimits(per_user=1000))
    store.create_user("alice", PASSWORD)

    def median(username: str) -> float:
        times = []
        for i in range(5):
            start = time.perf_counter()
            with pytest.raises(Unauthenticated):
                store.login(username, f"wrong password {i}", address=f"t{i}")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    median("nobody")  # warm the dummy hash
    known, unknown = median("alice"), median("nobody")
    assert 0.33 < unknown / known < 3.0, (known, unknown)  # no dummy hash: ~0.1


def test_rate_limit_per_username(store: AuthStore, clock: Clock) -> None:
    store.create_user("alice", PASSWORD)
    for i in range(3):  # per_user=3 in the fixture, from different addresses
        _fails(store, "alice", "wrong password!!", f"addr{i}")
    with pytest.raises(RateLimited) as info:
        store.login("ALICE", PASSWORD, address="fresh")  # even the right password waits
    assert info.value.retry_after == pytest.approx(60, abs=1)
    clock.advance(30)
    with pytest.raises(RateLimited) as info:
        store.login("alice", PASSWORD, address="fresh")
    assert info.value.retry_after == pytest.approx(30, abs=1)
    clock.advance(30)
    store.login("alice", PASSWORD, address="fresh")
    outcomes = [r.outcome for r in store.audit_search(action="login", limit=10)]
    assert outcomes == ["ok", "rate_limited", "rate_limited", "denied", "denied", "denied"]


def test_unknown_usernames_are_limited_too(store: AuthStore) -> None:
    for i in range(3):
        _fails(store, "Ghost", "wrong password!!", f"a{i}")
    with pytest.raises(RateLimited):
        store.login("ghost", "wrong password!!", address="other")


def test_rate_limit_per_address(store: AuthStore, clock: Clock) -> None:
    store.create_user("alice", PASSWORD)
    for i in range(5):  # per_address=5: five names, one address
        _fails(store, f"user{i}", "wrong password!!", "203.0.113.9")
    with pytest.raises(RateLimited):
        store.login("alice", PASSWORD, address="203.0.113.9")
    store.login("alice", PASSWORD, address="198.51.100.1")  # another address is fine
    clock.advance(61)
    store.login("alice", PASSWORD, address="203.0.113.9")


def test_success_clears_the_username_counter_not_the_address(
    store: AuthStore, clock: Clock
) -> None:
    store.create_user("alice", PASSWORD)
    for _ in range(2):
        _fails(store, "alice", "wrong password!!", "addr")
    store.login("alice", PASSWORD, address="addr")
    for _ in range(2):
        _fails(store, "alice", "wrong password!!", "addr")
    store.login("alice", PASSWORD, address="addr")  # 2 + 2 failures, but cleared between
    _fails(store, "x1", "wrong password!!", "addr")
    with pytest.raises(RateLimited):  # the address kept counting: 5 failures
        store.login("alice", PASSWORD, address="addr")


def test_counters_are_shared_between_store_instances(db_url: str, clock: Clock) -> None:
    limits = LoginLimits(per_user=3, per_address=100, window_s=60)
    a = AuthStore(db_url, hash_params=FAST, login_limits=limits, clock=clock)
    b = AuthStore(db_url, hash_params=FAST, login_limits=limits, clock=clock)
    a.create_user("alice", PASSWORD)
    _fails(a, "alice", "wrong password!!", "x")
    _fails(b, "alice", "wrong password!!", "y")
    _fails(a, "alice", "wrong password!!", "z")
    with pytest.raises(RateLimited):
        b.login("alice", PASSWORD, address="w")


def test_password_change_clears_the_lockout(store: AuthStore) -> None:
    store.create_user("alice", PASSWORD)
    for _ in range(3):
        _fails(store, "alice", "wrong password!!", "a")
    store.change_password("alice", "a brand new passphrase", actor="admin")
    assert store.login("alice", "a brand new passphrase", address="b").username == "alice"


def test_attempted_usernames_are_recorded_printable(store: AuthStore) -> None:
    _fails(store, "\x1b[2Jevil\x00[bold]" + "x" * 300, "wrong password!!", "a")
    [record] = store.audit_search(action="login")
    assert record.actor is None
    assert record.resource.startswith("user:?[2jevil?[bold]") and len(record.resource) <= 69
    assert record.detail["username"].isprintable()
