"""``keel server`` as a real subprocess: PostgreSQL, two workers, admin bootstrap, users and
tokens over HTTP, and the one-connection latency check against the multi-worker server."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from server_support import keepalive_latencies_ms, strong_password

from live_server import free_port

KEEL = str(Path(sys.executable).with_name("keel"))


@contextmanager
def keel_server(
    args: list[str], *, home: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = home / f"server-{port}.log"
    full_env = {**os.environ, "KEEL_HOME": str(home / ".keel"), **(env or {})}
    for var in ("KEEL_TRACKING_URI", "KEEL_ARTIFACTS_URI", "KEEL_TOKEN"):
        full_env.pop(var, None)
    (home / ".keel").mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KEEL, "server", "--port", str(port), "--log-level", "warning", *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"keel server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"keel server did not start: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.services
def test_keel_server_on_postgresql_with_two_workers(pg_url: str, tmp_path: Path) -> None:
    password = "Cli-Tests-Root-Passphrase-42"
    args = [
        "--workers",
        "2",
        "--tracking-uri",
        pg_url,
        "--artifact-uri",
        str(tmp_path / "artifacts"),
    ]
    with keel_server(args, home=tmp_path, env={"KEEL_ADMIN_PASSWORD": password}) as (url, log):
        with httpx.Client(base_url=url, timeout=30) as client:
            login = client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": password}
            )
            assert login.status_code == 200, login.text
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            made = client.post(
                "/api/v1/users",
                json={"username": "ivan", "password": strong_password()},
                headers=csrf,
            )
            assert made.status_code == 201, made.text
            token = client.post(
                "/api/v1/tokens",
                json={"name": "laptop", "role": "editor", "username": "ivan"},
                headers=csrf,
            )
            assert token.status_code == 201, token.text
            secret = token.json()["token"]
        # A fresh client, no cookie: the token alone, answered by whichever worker.
        for _ in range(4):
            me = httpx.get(f"{url}/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
            assert me.status_code == 200 and me.json()["username"] == "ivan"
        times = keepalive_latencies_ms(int(url.rsplit(":", 1)[1]), "/api/v1/health", n=100)
        assert statistics.median(times) < 20, sorted(times)  # a Nagle stall is ~40 ms
    output = log.read_text()
    assert password not in output and secret not in output
    assert "admin account created" not in output  # the password was given, not generated


def test_first_start_prints_a_generated_admin_password_once(tmp_path: Path) -> None:
    args = [
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'meta.db'}",
        "--artifact-uri",
        str(tmp_path / "artifacts"),
    ]
    with keel_server(args, home=tmp_path) as (url, log):
        pass
    text = log.read_text()
    assert "Keel admin account created" in text
    generated = text.split("password:", 1)[1].split()[0]
    with keel_server(args, home=tmp_path) as (url, log2):
        r = httpx.post(
            f"{url}/api/v1/auth/login", json={"username": "admin", "password": generated}
        )
        assert r.status_code == 200, r.text
    assert "admin account created" not in log2.read_text()


def test_refuses_a_non_loopback_bind_without_allow_remote(tmp_path: Path) -> None:
    r = subprocess.run(
        [KEEL, "server", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KEEL_HOME": str(tmp_path / ".keel")},
        check=False,
    )
    assert r.returncode == 1
    assert "--allow-remote" in r.stderr


def test_a_weak_admin_password_is_refused_with_the_rule(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            KEEL,
            "server",
            "--port",
            str(free_port()),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'meta.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KEEL_HOME": str(tmp_path / ".keel"), "KEEL_ADMIN_PASSWORD": "short"},
        check=False,
    )
    assert r.returncode == 1
    assert "password" in r.stderr and "12 characters" in r.stderr
    assert "short" not in r.stdout


@pytest.mark.services
def test_two_servers_over_one_database_behave_as_one(pg_url: str, tmp_path: Path) -> None:
    password = "Two-Servers-Root-Passphrase-8"
    args = ["--tracking-uri", pg_url, "--artifact-uri", str(tmp_path / "artifacts")]
    env = {"KEEL_ADMIN_PASSWORD": password}
    with (
        keel_server(args, home=tmp_path, env=env) as (a, _),
        keel_server(args, home=tmp_path, env=env) as (b, _),
    ):
        # A session made on one server is good on the other, CSRF token included.
        with httpx.Client(base_url=a, timeout=30) as on_a:
            login = on_a.post(
                "/api/v1/auth/login", json={"username": "admin", "password": password}
            )
            assert login.status_code == 200
            cookie = on_a.cookies["keel_session"]
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        with httpx.Client(base_url=b, timeout=30, cookies={"keel_session": cookie}) as on_b:
            made = on_b.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=csrf)
            assert made.status_code == 201, made.text
            token = {"Authorization": f"Bearer {made.json()['token']}"}
            assert httpx.get(f"{a}/api/v1/auth/me", headers=token).status_code == 200
            # Revoked on B: refused on A at once (no cache of credentials in a process).
            revoked = on_b.delete(f"/api/v1/tokens/{made.json()['info']['id']}", headers=csrf)
            assert revoked.status_code == 200
            assert httpx.get(f"{a}/api/v1/auth/me", headers=token).status_code == 401
            # Logging out on B ends the session on A too.
            assert on_b.post("/api/v1/auth/logout", headers=csrf).status_code == 200
        assert httpx.get(f"{a}/api/v1/auth/me", cookies={"keel_session": cookie}).status_code == 401
    # Both servers appended to one audit chain, and it verifies.
    from keel.auth import open_auth_store

    auth = open_auth_store(pg_url)
    try:
        assert auth.audit_verify().ok
        actions = {r.action for r in auth.audit_search(user="admin", limit=100)}
        assert {"POST /api/v1/tokens", "DELETE /api/v1/tokens/{token_id}"} <= actions
    finally:
        auth.close()
