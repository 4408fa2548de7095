"""``POST /feedback`` through a real uvicorn server on 127.0.0.1: single and batch, errors
with the field named, the body limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from keel.monitoring._feedback import SqlFeedbackStore
from keel.serving._feedback_routes import feedback_router


@pytest.fixture
def store(db_url: str) -> SqlFeedbackStore:
    return SqlFeedbackStore(db_url)


def _serve(app: FastAPI) -> Iterator[httpx.Client]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def client(store: SqlFeedbackStore) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.include_router(feedback_router(store, max_body_bytes=64 * 1024))
    yield from _serve(app)


def test_single_and_batch(client: httpx.Client, store: SqlFeedbackStore) -> None:
    r = client.post("/feedback", json={"deployment": "d", "request_id": "r1", "label": 1})
    assert r.status_code == 200
    assert r.json() == {"deployment": "d", "received": 1, "applied": 1, "stale": 0}
    items = [{"request_id": f"b{i}", "label": "yes", "timestamp": 1_000 + i} for i in range(50)]
    r = client.post("/feedback", json={"deployment": "d", "items": items})
    assert r.json()["applied"] == 50
    assert store.get("d", "b7").label_ms == 1_007
    assert len(store.list("d")) == 51


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 422, "body"),
        (b'{"deployment": "d", "request_id": "r"}', 422, "rows[0].label"),
        (b'{"deployment": "../x", "request_id": "r", "label": 1}', 422, "deployment"),
        (b'{"deployment": "d", "items": [{"request_id": "a", "label": {"x": 1}}]}', 422,
         "rows[0].label"),
    ],
)  # fmt: skip
def test_bad_bodies_are_4xx_with_the_field(
    client: httpx.Client, store: SqlFeedbackStore, body: bytes, status: int, field: str
) -> None:
    r = client.post("/feedback", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["field"] == field
    assert store.list("d") == []


def test_body_and_batch_limits(client: httpx.Client) -> None:
    big = {"deployment": "d", "items": [{"request_id": "x" * 100, "label": 1}] * 1000}
    r = client.post("/feedback", json=big)  # ~120 KB > the 64 KiB bound of this app
    assert r.status_code == 413 and r.json()["field"] == "body"
