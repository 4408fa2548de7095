"""A live Keel server on PostgreSQL for the remote-backend tests.

``remote`` (session scope) creates a fresh PostgreSQL database, an admin token through
keel.auth, and starts ``uvicorn keel.server:create_app`` in a subprocess on a free port of
127.0.0.1: the tests talk to it over real TCP, as any client would. ``clean_tracking`` empties
the tracking tables between tests, so each conformance test sees an empty store.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from remote_server import start_server, stop_server

from live_server import free_port

PG_ADMIN_URL = os.environ.get(
    "KEEL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

ADMIN_PASSWORD = "Remote-Tests-Owner-Passphrase-7"


@dataclass(frozen=True)
class Remote:
    url: str
    token: str
    db_url: str
    artifacts_root: Path
    server: ThreadServer


@pytest.fixture(scope="session")
def remote_db() -> Iterator[str]:
    """A PostgreSQL database for the whole session, dropped at the end."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("KEEL_REQUIRE_SERVICES") == "1":
            pytest.fail(f"KEEL_REQUIRE_SERVICES=1 but PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"keel_remote_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        from keel.db import dispose_all

        dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def admin_token(db_url: str) -> str:
    """A fresh admin token (the admin account bootstrapped on first use), made by keel.auth."""
    from keel.auth import Role, open_auth_store

    auth = open_auth_store(db_url)
    try:
        auth.bootstrap_admin(ADMIN_PASSWORD)
        token, _ = auth.create_token("admin", name=f"tests-{uuid.uuid4().hex[:8]}", role=Role.ADMIN)
    finally:
        auth.close()
    return token


class ThreadServer:
    """uvicorn serving ``create_app`` from a thread of this process, on a free port."""

    def __init__(self, *, db_url: str, artifacts: Path) -> None:
        import uvicorn

        from keel.server import ServerSettings, create_app

        settings = ServerSettings(
            tracking_uri=db_url, artifacts_uri=str(artifacts), rate_per_minute=0
        )
        self.app = create_app(settings)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="keel-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.app.state.keel.close()


@pytest.fixture(scope="session")
def remote(remote_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """A live server (in a thread of the test process, so tests can reach its stores)."""
    token = admin_token(remote_db)
    base = tmp_path_factory.mktemp("remote-server")
    server = ThreadServer(db_url=remote_db, artifacts=base / "artifacts")
    try:
        yield Remote(server.url, token, remote_db, base / "artifacts", server)
    finally:
        server.stop()


@pytest.fixture
def clean_tracking(remote: Remote) -> None:
    """Empty every tracking table (the server's store then starts each test empty)."""
    import sqlalchemy as sa

    from keel.db import engine_for
    from keel.tracking import _tables

    names = [t.name for t in vars(_tables).values() if isinstance(t, sa.Table)]
    with engine_for(remote.db_url).begin() as conn:
        conn.execute(sa.text(f"TRUNCATE TABLE {', '.join(names)} CASCADE"))
    # The store caches projects (they are never deleted, except here): forget them too.
    remote.server.app.state.keel.tracking._projects.clear()


@pytest.fixture(scope="module")
def server_process(remote_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server in a process of its own (uvicorn), on the session's database; its URL."""
    base = tmp_path_factory.mktemp("server-process")
    proc, url = start_server(
        db_url=remote_db, artifacts=base / "artifacts", log_path=base / "server.log"
    )
    try:
        yield url
    finally:
        stop_server(proc)
