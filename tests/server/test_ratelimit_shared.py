"""The request-rate limit is one allowance across server processes on one database: counters
live in the database, reserved in chunks, never admitting more than the limit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import ADMIN_PASSWORD, make_state

from live_server import LiveServer


def _limiter(url: str, now: list[float], *, per_minute: int, chunk: int | None = None) -> Any:
    from keel.db import connect
    from keel.server._ratelimit import RateLimiter

    return RateLimiter(connect(url), per_minute=per_minute, chunk=chunk, clock=lambda: now[0])


def _admitted(limiter: Any, key: str, n: int) -> int:
    from keel.errors import RateLimited

    ok = 0
    for _ in range(n):
        try:
            limiter.hit(key)
            ok += 1
        except RateLimited:
            pass
    return ok


def test_two_limiters_on_one_database_share_the_allowance(db_url: str) -> None:
    now = [600.0]
    a = _limiter(db_url, now, per_minute=100, chunk=10)
    b = _limiter(db_url, now, per_minute=100, chunk=10)
    # Evenly shared traffic: each process spends whole chunks, so the limit is exact.
    both = sum(_admitted(limiter, "user:1", 1) for _ in range(80) for limiter in (a, b))
    assert both == 100
    # A new minute is a new allowance, for both.
    now[0] = 660.0
    assert _admitted(a, "user:1", 1) == 1
    assert _admitted(b, "user:1", 200) == 90  # a holds 9 reserved: the stated error bound
    assert _admitted(a, "user:1", 50) == 9  # ... which a still spends: 100 in all
    assert _admitted(a, "user:2", 1) == 1  # keys are separate


def test_one_process_never_exceeds_the_limit_whatever_the_chunk(db_url: str) -> None:
    now = [0.0]
    limiter = _limiter(db_url, now, per_minute=7, chunk=5)
    assert _admitted(limiter, "addr:10.0.0.1", 20) == 7


def test_old_windows_are_expired(sqlite_url: str) -> None:
    from sqlalchemy import func, select

    from keel.server._ratelimit import rate_windows

    now = [60.0]
    limiter = _limiter(sqlite_url, now, per_minute=10)
    limiter.hit("k")
    now[0] = 300.0
    limiter.hit("k")
    assert limiter.expire(5) == 1  # the window of minute 1 is gone, minute 5 stays
    with limiter.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rate_windows)).scalar_one() == 1


def test_two_servers_on_one_postgresql_database_enforce_the_combined_allowance(
    pg_url: str, tmp_path: Path
) -> None:
    from keel.auth import Role
    from keel.server import create_app

    states = [
        make_state(pg_url, tmp_path / "artifacts", rate_per_minute=40),
        make_state(pg_url, tmp_path / "artifacts", rate_per_minute=40),
    ]
    try:
        states[0].auth.bootstrap_admin(ADMIN_PASSWORD)
        token, _ = states[0].auth.create_token("admin", name="rate", role=Role.ADMIN)
        headers = {"Authorization": f"Bearer {token}"}
        with (
            LiveServer(create_app(states[0].settings, state=states[0])) as one,
            LiveServer(create_app(states[1].settings, state=states[1])) as two,
            httpx.Client(timeout=30, headers=headers) as client,
        ):
            window = int(time.time() // 60)
            codes = [
                client.get(f"{server.url}/api/v1/auth/me").status_code
                for _ in range(30)
                for server in (one, two)
            ]
            if int(time.time() // 60) != window:
                pytest.skip("the one-minute window rolled over during the test")
        # Each process alone would admit 40; together they admit 40 (chunks of 1 at this
        # limit, so exactly).
        assert codes.count(200) == 40 and codes.count(429) == 20
        assert codes[:40] == [200] * 40
    finally:
        for st in states:
            st.close()
