"""A real uvicorn server in a background thread of the test process, on a free port of
127.0.0.1, for tests that talk to an app over TCP (the team server, the inference app). A module
of its own (not conftest) so every test folder imports the same one."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving ``app`` with Keel's protocol (or ``protocol``), started on ``with``."""

    def __init__(self, app: Any, *, protocol: Any = None, lifespan: str = "off") -> None:
        import uvicorn

        from keel._uvicorn import KeelHttpProtocol

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            http=protocol or KeelHttpProtocol,
            ws="none",
            lifespan=lifespan,
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
