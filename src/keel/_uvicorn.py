"""The HTTP protocol ``keel server`` and ``keel serve`` run under uvicorn: httptools, plus two
fixes for latency (what ``mlflow server`` and ``mlflow models serve -w 2`` lack).

1. ``TCP_NODELAY`` on every accepted socket. asyncio sets it itself, but only on sockets whose
   ``proto`` says TCP; with several workers uvicorn hands each worker the listening socket via
   ``fromfd``, whose accepted sockets report ``proto == 0`` and keep Nagle on.
2. One write per response. uvicorn writes the status line and headers, then the body, as two
   ``transport.write`` calls; with Nagle on, the second waits for the peer's delayed ACK
   (~40 ms on Linux loopback). Writes issued in the same turn of the event loop are gathered
   and sent as one.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_FLUSH_AT = 64 * 1024


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _GatheringTransport:
    """Delegates to a transport, joining the writes of one event-loop turn into one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= _FLUSH_AT:
            # A body streamed in a tight loop must not pile up here; big writes gain nothing
            # from gathering anyway.
            self.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class KeelHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``TCP_NODELAY`` and one write per response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        gathering = _GatheringTransport(
            cast("asyncio.Transport", transport), asyncio.get_running_loop()
        )
        super().connection_made(gathering)  # type: ignore[arg-type]
