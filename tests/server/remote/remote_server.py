"""Starting and stopping a real ``uvicorn keel.server:create_app`` process for the remote tests
(a module of its own so tests can import it: ``from conftest import`` would pick whichever
folder's conftest was imported first)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from live_server import free_port


def start_server(
    *, db_url: str, artifacts: Path, log_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``uvicorn`` serving ``create_app`` on a free port; returns the process and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "KEEL_SERVER_TRACKING_URI": db_url,
        "KEEL_SERVER_ARTIFACTS_URI": str(artifacts),
        # The tests send thousands of requests a minute from one token.
        "KEEL_SERVER_RATE_PER_MINUTE": "0",
        "KEEL_HOME": str(artifacts.parent / ".keel"),
        **(extra_env or {}),
    }
    for var in ("KEEL_TRACKING_URI", "KEEL_ARTIFACTS_URI", "KEEL_TOKEN"):
        env.pop(var, None)
    (artifacts.parent / ".keel").mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        proc = _spawn(port, env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start in 60 s: {log_path.read_text()[-3000:]}")


def _spawn(port: int, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "keel.server:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
