"""The SDK pointed at a server by KEEL_TRACKING_URI + KEEL_TOKEN: runs, metrics, artifacts
through the server, and what the HTTP layer refuses (unsafe keys, other projects, raw keys)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import keel
from keel._hashing import hash_bytes
from keel.artifacts import ContentStore, object_key
from keel.artifacts._http import HttpBackend
from keel.errors import InvalidInput, NotFound, PermissionDenied, UnsafePath
from keel.tracking import Client
from keel.tracking._http import HttpTrackingStore
from keel.tracking._store import open_store

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote


@pytest.fixture
def as_client(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    from keel.config import reset_settings
    from keel.tracking import _fluent

    monkeypatch.setenv("KEEL_TRACKING_URI", remote.url)
    monkeypatch.setenv("KEEL_TOKEN", remote.token)
    reset_settings()
    yield remote
    # The fluent API keeps one client per URI for the process; close this test's.
    for key in [k for k in _fluent._clients if k[0] == remote.url]:
        _fluent._clients.pop(key).close()


def test_open_store_chooses_the_http_store(as_client: Remote) -> None:
    store = open_store()
    assert isinstance(store, HttpTrackingStore) and store.url == as_client.url
    store.close()


def test_fluent_api_logs_through_the_server(as_client: Remote, tmp_path: Path) -> None:
    project = f"sdk-{uuid.uuid4().hex[:8]}"
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    with keel.start_run(project=project, name="remote") as run:
        keel.log_params({"C": 0.5})
        for step in range(2_500):
            keel.log_metric("loss", 1.0 / (step + 1), step=step)
        keel.log_artifact(model, "models")
    # Read back through a separate store, and on the server's own database.
    store = HttpTrackingStore(as_client.url, token=as_client.token)
    got = store.get_run(run.id)
    assert got.project == project and got.params == {"C": "0.5"}
    assert got.status.value == "FINISHED"
    assert len(store.metric_history(run.id, "loss")) == 2_500
    [file] = store.list_artifacts(run.id)
    assert file.path == "models/model.bin"
    server_content = as_client.server.app.state.keel.content
    assert server_content.get_bytes(file.digest) == model.read_bytes()  # stored by the server
    assert not (Path(keel.config.get_settings().artifacts_uri) / "objects").exists()
    # A run's file is served as an attachment that a browser must not sniff.
    r = httpx.get(
        f"{as_client.url}/api/v1/runs/{run.id}/artifacts/models/model.bin",
        headers={"Authorization": f"Bearer {as_client.token}"},
    )
    assert r.status_code == 200 and r.content == model.read_bytes()
    assert r.headers["content-disposition"].startswith('attachment; filename="model.bin"')
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-keel-digest"] == file.digest
    dest = tmp_path / "down"
    client = Client()
    client.download_artifacts(run.id, "models", dest)
    client.close()
    assert (dest / "models" / "model.bin").read_bytes() == model.read_bytes()
    store.close()


UNSAFE = ["..%2F..%2Fetc%2Fpasswd", "%252e%252e/x", "a%5Cb", "a%00b", "%2Fetc%2Fpasswd"]


@pytest.mark.parametrize("raw", UNSAFE)
def test_unsafe_keys_are_refused_by_the_http_layer(remote: Remote, raw: str) -> None:
    auth = {"Authorization": f"Bearer {remote.token}"}
    store = HttpTrackingStore(remote.url, token=remote.token)
    run = store.create_run(project="sec")
    store.close()
    for method, path in [
        ("GET", f"/api/v1/runs/{run.id}/artifacts/{raw}"),
        ("GET", f"/api/v1/artifacts/keys/{raw}"),
        ("DELETE", f"/api/v1/artifacts/keys/{raw}"),
        ("PUT", f"/api/v1/artifacts/keys/{raw}"),
    ]:
        r = httpx.request(
            method,
            remote.url + path,
            headers={**auth, "Content-Type": "application/octet-stream"},
            content=b"x" if method == "PUT" else None,
        )
        assert r.status_code == 422, (method, path, r.text)
        assert r.json()["error"]["type"] == "UnsafePath"
    r = httpx.get(f"{remote.url}/api/v1/artifacts/objects/%2e%2e", headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "digest"
    assert not any(remote.artifacts_root.parent.rglob("passwd"))


def test_unsafe_keys_are_refused_by_the_client_too(remote: Remote) -> None:
    backend = HttpBackend(remote.url, token=remote.token)
    for name in ("../x", "/abs", "a\\b", "a\x00b", "%2e%2e/x"):
        with pytest.raises(UnsafePath):
            backend.open_reader(name)
    backend.close()


def test_roles_bound_what_a_token_reaches(remote: Remote) -> None:
    from keel.auth import Role, open_auth_store

    mine, theirs = f"mine-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    user = f"alice{uuid.uuid4().hex[:6]}"
    admin_store = HttpTrackingStore(remote.url, token=remote.token)
    admin_store.create_project(mine)
    other = admin_store.create_run(project=theirs)
    auth = open_auth_store(remote.db_url)
    try:
        auth.create_user(user, "Correct-Horse-Battery-Staple-9")
        auth.grant(mine, user, Role.EDITOR)
        token, _ = auth.create_token(user, name="ci", role=Role.EDITOR)
    finally:
        auth.close()
    alice = HttpTrackingStore(remote.url, token=token)
    run = alice.create_run(project=mine)
    alice.log_batch(run.id, params={"a": "1"})
    assert {r.id for r in alice.search_runs()} == {run.id}  # nothing of other projects
    with pytest.raises(PermissionDenied):
        alice.get_run(other.id)
    with pytest.raises(PermissionDenied):
        alice.log_batch(other.id, params={"x": "1"})
    with pytest.raises(PermissionDenied):
        alice.create_run(project=theirs)
    with pytest.raises(PermissionDenied):
        alice.create_run(project=mine, run_id=other.id)  # no reaching a run by its id
    with pytest.raises(PermissionDenied):
        alice.create_project("new")
    with pytest.raises(PermissionDenied):
        alice.search_runs(projects=[theirs])
    assert [p.name for p in alice.list_projects()] == [mine]
    raw = HttpBackend(remote.url, token=token, verified=False)
    with pytest.raises(PermissionDenied):
        list(raw.iter_keys())
    objects = HttpBackend(remote.url, token=token)  # verified objects: any signed-in user
    content = ContentStore(objects)
    ref = content.put_bytes(b"alice's bytes")
    assert content.get_bytes(ref.digest) == b"alice's bytes"
    with pytest.raises(InvalidInput) as err, objects.open_writer(object_key(hash_bytes(b"x"))) as w:
        w.write(b"not x")  # the server hashes what it receives and refuses the mismatch
    assert err.value.field == "digest"
    assert not content.exists(hash_bytes(b"x"))
    raw.close()
    objects.close()
    alice.close()
    admin_store.close()


def test_bad_token_is_unauthenticated(remote: Remote) -> None:
    from keel.errors import Unauthenticated

    store = HttpTrackingStore(remote.url, token="keel_not-a-real-token")
    with pytest.raises(Unauthenticated):
        store.list_projects()
    store.close()
    anonymous = HttpTrackingStore(remote.url, token="")
    with pytest.raises(Unauthenticated):
        anonymous.list_projects()
    anonymous.close()


def test_missing_run_is_not_found_through_every_route(remote: Remote) -> None:
    store = HttpTrackingStore(remote.url, token=remote.token)
    with pytest.raises(NotFound):
        store.list_artifacts("f" * 32)
    store.close()


def test_the_cli_talks_to_the_server(as_client: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from keel.cli import app

    made: list[Client] = []  # a CLI process exits; here the clients it opens are closed below

    def tracked() -> Client:
        made.append(Client())
        return made[-1]

    monkeypatch.setattr("keel.cli._runs._client", tracked)

    project = f"cli-{uuid.uuid4().hex[:8]}"
    store = HttpTrackingStore(as_client.url, token=as_client.token)
    run = store.create_run(project=project, name="from-cli-test")
    store.log_batch(run.id, params={"C": "0.5"})
    store.close()
    result = CliRunner().invoke(
        app, ["runs", "search", "params.C = '0.5'", "-p", project, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.output)["runs"]] == [run.id]
    shown = CliRunner().invoke(app, ["runs", "show", run.id[:10], "--json"])
    for client in made:
        client.close()
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["name"] == "from-cli-test"
    assert made  # the commands went through the HTTP store
    assert all(isinstance(c.store, HttpTrackingStore) for c in made)
