"""One keep-alive connection, sequential requests: no 40 ms Nagle / delayed-ACK stall.

MLflow's server stalls ~40 ms per request on loopback: with several workers uvicorn's sockets
miss TCP_NODELAY and each response goes out as two writes. Keel's protocol sets TCP_NODELAY on
every accepted socket and gathers each response into one write; each fix alone removes the
stall, and the control shows this check does see it when both are missing.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from server_support import keepalive_latencies_ms

from keel._uvicorn import KeelHttpProtocol
from live_server import free_port


def test_one_connection_latency_of_the_app(live: Any) -> None:
    times = keepalive_latencies_ms(live.port, "/api/v1/health", n=100)
    assert statistics.median(times) < 20, sorted(times)  # a Nagle stall is ~40 ms


class _NagleOn(KeelHttpProtocol):
    """Keel's one-write gathering, with TCP_NODELAY switched back off."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)


def _plain_nagle() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class PlainNagleOn(HttpToolsProtocol):  # uvicorn as MLflow runs it with several workers
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            super().connection_made(transport)

    return PlainNagleOn


STREAM_CHUNK = bytes(range(256)) * 256  # 64 KiB


def _serve(protocol: type) -> Iterator[int]:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def chunks() -> Any:
            for _ in range(160):  # 10 MiB, produced without ever yielding to the event loop
                yield STREAM_CHUNK

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, http=protocol, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def gathering_only() -> Iterator[int]:
    yield from _serve(_NagleOn)


@pytest.fixture
def keel_protocol() -> Iterator[int]:
    yield from _serve(KeelHttpProtocol)


def test_a_streamed_body_arrives_whole_through_the_gathering_writes(keel_protocol: int) -> None:
    import hashlib

    import httpx

    expected = hashlib.sha256(STREAM_CHUNK * 160).hexdigest()
    with httpx.stream("GET", f"http://127.0.0.1:{keel_protocol}/stream", timeout=30) as r:
        digest = hashlib.sha256()
        size = 0
        for part in r.iter_bytes():
            digest.update(part)
            size += len(part)
    assert size == 160 * len(STREAM_CHUNK)
    assert digest.hexdigest() == expected


@pytest.fixture
def plain_uvicorn_with_nagle() -> Iterator[int]:
    yield from _serve(_plain_nagle())


def test_one_write_per_response_avoids_the_stall_even_with_nagle(gathering_only: int) -> None:
    times = keepalive_latencies_ms(gathering_only, "/ping", n=50)
    assert statistics.median(times) < 20, sorted(times)  # a Nagle stall is ~40 ms


def test_the_check_sees_the_stall_when_both_fixes_are_missing(
    plain_uvicorn_with_nagle: int,
) -> None:
    times = keepalive_latencies_ms(plain_uvicorn_with_nagle, "/ping", n=20)
    assert statistics.median(times) > 20, sorted(times)


def test_set_nodelay_on_an_accepted_socket() -> None:
    # What the protocol does in connection_made, on a real accepted socket that arrived
    # without TCP_NODELAY (as the sockets of uvicorn's worker processes do).
    from keel._uvicorn import set_nodelay

    class _Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> Any:
            return self.sock if name == "socket" else None

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                set_nodelay(_Transport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
