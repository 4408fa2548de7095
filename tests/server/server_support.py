"""Helpers of the server tests (a module with a unique name: several test folders have a
``conftest``, so tests import from here, never from ``conftest``)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_PASSWORD = "Server-Tests-Root-Passphrase-7"
PROJECT = "matrix"


def strong_password() -> str:
    return f"pw-{uuid.uuid4().hex}-Zq"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_state(tracking_uri: str, artifacts: str | Path, **overrides: Any) -> Any:
    """Open server stores on ``tracking_uri`` and ``artifacts`` (a folder or s3:// URI)."""
    from keel.auth import HashParams, open_auth_store
    from keel.server._settings import ServerSettings
    from keel.server._state import open_state

    settings = ServerSettings(
        tracking_uri=tracking_uri,
        artifacts_uri=str(artifacts),
        **overrides,
    )
    # Cheap hashing: the tests make many users; the cost parameters are not under test here.
    auth = open_auth_store(
        settings.tracking_uri,
        hash_params=HashParams(time_cost=1, memory_cost_kib=8192, parallelism=1),
    )
    return open_state(settings, auth=auth)


@dataclass
class Caller:
    """One user of the role matrix and the bearer token it calls with."""

    name: str
    token: str | None  # None: anonymous
    password: str = ""
    global_admin: bool = False
    project_role: int | None = None  # keel.auth.Role value on PROJECT, None: no grant

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class LiveServer:
    """uvicorn serving ``app`` with Keel's protocol in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from keel._uvicorn import KeelHttpProtocol

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            http=KeelHttpProtocol,
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def keepalive_latencies_ms(port: int, path: str, *, n: int = 100) -> list[float]:
    """Milliseconds of ``n`` sequential GETs on one keep-alive connection (the first, which
    pays for connecting, is not counted)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for i in range(n + 1):
            t0 = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            assert response.getheader("connection", "").lower() != "close"
            if i:
                out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out
