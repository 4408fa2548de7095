"""A plain ``keel serve MODEL`` logs its predictions (and failures) under the model's name, or
``--log-as``; ``--no-log`` turns it off; several workers write their own files and the reader
sees every request once the server has shut down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_support import wait_ready

from keel.serving import read_predictions
from keel.serving._factory import ServeSpec, build_app
from live_server import LiveServer, free_port

ROW = {"tenure": 3, "charges": 95.0, "plan": "basic"}


@pytest.fixture
def home(served_home: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The module's Keel home (model ``churn``, alias champion) as the configured one."""
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_HOME", str(served_home[0]))
    reset_settings()
    yield served_home[0]
    reset_settings()


def _read(name: str, start: int) -> list[dict[str, Any]]:
    end = int(time.time() * 1000) + 1000
    return list(read_predictions(name, start=start, end=end).to_pylist())


def _post(client: httpx.Client, rid: str, body: Any) -> httpx.Response:
    return client.post("/invocations", json=body, headers={"keel-request-id": rid})


def test_a_plain_model_logs_under_its_name_or_log_as(home: Path) -> None:
    start = int(time.time() * 1000) - 1000
    app = build_app(ServeSpec(model="churn@champion", log_sample_rate=1.0, log_exclude=("plan",)))
    with LiveServer(app, lifespan="on") as live, httpx.Client(base_url=live.url) as client:
        for i in range(20):
            assert _post(client, f"p-{i}", {"dataframe_records": [ROW]}).status_code == 200
        bad = _post(client, "p-bad", {"dataframe_records": [{"tenure": "x"}]})
        assert bad.status_code == 422
        r = client.post("/feedback", json={"deployment": "churn", "request_id": "p-3", "label": 1})
        assert r.status_code == 200  # labels join a plain model's log too
    rows = {r["request_id"]: r for r in _read("churn", start) if r["request_id"].startswith("p-")}
    assert set(rows) == {f"p-{i}" for i in range(20)} | {"p-bad"}
    assert rows["p-bad"]["status"] == 422 and rows["p-bad"]["input.tenure"] is None
    ok = rows["p-3"]
    assert ok["status"] == 200 and ok["deployment"] == "churn" and ok["model"] == "churn"
    assert ok["model_version"] == "1" and ok["role"] == "champion" and ok["label"] == 1
    assert ok["input.tenure"] == 3 and ok["output.prediction"] in (0, 1)
    assert "input.plan" not in rows["p-3"]  # excluded as for deployments

    start = int(time.time() * 1000) - 1000
    app = build_app(ServeSpec(model="churn/1", log_as="churn-adhoc"))
    with LiveServer(app, lifespan="on") as live, httpx.Client(base_url=live.url) as client:
        assert _post(client, "q-1", {"dataframe_records": [ROW]}).status_code == 200
    assert [r["request_id"] for r in _read("churn-adhoc", start)] == ["q-1"]

    app = build_app(ServeSpec(model="churn/1", log_as="churn-off", prediction_log=False))
    with LiveServer(app, lifespan="on") as live, httpx.Client(base_url=live.url) as client:
        assert _post(client, "off-1", {"dataframe_records": [ROW]}).status_code == 200
        assert client.post("/feedback", json={}).status_code == 404  # nothing logged to label
    assert _read("churn-off", start) == []


def test_log_as_is_checked() -> None:
    from keel.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        ServeSpec(model="churn/1", log_as="no/slash")
    assert err.value.field == "log_as"
    with pytest.raises(InvalidInput) as err:
        ServeSpec(deployments=("d",), log_as="x")  # only a model argument has one
    assert err.value.field == "log_as"


def test_two_workers_log_every_request_after_shutdown(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    port = free_port()
    start = int(time.time() * 1000) - 1000
    args = ["serve", "churn@champion", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    n = 120
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url, timeout_s=60)
        for i in range(n):  # a new connection each: the two workers share the accepts
            r = httpx.post(
                f"{url}/invocations",
                json={"dataframe_records": [ROW]},
                headers={"keel-request-id": f"w-{i}"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGINT)  # graceful: each worker flushes its log at shutdown
        out, err = proc.communicate(timeout=60)
    assert "Logging predictions of churn@champion as deployment churn" in out, (out, err)
    rows = [r for r in _read("churn", start) if r["request_id"].startswith("w-")]
    assert sorted(r["request_id"] for r in rows) == sorted(f"w-{i}" for i in range(n))
    files = list((home / "artifacts" / "predictions" / "deployment=churn").rglob("*.parquet"))
    assert len({f.name for f in files}) == len(files)  # no two flushes chose one name
