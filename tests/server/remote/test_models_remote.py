"""The model registry, releases and deployments by URL: the registry conformance suite against
``HttpModelRegistry`` on a live server (PostgreSQL), and the SDK and CLI pointed at the server
with KEEL_TRACKING_URI + KEEL_TOKEN: log, alias, tag, lineage, promote with gates, approve,
cards, deployments, with identities recorded as the signed-in user."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

from keel.models._http import HttpModelRegistry
from keel.testing.models_conformance import RegistryConformance

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote


def _empty_registry(remote: Remote) -> None:
    import sqlalchemy as sa

    from keel.db import engine_for

    tables = [
        "model_approvals",
        "model_decisions",
        "model_evaluations",
        "model_card_fields",
        "serving_deployment_history",
        "serving_deployments",
        "model_aliases",
        "model_files",
        "model_version_tags",
        "model_versions",
        "model_tags",
        "registered_models",
    ]
    engine = engine_for(remote.db_url)
    present = set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE TABLE {', '.join(t for t in tables if t in present)}"))


class TestHttpRegistry(RegistryConformance):
    @pytest.fixture
    def registry(self, remote: Remote) -> Iterator[HttpModelRegistry]:
        _empty_registry(remote)
        store = HttpModelRegistry(remote.url, token=remote.token)
        yield store
        store.close()


@pytest.fixture
def maintainer(remote: Remote) -> tuple[str, str]:
    """A user with the maintainer role on a project, and a token of theirs."""
    from keel.auth import Role, open_auth_store

    name = f"mia-{uuid.uuid4().hex[:6]}"
    auth = open_auth_store(remote.db_url)
    try:
        auth.create_user(name, f"pw-{uuid.uuid4().hex}-Zq")
        auth.grant("models-remote", name, Role.MAINTAINER)
        token, _ = auth.create_token(name, name="sdk", role=Role.MAINTAINER)
    finally:
        auth.close()
    return name, token


@pytest.fixture
def as_maintainer(
    remote: Remote, maintainer: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The SDK pointed at the server with the maintainer's token; yields the username."""
    import keel.models
    from keel.config import reset_settings
    from keel.models import _release
    from keel.tracking import _fluent

    _empty_registry(remote)
    monkeypatch.setenv("KEEL_TRACKING_URI", remote.url)
    monkeypatch.setenv("KEEL_TOKEN", maintainer[1])
    monkeypatch.chdir(remote.artifacts_root.parent)
    reset_settings()
    yield maintainer[0]
    for key in [k for k in _fluent._clients if k[0] == remote.url]:
        _fluent._clients.pop(key).close()
    for models in keel.models._default.values():
        models.registry.close()
        models.content.backend.close()
        models.tracking.close()
    keel.models._default.clear()
    for releases in _release._default.values():
        releases.close()
    _release._default.clear()


def _log_model(name: str) -> int:
    from sklearn.linear_model import LogisticRegression

    import keel
    import keel.models

    x = np.random.default_rng(0).normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with keel.start_run(project="models-remote"):
        version = keel.models.log(model, name, signature_from=x)
    return int(version.version)


def test_the_sdk_registers_aliases_tags_and_promotes_by_url(as_maintainer: str) -> None:
    import keel.models

    assert isinstance(keel.models.default().registry, HttpModelRegistry)
    v1 = _log_model("churn")
    v2 = _log_model("churn")
    assert (v1, v2) == (1, 2)
    assert [m.name for m in keel.models.list_models()] == ["churn"]
    keel.models.set_alias("churn", "champion", v1)
    keel.models.set_tag("churn", "team", "growth")
    keel.models.set_tag("churn", "stage", "candidate", version=v2)
    assert keel.models.get_version("churn", "champion").version == v1
    assert keel.models.get_version("churn", v2).tags["stage"] == "candidate"
    lineage = keel.models.lineage("models:/churn/2")
    assert lineage.run is not None and lineage.run.project == "models-remote"
    # Loading reads every file through the server, checked against its digest.
    loaded = keel.models.load("models:/churn@champion")
    assert loaded.predict(np.zeros((3, 2))).shape[0] == 3

    # Promotion with gates: the size gate fails, so nothing moves; an override moves it. Both
    # decisions are recorded under the signed-in user, whatever actor the client claims.
    tiny = {"champion": {"max_size_mb": 1e-9}}
    refused = keel.models.promote("churn", v2, gates=tiny, actor="someone-else")
    assert not refused.passed and not refused.moved
    assert keel.models.get_version("churn", "champion").version == v1
    forced = keel.models.promote("churn", v2, gates=tiny, override_reason="hotfix")
    assert forced.moved
    assert keel.models.get_version("churn", "champion").version == v2
    decisions = keel.models.decisions("churn")
    assert [d.actor for d in decisions] == [as_maintainer, as_maintainer]
    assert decisions[0].moved and decisions[0].override_reason == "hotfix"

    keel.models.set_card("churn", v2, owner="growth team")
    assert keel.models.card("models:/churn/2").fields["owner"][0] == "growth team"
    approval = keel.models.approve("churn", v1, user="not-me")
    assert approval.user == as_maintainer
    keel.models.delete_alias("churn", "champion")
    assert "champion" not in keel.models.default().registry.get_model("churn").aliases


def test_deployments_by_url_record_the_signed_in_user(
    as_maintainer: str, request: pytest.FixtureRequest
) -> None:
    from keel.errors import InvalidInput
    from keel.serving._deployments import Deployment, open_deployments
    from keel.serving._deployments_http import HttpDeploymentStore

    v1 = _log_model("fraud")
    v2 = _log_model("fraud")
    deployments = open_deployments()
    request.addfinalizer(deployments.store.close)
    request.addfinalizer(deployments.registry.close)
    assert isinstance(deployments.store, HttpDeploymentStore)
    made = deployments.create(Deployment(name="fraud-live", model="fraud", champion=v1))
    assert made.revision == 1 and made.updated_by == as_maintainer
    changed = deployments.set(
        "fraud-live", challenger=v2, mode="canary", percent=10, settings={"max_batch_size": 8}
    )
    assert changed.revision == 2 and changed.settings.max_batch_size == 8
    with pytest.raises(InvalidInput) as info:
        deployments.set("fraud-live", champion=99)
    assert info.value.field == "champion"
    history = deployments.history("fraud-live")
    assert [(h.revision, h.actor) for h in history] == [(1, as_maintainer), (2, as_maintainer)]
    assert [d.name for d in deployments.list()] == ["fraud-live"]


def test_the_cli_lists_models_and_deployments_by_url(as_maintainer: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from keel.serving._deployments import Deployment, open_deployments

    version = _log_model("churn")
    deployments = open_deployments()
    try:
        deployments.create(Deployment(name="churn-live", model="churn", champion=version))
    finally:
        deployments.store.close()
        deployments.registry.close()
    keel_cli = str(Path(sys.executable).with_name("keel"))

    def run(*args: str) -> str:
        done = subprocess.run(
            [keel_cli, *args],
            check=False,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert [m["name"] for m in json.loads(run("models", "ls", "--json"))] == ["churn"]
    run("models", "alias", "churn", "champion", str(version))
    shown = json.loads(run("models", "show", "churn@champion", "--json"))
    assert shown["version"] == version
    assert [d["name"] for d in json.loads(run("deployments", "ls", "--json"))] == ["churn-live"]
    history = json.loads(run("deployments", "history", "churn-live", "--json"))
    assert history[0]["actor"] == as_maintainer


def test_a_viewer_reads_models_but_cannot_move_aliases(remote: Remote, as_maintainer: str) -> None:
    from keel.auth import Role, open_auth_store
    from keel.errors import PermissionDenied

    version = _log_model("churn")
    auth = open_auth_store(remote.db_url)
    try:
        name = f"vic-{uuid.uuid4().hex[:6]}"
        auth.create_user(name, f"pw-{uuid.uuid4().hex}-Zq")
        auth.grant("models-remote", name, Role.VIEWER)
        token, _ = auth.create_token(name, name="ro", role=Role.VIEWER)
    finally:
        auth.close()
    viewer = HttpModelRegistry(remote.url, token=token)
    try:
        assert viewer.get_version("churn", version).status.value == "ready"
        with pytest.raises(PermissionDenied):
            viewer.set_alias("churn", "champion", version)
    finally:
        viewer.close()
