"""Fixtures of the auth tests: a store with cheap argon2 parameters and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_support import FAST, Clock

from keel.auth import AuthStore, LoginLimits


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[AuthStore]:
    auth = AuthStore(
        db_url,
        hash_params=FAST,
        login_limits=LoginLimits(per_user=3, per_address=5, window_s=60),
        clock=clock,
    )
    yield auth
    auth.close()
