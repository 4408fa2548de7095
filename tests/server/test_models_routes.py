"""Model and deployment routes on the server's own stores: promotion with gates run by the
server (decisions under the caller's name), what a version's files may be, and bad input."""

from __future__ import annotations

from typing import Any

import httpx
from models_route_examples import _model
from server_route_examples import Ctx

M = "/api/v1/models"


def test_the_server_promotes_with_gates_and_records_the_caller(
    client: httpx.Client, state: Any, callers: dict[str, Any]
) -> None:
    ctx = Ctx(state=state).setup()
    name = _model(ctx)
    maintainer = callers["maintainer"].headers
    tiny = {"champion": {"max_size_mb": 1e-9}}
    body = {"name": name, "version": 1, "gates": tiny}
    refused = client.post(f"{M}/promote", json=body, headers=maintainer)
    assert refused.status_code == 200, refused.text
    assert refused.json()["passed"] is False and refused.json()["moved"] is False
    assert "champion" not in state.models.registry.get_model(name).aliases
    forced = client.post(
        f"{M}/promote", json={**body, "override_reason": "hotfix"}, headers=maintainer
    )
    assert forced.json()["moved"] is True
    assert state.models.registry.resolve_alias(name, "champion").version == 1
    listed = client.get(f"{M}/decisions", params={"name": name}, headers=callers["viewer"].headers)
    assert [d["actor"] for d in listed.json()["decisions"]] == ["u-maintainer"] * 2
    # Viewers may read decisions but not promote; gates that score on data are refused.
    viewer = client.post(f"{M}/promote", json=body, headers=callers["viewer"].headers)
    assert viewer.status_code == 403
    scored = {"champion": {"beat": {"metric": "roc_auc"}}}
    needs_data = client.post(f"{M}/promote", json={**body, "gates": scored}, headers=maintainer)
    assert needs_data.status_code == 422 and needs_data.json()["error"]["field"] == "gates"


def test_a_version_cannot_name_files_its_maker_cannot_read(
    client: httpx.Client, state: Any, callers: dict[str, Any]
) -> None:
    from keel.models import NewModelVersion

    secret = state.content.put_bytes(b"weights of another project")
    run = state.tracking.create_run(project="elsewhere")
    from keel.tracking._records import ArtifactFile

    state.tracking.record_artifacts(run.id, [ArtifactFile("w", secret.digest, secret.size)])
    state.models.registry.create_version(NewModelVersion(name="thief", flavor="skops"))
    files = [{"path": "w", "digest": secret.digest, "size": secret.size}]
    done = client.post(
        f"{M}/versions/complete",
        json={"name": "thief", "version": 1, "files": files},
        headers=callers["maintainer"].headers,
    )
    assert done.status_code == 404
    assert state.models.registry.get_version("thief", 1).status.value == "pending"
    # Nor may a dataset version.
    new = {"name": "stolen", "digest": secret.digest, "kind": "table", "size": secret.size}
    data = client.post("/api/v1/data/versions", json=new, headers=callers["editor"].headers)
    assert data.status_code == 404


def test_bad_input_is_4xx_naming_the_field(
    client: httpx.Client, state: Any, callers: dict[str, Any]
) -> None:
    ctx = Ctx(state=state).setup()
    name = _model(ctx)
    headers = callers["maintainer"].headers
    cases = [
        ("PUT", f"{M}/aliases", {"name": name, "alias": "champion", "version": "1"}, "version"),
        ("PATCH", f"{M}/model", {"name": name, "tags": {"a": 1}}, "tags"),
        ("POST", f"{M}/versions/search", {"run_ids": "abc"}, "run_ids"),
        ("POST", f"{M}/versions/search", {"status": "gone"}, "status"),
        ("POST", f"{M}/promote", {"name": name, "version": 1, "gates": []}, "gates"),
        ("POST", "/api/v1/deployments", {"name": "d1", "model": name}, "body"),
        ("POST", "/api/v1/deployments", {"name": "d1", "model": name, "champion": 7}, "champion"),
    ]
    for method, path, body, field in cases:
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 422, (path, body, r.text)
        assert r.json()["error"]["field"] == field, (path, body, r.text)
    made = client.post(
        "/api/v1/deployments", json={"name": "d1", "model": name, "champion": 1}, headers=headers
    )
    assert made.status_code == 201 and made.json()["updated_by"] == "u-maintainer"
    unknown = client.patch(
        "/api/v1/deployments/d1", json={"changes": {"actor": "x"}}, headers=headers
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "changes"
    stale = client.patch(
        "/api/v1/deployments/d1",
        json={"changes": {"settings": {"max_batch_size": 8}}, "expected_revision": 7},
        headers=headers,
    )
    assert stale.status_code == 409
