"""Idempotency keys and retries over real connections: a replayed request is answered from the
server's record, a retry after a lost answer stores nothing twice, 503 + Retry-After is waited
out, and a broken upload leaves nothing behind."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar

import httpx
import orjson
import pytest

from keel._hashing import hash_bytes
from keel._http import HttpClient, RetryPolicy
from keel.artifacts import ContentStore, object_key
from keel.artifacts._http import HttpBackend
from keel.errors import StoreUnavailable
from keel.tracking._http import HttpTrackingStore
from keel.tracking._records import Metric

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote


@pytest.fixture
def store(remote: Remote) -> Iterator[HttpTrackingStore]:
    s = HttpTrackingStore(remote.url, token=remote.token)
    yield s
    s.close()


def _batch(remote: Remote, run_id: str, body: bytes, key: str) -> httpx.Response:
    return httpx.post(
        f"{remote.url}/api/v1/runs/{run_id}/batch",
        content=body,
        headers={
            "Authorization": f"Bearer {remote.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )


def test_a_replayed_batch_is_answered_from_the_record(
    remote: Remote, store: HttpTrackingStore
) -> None:
    run = store.create_run(project="idem")
    cols = {"keys": ["m"] * 3, "values": [1.0, 2.0, 3.0], "steps": [0, 1, 2], "timestamps": [1] * 3}
    body = orjson.dumps({"metrics": cols, "params": {"lr": "0.1"}})
    key = uuid.uuid4().hex
    first = _batch(remote, run.id, body, key)
    again = _batch(remote, run.id, body, key)
    assert first.status_code == again.status_code == 204
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert len(store.metric_history(run.id, "m")) == 3  # not 6
    other = _batch(remote, run.id, orjson.dumps({"metrics": cols}), key)  # same key, new body
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert len(store.metric_history(run.id, "m")) == 3
    fresh = _batch(remote, run.id, body, uuid.uuid4().hex)  # a new key is a new batch
    assert fresh.status_code == 204
    assert len(store.metric_history(run.id, "m")) == 6


def test_error_answers_are_replayed_too(remote: Remote, store: HttpTrackingStore) -> None:
    run = store.create_run(project="idem")
    store.log_batch(run.id, params={"lr": "0.1"})
    body = orjson.dumps({"params": {"lr": "0.2"}})
    key = uuid.uuid4().hex
    first, again = _batch(remote, run.id, body, key), _batch(remote, run.id, body, key)
    assert first.status_code == again.status_code == 422
    assert first.json() == again.json()
    assert again.json()["error"]["type"] == "ParamConflict"


def test_bad_idempotency_key_is_refused(remote: Remote, store: HttpTrackingStore) -> None:
    run = store.create_run(project="idem")
    r = _batch(remote, run.id, b"{}", "short")
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"


def test_replayed_project_creation_is_not_already_exists(remote: Remote) -> None:
    name = f"idem-{uuid.uuid4().hex[:8]}"
    headers = {
        "Authorization": f"Bearer {remote.token}",
        "Content-Type": "application/json",
        "Idempotency-Key": uuid.uuid4().hex,
    }
    body = orjson.dumps({"name": name})
    url = f"{remote.url}/api/v1/projects"
    first, again = (
        httpx.post(url, content=body, headers=headers),
        httpx.post(url, content=body, headers=headers),
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


class DropFirstAnswer:
    """A TCP proxy in front of the server that forwards the first request, waits for the
    server's whole answer, and then closes the client's connection instead of relaying it:
    a response lost on the way back. Later connections are relayed untouched."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.dropped = 0
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            if self.dropped == 0:
                self.dropped = 1
                self._spawn(self._drop, client, upstream)
            else:
                self._spawn(self._pipe, client, upstream)
                self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += sock.recv(65536)
        return data

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        upstream.sendall(self._read_message(client))
        self._read_message(upstream)  # the server has answered: the batch is stored
        client.close()
        upstream.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.listener.close()


def test_a_retry_after_a_lost_answer_stores_nothing_twice(
    remote: Remote, store: HttpTrackingStore
) -> None:
    run = store.create_run(project="idem")
    proxy = DropFirstAnswer(remote.url)
    through = HttpTrackingStore(proxy.url, token=remote.token, retry=RetryPolicy(base_s=0.01))
    try:
        points = [Metric("loss", float(i), i, 1) for i in range(1_000)]
        through.log_batch(run.id, metrics=points)  # answered on the second try
        assert proxy.dropped == 1
    finally:
        through.close()
        proxy.close()
    assert len(store.metric_history(run.id, "loss")) == 1_000


class _Flaky(BaseHTTPRequestHandler):
    """503 + Retry-After: 1 on the first request, 200 after; remembers the keys it saw."""

    seen: ClassVar[list[tuple[float, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append((time.monotonic(), self.headers.get("Idempotency-Key")))
        if len(type(self).seen) == 1:
            body = b'{"error": {"type": "StoreUnavailable", "message": "busy", "field": null}}'
            self.send_response(503)
            self.send_header("Retry-After", "1")
        else:
            body = b'{"ok": true}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_503_is_retried_after_retry_after_with_the_same_key() -> None:
    _Flaky.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = HttpClient(f"http://127.0.0.1:{server.server_address[1]}", token="keel_x")
    try:
        assert client.call("POST", "/x", body={"a": 1}, idempotent_create=True) == {"ok": True}
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    (t0, k0), (t1, k1) = _Flaky.seen
    assert k0 is not None and k0 == k1  # one logical call, one key
    assert t1 - t0 >= 0.95  # Retry-After honoured


def test_an_unreachable_server_is_store_unavailable_after_the_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = HttpClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=3, base_s=0.01))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        client.call("GET", "/api/v1/health")
    assert time.monotonic() - started < 5
    client.close()


def test_a_dropped_upload_leaves_nothing_and_can_be_sent_again(remote: Remote) -> None:
    data = os.urandom(3 << 20)
    digest = hash_bytes(data)
    host, port = remote.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        head = (
            f"PUT /api/v1/artifacts/objects/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {remote.token}\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        raw.sendall(head.encode() + data[: len(data) // 2])
        time.sleep(0.2)
    backend = HttpBackend(remote.url, token=remote.token, verified=False)
    content = ContentStore(HttpBackend(remote.url, token=remote.token))
    try:
        deadline = time.monotonic() + 5
        while backend.purge_incomplete(older_than_s=0) and time.monotonic() < deadline:
            time.sleep(0.05)  # the server aborts the write once it sees the connection gone
        assert not content.exists(digest)
        assert object_key(digest) not in {k.key for k in backend.iter_keys("objects")}
        assert backend.purge_incomplete(older_than_s=0) == 0
        assert content.put_bytes(data).digest == digest  # sent again: stored
        assert content.get_bytes(digest) == data
    finally:
        backend.close()
        content.backend.close()


def test_the_client_opens_a_new_pool_after_fork(remote: Remote) -> None:
    client = HttpClient(remote.url, token=remote.token)
    assert client.call("GET", "/api/v1/projects") is not None
    parent_pool = client.client
    pid = os.fork()
    if pid == 0:  # the child: a request must work on a pool of its own
        code = 1
        try:
            ok = client.client is not parent_pool and client.call("GET", "/api/v1/projects")
            code = 0 if ok is not None else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.client is parent_pool  # the parent's pool is untouched
    client.close()
