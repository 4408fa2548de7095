"""The server with its artifacts in S3 (moto over real HTTP): bytes go through the API into
the bucket and come back verified."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_support import ADMIN_PASSWORD, make_state

from keel._hashing import hash_bytes
from live_server import LiveServer


@pytest.fixture
def s3_server(sqlite_url: str, s3_env: str) -> Iterator[tuple[str, str, Any]]:
    from keel.auth import Role
    from keel.server import create_app

    state = make_state(sqlite_url, s3_env)
    state.auth.bootstrap_admin(ADMIN_PASSWORD)
    token, _ = state.auth.create_token("admin", name="s3", role=Role.ADMIN)
    try:
        with LiveServer(create_app(state.settings, state=state)) as live:
            yield live.url, token, state
    finally:
        state.close()


@pytest.mark.services
def test_objects_round_trip_through_the_server_into_s3(s3_server: tuple[str, str, Any]) -> None:
    url, token, state = s3_server
    assert state.artifacts_uri.startswith("s3://")
    data = b"weights " * 10_000
    digest = hash_bytes(data)
    headers = {"Authorization": f"Bearer {token}"}
    put = httpx.put(
        f"{url}/api/v1/artifacts/objects/{digest}",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 201, put.text
    assert state.content.get_bytes(digest) == data  # in the bucket
    got = httpx.get(f"{url}/api/v1/artifacts/objects/{digest}", headers=headers)
    assert got.status_code == 200 and got.content == data
    wrong = httpx.put(
        f"{url}/api/v1/artifacts/objects/{hash_bytes(b'other')}",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert wrong.status_code == 422
