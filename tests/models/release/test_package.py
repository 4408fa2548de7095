"""``keel models package``: a bundle that installs from its own requirements into a fresh
virtualenv and serves the registered model's predictions with no registry; a hardened
Dockerfile; refusals that write nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import keel.models
from keel.cli import app
from keel.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from keel.models import _package
from live_server import free_port

runner = CliRunner()
SECRET_WORDS = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|aws_access)")


def _frame(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(n, 4)), columns=["tenure", "charges", "calls", "age"])
    y = (x["tenure"] - 0.5 * x["charges"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return x, y.to_numpy()


def _champion() -> keel.models.ModelVersion:
    x, y = _frame()
    version = keel.models.log(LogisticRegression().fit(x, y), "churn", signature_from=x)
    return keel.models.set_alias("churn", "champion", version.version)


def _left(folder: Path) -> list[str]:
    """What is in ``folder`` besides the test's Keel home (temporary bundles included)."""
    return sorted(p.name for p in folder.iterdir() if p.name != ".keel")


def assert_hardened(dockerfile: str, *, python_minor: str) -> None:
    lines = [ln.strip() for ln in dockerfile.splitlines() if ln.strip() and not ln.startswith("#")]
    base = next(ln.split()[1] for ln in lines if ln.upper().startswith("FROM "))
    name, _, tag = base.partition(":")
    assert name == "python"
    assert tag and tag != "latest" and tag.startswith(f"{python_minor}-slim"), base
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    health = [ln for ln in lines if ln.upper().startswith("HEALTHCHECK")]
    assert len(health) == 1 and "/v2/health/ready" in dockerfile
    assert not re.search(r"(?im)^\s*ADD\s+https?://", dockerfile)
    assert not any(ln.upper().startswith("ADD ") for ln in lines)  # COPY only
    assert "pip install --no-cache-dir --no-deps -r requirements.txt" in dockerfile
    assert not SECRET_WORDS.search(dockerfile)
    assert "ENTRYPOINT" in dockerfile
    if shutil.which("hadolint"):
        proc = subprocess.run(
            ["hadolint", "-"], input=dockerfile, text=True, capture_output=True, check=False
        )
        assert proc.returncode == 0, proc.stdout


def test_the_default_dockerfile_is_hardened() -> None:
    assert_hardened(_package.dockerfile("python:3.11-slim-bookworm"), python_minor="3.11")


@pytest.mark.slow
def test_bundle_installs_in_a_fresh_venv_and_serves_the_registered_predictions(
    tmp_path: Path,
) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.skip("uv is needed to build the fresh virtualenv quickly")
    version = _champion()
    out = tmp_path / "bundle"
    result = runner.invoke(
        app, ["models", "package", "churn@champion", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["uri"] == "models:/churn/1" and Path(info["path"]) == out

    # The manifest records every file with the registry's digests; requirements are exact.
    manifest = json.loads((out / "bundle.json").read_text())
    assert {f["path"]: f["digest"] for f in manifest["files"]} == {
        f.path: f.digest for f in version.files
    }
    reqs = [ln for ln in (out / "requirements.txt").read_text().splitlines() if ln[:1] != "#"]
    wheel = [ln for ln in reqs if ln.endswith(".whl")]
    assert len(wheel) == 1 and (out / wheel[0]).is_file()
    assert all("==" in ln for ln in reqs if ln not in wheel)
    for dist, pinned in version.environment.packages.items():
        assert f"{dist}=={pinned}" in reqs
    assert any(ln.lower().startswith(("fastapi==", "uvicorn==")) for ln in reqs)
    python_minor = ".".join(version.environment.python_version.split(".")[:2])
    assert_hardened((out / "Dockerfile").read_text(), python_minor=python_minor)

    # A fresh virtualenv from the bundle alone (uv's cache, else PyPI), then its entrypoint.
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--no-deps", "-p", str(python), "-r", "requirements.txt"]
    proc = subprocess.run(
        install, check=False, cwd=out, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [str(python), "entrypoint.py", "--port", str(port), "--home", str(tmp_path / "home")]
    with log.open("wb") as sink:
        server = subprocess.Popen(cmd, cwd=out, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        x, _ = _frame(25)
        body = {"dataframe_split": {"columns": list(x.columns), "data": x.to_numpy().tolist()}}
        req = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            served = json.loads(r.read())["predictions"]
        expected = keel.models.load("churn@champion").predict(x)
        assert served == [int(v) for v in np.asarray(expected)]
    finally:
        server.terminate()
        server.wait(30)


def test_a_tampered_archive_is_refused_before_anything_is_registered(tmp_path: Path) -> None:
    _champion()
    out = tmp_path / "bundle"
    keel.models.package("churn/1", out)
    archive = out / "model.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, str(out / "entrypoint.py"), "--home", str(home), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "sha256" in proc.stderr
    assert not home.exists()


def test_refusals_write_nothing(tmp_path: Path) -> None:
    x, y = _frame()
    keel.models.log(
        LogisticRegression().fit(x, y), "pickled", flavor="pickle", trusted=True, signature_from=x
    )  # runs code when loaded, and no admin has marked it trusted
    _champion()
    with pytest.raises(PermissionDenied, match="keel models trust pickled 1"):
        keel.models.package("pickled/1", tmp_path / "a")
    with pytest.raises(NotFound):
        keel.models.package("churn@nosuchalias", tmp_path / "a")
    with pytest.raises(InvalidInput) as err:
        keel.models.package("churn/1", tmp_path / "b", base_image="python:latest")
    assert err.value.field == "base_image"
    taken = tmp_path / "c"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists):
        keel.models.package("churn/1", taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert _left(tmp_path) == ["c"]

    refused = runner.invoke(app, ["models", "package", "pickled/1", "--out", str(tmp_path / "d")])
    assert refused.exit_code == 1 and isinstance(refused.exception, PermissionDenied)
    assert not (tmp_path / "d").exists()


def test_a_crash_mid_write_leaves_no_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _champion()

    def broken_wheel(folder: Path) -> Path:
        raise KeyboardInterrupt  # the process is interrupted after the archive was written

    monkeypatch.setattr(_package, "_keel_wheel", broken_wheel)
    with pytest.raises(KeyboardInterrupt):
        keel.models.package("churn/1", tmp_path / "bundle")
    assert _left(tmp_path) == []
