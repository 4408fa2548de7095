"""Helpers of the server tests (a module with a unique name: several test folders have a
``conftest``, so tests import from here, never from ``conftest``)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_PASSWORD = "Server-Tests-Root-Passphrase-7"
PROJECT = "matrix"


def strong_password() -> str:
    """A password every rule accepts, whatever the test's username: the random part is digits,
    so it never contains a name such as ``ea`` (a hex string would, one time in eight)."""
    return f"pw-{uuid.uuid4().int}-Zq"


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
