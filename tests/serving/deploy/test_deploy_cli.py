"""``keel serve --deployment`` as a real subprocess (one and two workers): it serves the stored
deployment, takes feedback, and on a graceful stop (SIGINT) flushes the prediction log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from deploy_support import body, version_of
from serving_support import wait_ready

from keel.serving import Deployment, open_deployments, read_predictions
from live_server import free_port


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_keel_serve_deployment_logs_and_takes_feedback(dm_home: Path, workers: int) -> None:
    name = f"cli-{workers}"
    deployments = open_deployments()
    deployments.create(Deployment(name=name, model="dm", champion=2))
    deployments.store.close()
    port = free_port()
    args = ["serve", "--deployment", name, "--port", str(port), "--workers", str(workers)]
    start = int(time.time() * 1000) - 1000
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel", *args],
        env=_env(dm_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, timeout_s=40)
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(10):
                r = client.post(
                    "/invocations", json=body(float(i)), headers={"keel-request-id": f"c{i}"}
                )
                assert r.status_code == 200 and r.headers["keel-model-version"] == "dm/2"
                assert version_of(float(i), r.json()["predictions"][0]) == "2"
            r = client.post("/feedback", json={"deployment": name, "request_id": "c3", "label": 1})
            assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGINT)  # graceful: the lifespan closes the log writers
        out, err = proc.communicate(timeout=30)
    assert f"Serving deployment {name} on http://127.0.0.1:{port}" in out, (out, err)
    rows = read_predictions(name, start=start, end=int(time.time() * 1000) + 1000).to_pylist()
    assert sorted(r["request_id"] for r in rows) == sorted(f"c{i}" for i in range(10))
    assert [r["label"] for r in rows if r["request_id"] == "c3"] == [1]


def test_keel_serve_needs_something_to_serve(dm_home: Path) -> None:
    def keel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keel", *args],
            check=False,
            capture_output=True,
            text=True,
            env=_env(dm_home),
            timeout=60,
        )

    r = keel("serve")
    assert r.returncode == 1 and "--deployment" in r.stdout + r.stderr
    r = keel("serve", "--deployment", "no-such-deployment")
    assert r.returncode == 1 and "no-such-deployment" in r.stdout + r.stderr
    r = keel("serve", "--help")
    assert "--log-sample-rate" in r.stdout and "--poll-s" in r.stdout
