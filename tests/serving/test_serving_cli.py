"""``keel serve`` as a real subprocess: it loads the registered model, binds loopback and
answers; it refuses a non-loopback address without --allow-remote and names unknown models."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from serving_support import keepalive_post_ms, wait_ready

from live_server import free_port


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    return env


def _keel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        check=False,
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=60,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_keel_serve_answers_a_request(served_home: Any, workers: int) -> None:
    """Two workers: the set-up where uvicorn's accepted sockets miss TCP_NODELAY."""
    home = served_home[0]
    port = free_port()
    args = ["serve", "churn@champion", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel", *args],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url, timeout_s=30)
        row = {"tenure": 3, "charges": 95.0, "plan": "basic"}
        r = httpx.post(f"{url}/invocations", json={"dataframe_records": [row]}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] in ([0], [1])
        assert r.headers["keel-model-version"] == "churn/1"
        assert "server" not in r.headers
        body = orjson.dumps({"dataframe_records": [row]})
        times = keepalive_post_ms(port, "/invocations", body, n=50)
        assert statistics.median(times) < 20, sorted(times)  # a Nagle stall is ~40 ms
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert "Serving models:/churn/1 on http://127.0.0.1:" in out, (out, err)


def test_keel_serve_help_and_refusals(served_home: Any) -> None:
    home = served_home[0]
    r = _keel(home, "serve", "--help")
    assert r.returncode == 0 and "--max-batch-size" in r.stdout and "no user auth" in r.stdout
    r = _keel(home, "serve", "churn@champion", "--host", "0.0.0.0")
    assert r.returncode == 1 and "--allow-remote" in r.stderr + r.stdout
    r = _keel(home, "serve", "nope@champion")
    assert r.returncode == 1 and "nope" in r.stderr + r.stdout
