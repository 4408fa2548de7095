"""Reading content objects is scoped by stored references: a viewer of project A cannot read
(or learn of) an object referenced only in project B, and can read one both share. Hidden
objects answer 404 exactly like missing ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_support import strong_password

OBJ = "/api/v1/artifacts/objects"
RAW = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def viewers(state: Any) -> dict[str, dict[str, str]]:
    """Bearer headers of a viewer of project A, a viewer of project B and a user without
    grants."""
    from keel.auth import Role

    out = {}
    for name, project in [("va", "proj-a"), ("vb", "proj-b"), ("none", None)]:
        state.auth.create_user(name, strong_password())
        if project is not None:
            state.auth.grant(project, name, Role.VIEWER)
        token, _ = state.auth.create_token(name, name="t", role=Role.ADMIN)
        out[name] = {"Authorization": f"Bearer {token}"}
    return out


def _in_run(state: Any, project: str, data: bytes, path: str = "f.bin") -> str:
    from keel.tracking._records import ArtifactFile

    ref = state.content.put_bytes(data)
    run = state.tracking.create_run(project=project)
    state.tracking.record_artifacts(run.id, [ArtifactFile(path, ref.digest, ref.size)])
    return str(ref.digest)


@pytest.fixture
def registry(state: Any) -> Iterator[Any]:
    from keel.models import open_registry

    reg = open_registry(state.tracking_uri)
    try:
        yield reg
    finally:
        reg.close()


def _model_version(state: Any, registry: Any, data: bytes, run_id: str | None) -> str:
    from keel.models import ModelFile, NewModelVersion

    ref = state.content.put_bytes(data)
    pending = registry.create_version(NewModelVersion(name="m", flavor="skops", run_id=run_id))
    registry.complete_version("m", pending.version, files=[ModelFile("w", ref.digest, ref.size)])
    return str(ref.digest)


def _status(client: httpx.Client, method: str, digest: str, headers: dict[str, str]) -> int:
    return client.request(method, f"{OBJ}/{digest}", headers=headers).status_code


def test_a_viewer_reads_objects_of_its_projects_only(
    client: httpx.Client, state: Any, viewers: dict[str, dict[str, str]], admin_token: str
) -> None:
    only_b = _in_run(state, "proj-b", b"secret of project b")
    shared = _in_run(state, "proj-b", b"shared bytes")
    _in_run(state, "proj-a", b"shared bytes")
    for method in ("GET", "HEAD"):
        assert _status(client, method, only_b, viewers["va"]) == 404
        assert _status(client, method, only_b, viewers["vb"]) == 200
        assert _status(client, method, shared, viewers["va"]) == 200
        assert _status(client, method, shared, viewers["none"]) == 404
        admin = {"Authorization": f"Bearer {admin_token}"}
        assert _status(client, method, only_b, admin) == 200
    got = client.get(f"{OBJ}/{shared}", headers=viewers["va"])
    assert got.content == b"shared bytes"


def test_a_hidden_object_looks_exactly_like_a_missing_one(
    client: httpx.Client, state: Any, viewers: dict[str, dict[str, str]]
) -> None:
    from keel._hashing import hash_bytes

    hidden = _in_run(state, "proj-b", b"hidden")
    missing = hash_bytes(b"never stored")
    a = client.get(f"{OBJ}/{hidden}", headers=viewers["va"])
    b = client.get(f"{OBJ}/{missing}", headers=viewers["va"])
    assert a.status_code == b.status_code == 404
    assert a.json()["error"]["message"].replace(hidden, "D") == b.json()["error"][
        "message"
    ].replace(missing, "D")


def test_the_uploader_reads_back_only_bytes_it_really_sent(
    client: httpx.Client, state: Any, viewers: dict[str, dict[str, str]]
) -> None:
    from keel._hashing import hash_bytes

    mine = b"uploaded by the viewer of a"
    digest = hash_bytes(mine)
    put = client.put(f"{OBJ}/{digest}", content=mine, headers={**viewers["va"], **RAW})
    assert put.status_code == 201
    assert client.get(f"{OBJ}/{digest}", headers=viewers["va"]).content == mine
    assert _status(client, "GET", digest, viewers["vb"]) == 404
    # Announcing a stored digest with other bytes does not earn the right to read it.
    secret = _in_run(state, "proj-a", b"secret of project a")
    junk = client.put(f"{OBJ}/{secret}", content=b"guess", headers={**viewers["vb"], **RAW})
    assert junk.status_code == 422 and junk.json()["error"]["field"] == "digest"
    assert _status(client, "GET", secret, viewers["vb"]) == 404
    same = client.put(
        f"{OBJ}/{secret}", content=b"secret of project a", headers={**viewers["vb"], **RAW}
    )
    assert same.status_code == 201  # whoever holds the bytes may read them
    assert _status(client, "GET", secret, viewers["vb"]) == 200


def test_model_and_dataset_objects(
    client: httpx.Client, state: Any, viewers: dict[str, dict[str, str]], registry: Any
) -> None:
    from keel.data._records import NewVersion

    run_b = state.tracking.create_run(project="proj-b")
    in_b = _model_version(state, registry, b"weights of a model of b", run_b.id)
    assert _status(client, "GET", in_b, viewers["va"]) == 404
    assert _status(client, "GET", in_b, viewers["vb"]) == 200
    # A version logged outside any run, and a dataset, belong to no project: any role reads.
    loose = _model_version(state, registry, b"weights of no project", None)
    ref = state.content.put_bytes(b"a dataset file")
    state.data.create_version(
        NewVersion(name="ds", digest=ref.digest, kind="table", size=ref.size, objects=(ref.digest,))
    )
    for digest in (loose, ref.digest):
        assert _status(client, "GET", digest, viewers["va"]) == 200
        assert _status(client, "GET", digest, viewers["none"]) == 404


def test_attaching_a_digest_to_a_run_does_not_earn_the_right_to_read_it(
    client: httpx.Client, state: Any
) -> None:
    """An editor of project A who learned the digest of an object of project B cannot attach it
    to a run of A (404, as for a missing object) and so still cannot read it; an object the
    editor uploaded attaches."""
    from keel.auth import Role

    secret = _in_run(state, "proj-b", b"secret of project b, attached")
    state.auth.create_user("ea", strong_password())
    state.auth.grant("proj-a", "ea", Role.EDITOR)
    token, _ = state.auth.create_token("ea", name="t", role=Role.ADMIN)
    editor = {"Authorization": f"Bearer {token}"}
    run = state.tracking.create_run(project="proj-a")
    files = f"/api/v1/runs/{run.id}/artifact-files"
    stolen = {"files": [{"path": "x.bin", "digest": secret, "size": 29}]}
    assert client.post(files, json=stolen, headers=editor).status_code == 404
    assert _status(client, "GET", secret, editor) == 404
    assert client.get(files, headers=editor).json()["files"] == []

    from keel._hashing import hash_bytes

    data = b"bytes the editor uploaded"
    own = hash_bytes(data)
    put = client.put(f"{OBJ}/{own}", content=data, headers={**editor, **RAW})
    assert put.status_code in (200, 201, 204), put.text
    mine = {"files": [{"path": "mine.bin", "digest": own, "size": len(data)}]}
    assert client.post(files, json=mine, headers=editor).status_code == 204
