"""Serving test helpers: real models logged with ``keel.models`` in a private Keel home, and
uvicorn running an app with the serving protocol on a free loopback port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from live_server import LiveServer

HELPERS = Path(__file__).parent / "helpers"


def churn_frame(n: int = 200, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype("int64"),
            "charges": rng.normal(70, 20, n),
            "plan": rng.choice(["basic", "pro", "max"], n).astype(object),
        }
    )


@contextmanager
def private_home(home: Path) -> Iterator[None]:
    """Point Keel at ``home`` for the block (module-scoped fixtures cannot use monkeypatch)."""
    from keel.config import reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        for var in ("KEEL_TRACKING_URI", "KEEL_ARTIFACTS_URI", "KEEL_TOKEN"):
            mp.delenv(var, raising=False)
        mp.syspath_prepend(str(HELPERS))
        reset_settings()
        try:
            yield
        finally:
            reset_settings()


def log_models() -> dict[str, Any]:
    """Log the test models; returns their registered versions by short name."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import keel.models

    x = churn_frame()
    y = ((x["tenure"] < 20) & (x["charges"] > 60)).astype("int64")
    pre = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    churn = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(x, y)
    out = {"churn": keel.models.log(churn, "churn", signature_from=x)}
    keel.models.set_alias("churn", "champion", out["churn"].version)

    ab = pd.DataFrame({"a": np.arange(20, dtype="float64"), "b": np.arange(20) % 3 * 1.0})
    diff = LinearRegression().fit(ab, 2 * ab["a"] - 2 * ab["b"])
    out["diff"] = keel.models.log(diff, "diff", signature_from=ab)

    arr = np.random.default_rng(1).normal(size=(30, 3))
    tensor = LinearRegression().fit(arr, arr @ np.array([1.0, 2.0, 3.0]))
    out["tensor"] = keel.models.log(tensor, "tensor", signature_from=arr)

    from keel_serving_models import Sleepy  # type: ignore[import-not-found]

    sleepy = pd.DataFrame({"a": [1.0, 2.0], "sleep": [0.0, 0.0]})
    out["sleepy"] = keel.models.log(Sleepy(), "sleepy", signature_from=sleepy)
    return out


@contextmanager
def serving(hosts: dict[str, Any], **kwargs: Any) -> Iterator[Any]:
    """A live server over ``hosts`` and an httpx client bound to it."""
    import httpx

    from keel.serving import create_serving_app

    app = create_serving_app(hosts, **kwargs)
    with (
        LiveServer(app, lifespan="on") as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        client.live = live  # type: ignore[attr-defined]
        yield client


def keepalive_post_ms(port: int, path: str, body: bytes, *, n: int) -> list[float]:
    """Milliseconds of ``n`` sequential POSTs on one keep-alive connection (the first, which
    pays for connecting, not counted). A 40 ms Nagle/delayed-ACK stall shows in the median."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for i in range(n + 1):
            t0 = time.perf_counter()
            conn.request("POST", path, body, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            assert response.getheader("connection", "").lower() != "close"
            if i:
                out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out


def wait_ready(proc: subprocess.Popen[str], url: str, *, timeout_s: float) -> None:
    """Wait for a ``keel serve`` process at ``url`` to answer ``/v2/health/ready``; fail with
    its output if it exits, or if ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "keel serve did not become ready"
        time.sleep(0.1)
