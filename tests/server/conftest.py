"""Server fixtures: an app over real SQLite stores, users of every role on one project, and a
live uvicorn server on a free port of 127.0.0.1 with an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_support import (
    ADMIN_PASSWORD,
    PROJECT,
    Caller,
    make_state,
    strong_password,
)

from live_server import LiveServer


@pytest.fixture
def server_overrides() -> dict[str, Any]:
    """ServerSettings fields a test module changes (override this fixture)."""
    return {}


@pytest.fixture
def state(sqlite_url: str, tmp_path: Path, server_overrides: dict[str, Any]) -> Iterator[Any]:
    st = make_state(sqlite_url, tmp_path / "artifacts", **server_overrides)
    st.auth.bootstrap_admin(ADMIN_PASSWORD)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def app(state: Any) -> Any:
    from keel.server import create_app

    return create_app(state.settings, state=state)


@pytest.fixture
def admin_token(state: Any) -> str:
    from keel.auth import Role

    token, _ = state.auth.create_token("admin", name="tests", role=Role.ADMIN)
    return str(token)


@pytest.fixture
def callers(state: Any, admin_token: str) -> dict[str, Caller]:
    """anonymous, a user without grants, one user per role on PROJECT (the project admin as
    ``project-admin``), and the global admin (``admin``)."""
    from keel.auth import Role

    out = {
        "anonymous": Caller("anonymous", None),
        "admin": Caller(
            "admin",
            admin_token,
            password=ADMIN_PASSWORD,
            global_admin=True,
            project_role=int(Role.ADMIN),
        ),
    }
    for label, role in [("nogrant", None), *((r.label, r) for r in Role)]:
        username = f"u-{label}"
        password = strong_password()
        state.auth.create_user(username, password)
        if role is not None:
            state.auth.grant(PROJECT, username, role)
        token, _ = state.auth.create_token(username, name="matrix", role=Role.ADMIN)
        out["project-admin" if role is Role.ADMIN else label] = Caller(
            username, token, password, project_role=None if role is None else int(role)
        )
    return out


@pytest.fixture
def live(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[Any]:
    """An HTTP client of the live server (real TCP on 127.0.0.1)."""
    import httpx

    with httpx.Client(base_url=live.url, timeout=30) as c:
        yield c
