"""The deployments store on SQLite and PostgreSQL: validation against the registry, updates,
history, concurrency."""

from __future__ import annotations

import pytest

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.models._base import ModelRegistry
from keel.serving._deployments import Deployment, Deployments, DeploymentSettings, Mode
from keel.serving._deployments_sql import SqlDeploymentStore


@pytest.fixture
def deployments(db_url: str, registry: ModelRegistry) -> Deployments:
    return Deployments(SqlDeploymentStore(db_url), registry)


def test_create_show_list(deployments: Deployments) -> None:
    made = deployments.create(Deployment("churn-prod", "churn", 1), actor="ann")
    assert made.revision == 1 and made.mode is Mode.SINGLE and made.updated_by == "ann"
    assert made.settings == DeploymentSettings()
    assert deployments.get("churn-prod") == made
    canary = deployments.create(
        Deployment("b", "churn", 2, challenger=3, mode=Mode.CANARY, percent=10, sticky_key="uid")
    )
    assert [d.name for d in deployments.list()] == ["b", "churn-prod"]
    assert canary.percent == 10.0 and canary.sticky_key == "uid"
    with pytest.raises(AlreadyExists):
        deployments.create(Deployment("b", "churn", 1))
    with pytest.raises(NotFound):
        deployments.get("missing")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"champion": 9}, "champion"),  # no such version
        ({"champion": 4}, "champion"),  # FAILED
        ({"champion": 5}, "champion"),  # PENDING
        ({"challenger": 9, "mode": Mode.SHADOW}, "challenger"),
        ({"mode": Mode.SHADOW}, "challenger"),  # shadow without a challenger
        ({"challenger": 1, "mode": Mode.SHADOW}, "challenger"),  # same as champion
        ({"challenger": 2, "mode": Mode.CANARY}, "percent"),  # canary needs 0 < percent < 100
        ({"challenger": 2, "mode": Mode.CANARY, "percent": 100}, "percent"),
        ({"challenger": 2, "mode": Mode.SHADOW, "percent": 10}, "percent"),
        ({"sticky_key": "uid"}, "sticky_key"),
        ({"mode": "blue-green"}, "mode"),
        ({"champion": 0}, "champion"),
        ({"model": ""}, "model"),
        ({"name": "../etc"}, "name"),
        ({"name": "a" * 129}, "name"),
    ],
)
def test_invalid_deployments_name_the_field_and_store_nothing(
    deployments: Deployments, kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"name": "d", "model": "churn", "champion": 1, **kwargs}
    with pytest.raises(InvalidInput) as info:
        deployments.create(Deployment(**values))  # type: ignore[arg-type]
    assert info.value.field == field
    assert deployments.list() == []


def test_settings_bounds() -> None:
    with pytest.raises(InvalidInput) as info:
        DeploymentSettings(max_batch_size=0)
    assert info.value.field == "max_batch_size"
    with pytest.raises(InvalidInput) as info:
        DeploymentSettings(max_batch_size=2.5)  # type: ignore[arg-type]
    assert info.value.field == "max_batch_size"
    with pytest.raises(InvalidInput) as info:
        DeploymentSettings.from_dict({"max_threads": 3})
    assert info.value.field == "settings"


def test_set_records_history(deployments: Deployments) -> None:
    deployments.create(Deployment("d", "churn", 1), actor="ann")
    d2 = deployments.set("d", actor="bob", challenger=2, mode="canary", percent=25, sticky_key="u")
    assert (d2.revision, d2.challenger, d2.mode, d2.percent) == (2, 2, Mode.CANARY, 25.0)
    d3 = deployments.set("d", actor="cat", settings={"max_batch_size": 8})
    assert d3.settings.max_batch_size == 8 and d3.settings.max_queue == 1024
    d4 = deployments.set("d", actor="dan", mode="single")  # leaving canary clears its split
    assert (d4.mode, d4.percent, d4.sticky_key) == (Mode.SINGLE, 0.0, None)
    same = deployments.set("d", actor="eve", mode="single")  # no change: no new revision
    assert same.revision == 4
    history = deployments.history("d")
    assert [(h.revision, h.actor, h.action) for h in history] == [
        (1, "ann", "create"),
        (2, "bob", "set"),
        (3, "cat", "set"),
        (4, "dan", "set"),
    ]
    assert history[1].changes["percent"] == (0.0, 25.0)
    assert history[1].changes["mode"] == ("single", "canary")
    assert set(history[1].changes) == {"challenger", "mode", "percent", "sticky_key"}
    assert history[2].config["settings"]["max_batch_size"] == 8
    assert history[0].changes["champion"] == (None, 1)


def test_set_rejects_bad_changes_and_keeps_the_stored_deployment(
    deployments: Deployments,
) -> None:
    made = deployments.create(Deployment("d", "churn", 1))
    with pytest.raises(InvalidInput) as info:
        deployments.set("d", champion=4)
    assert info.value.field == "champion"
    with pytest.raises(InvalidInput) as info:
        deployments.set("d", color="red")
    assert info.value.field == "color"
    with pytest.raises(InvalidInput) as info:
        deployments.set("d", settings={"max_latency_ms": -1})
    assert info.value.field == "max_latency_ms"
    assert deployments.get("d") == made
    assert len(deployments.history("d")) == 1
    with pytest.raises(NotFound):
        deployments.set("nope", champion=2)
    with pytest.raises(NotFound):
        deployments.history("nope")


def test_expected_revision_guards_lost_updates(deployments: Deployments) -> None:
    deployments.create(Deployment("d", "churn", 1))
    deployments.set("d", champion=2, expected_revision=1)
    with pytest.raises(Conflict):
        deployments.set("d", champion=3, expected_revision=1)
    assert deployments.get("d").champion == 2


def test_concurrent_sets_each_get_their_own_revision(deployments: Deployments) -> None:
    from concurrent.futures import ThreadPoolExecutor

    deployments.create(Deployment("d", "churn", 1))

    def change(i: int) -> int:
        return deployments.set("d", actor=f"u{i}", settings={"max_batch_size": i + 1}).revision

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(change, range(8)))
    history = deployments.history("d")
    assert [h.revision for h in history] == list(range(1, 10))
    assert deployments.get("d").revision == 9


def test_settings_become_the_inference_apps_settings() -> None:
    from keel.serving import ServingSettings

    settings = DeploymentSettings(max_batch_size=8, timeout_s=2.5, max_rows=100)
    served = settings.serving_settings()
    assert isinstance(served, ServingSettings)
    assert (served.max_batch_size, served.timeout_s, served.max_rows) == (8, 2.5, 100)
    assert DeploymentSettings().serving_settings() == ServingSettings()  # same defaults


def test_concurrent_creates_of_one_name(deployments: Deployments) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> str:
        try:
            deployments.create(Deployment("same", "churn", 1 + i % 3), actor=f"u{i}")
        except AlreadyExists:
            return "exists"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert outcomes.count("created") == 1 and outcomes.count("exists") == 7
    assert len(deployments.history("same")) == 1
