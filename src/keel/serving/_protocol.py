"""The HTTP protocol ``keel serve`` runs under uvicorn: ``TCP_NODELAY`` on every accepted
socket and one write per response, so a keep-alive client never waits out Nagle's algorithm
against a delayed ACK (~40 ms per request on Linux loopback, as ``mlflow models serve -w 2``
does). The team server has the same fix in ``keel.server._protocol``; serving sits below it in
the layering and cannot import it (the two could share a lower-level module).
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


class _OneWrite:
    """A transport whose writes within one event-loop turn leave as one ``send``."""

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
            self.flush()  # large bodies gain nothing from gathering

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


class ServingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``TCP_NODELAY`` and one write per response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        wrapped = _OneWrite(cast("asyncio.Transport", transport), asyncio.get_running_loop())
        super().connection_made(wrapped)  # type: ignore[arg-type]
