"""Models and servers for the deployment tests: model ``dm`` (columns ``a``, ``b``) has
v1 = ``a`` and v2 = ``a + 100`` (scikit-learn), v3 fails to load, v4 always raises, v5 sleeps
200 ms and answers ``a - 1000``; so every answer tells which version computed it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pandas as pd

from live_server import LiveServer

OFFSET = {"1": 0.0, "2": 100.0, "5": -1000.0}


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(0, 10, n), "b": rng.normal(0, 1, n)})


def log_dm() -> None:
    from keel_serving_models import Broken, Raising, Slow  # type: ignore[import-not-found]
    from sklearn.linear_model import LinearRegression

    import keel.models

    x = frame()
    for offset in (0.0, 100.0):
        model = LinearRegression().fit(x, x["a"] + offset)
        keel.models.log(model, "dm", signature_from=x)
    for custom in (Broken(), Raising(), Slow()):
        keel.models.log(custom, "dm", signature_from=x)
    Broken.loadable, Raising.failing = False, True


def body(a: float, b: float = 0.5) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["a", "b"], "data": [[a, b]]}}


def version_of(a: float, prediction: float) -> str:
    """Which version computed ``prediction`` for input ``a``."""
    for version, offset in OFFSET.items():
        if abs(prediction - (a + offset)) < 1e-6:
            return version
    raise AssertionError(f"{prediction} for a={a} matches no version")


@contextmanager
def served(spec: Any) -> Iterator[httpx.Client]:
    """``build_app(spec)`` on uvicorn (a free loopback port); shut down (logs flushed) on exit."""
    from keel.serving._factory import build_app

    app = build_app(spec)
    with (
        LiveServer(app, lifespan="on") as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        yield client


class Hammer:
    """A client thread sending requests back to back, recording every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: list[tuple[int, str, str]] = []  # status, version header, computed by
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                a = float(i % 50)
                r = client.post("/invocations", json=body(a))
                computed = version_of(a, r.json()["predictions"][0]) if r.is_success else ""
                self.results.append(
                    (r.status_code, r.headers.get("keel-model-version", ""), computed)
                )
                i += 1

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait_for(self, version: str, *, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.results and self.results[-1][2] == version:
                return
            time.sleep(0.05)
        raise AssertionError(f"answers never switched to v{version}: {self.results[-3:]}")
