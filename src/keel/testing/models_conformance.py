"""The one conformance suite for the model registry (SQLite, PostgreSQL, later the HTTP client).

Subclass ``RegistryConformance`` in a test module and provide a ``registry`` fixture (an empty
``ModelRegistry``)::

    class TestMine(RegistryConformance):
        @pytest.fixture
        def registry(self): ...
"""

from __future__ import annotations

import threading

import pytest

from keel.errors import AlreadyExists, Conflict, InvalidInput, KeelError, NotFound
from keel.models._base import ModelRegistry
from keel.models._records import (
    ColSpec,
    DatasetInput,
    ModelEnv,
    ModelFile,
    NewModelVersion,
    Signature,
    VersionStatus,
)

D1 = "1" * 64
D2 = "2" * 64


def _new(name: str = "churn", **extra: object) -> NewModelVersion:
    return NewModelVersion(name=name, flavor="sklearn", **extra)  # type: ignore[arg-type]


def _ready(registry: ModelRegistry, name: str = "churn", **extra: object) -> int:
    v = registry.create_version(_new(name, **extra))
    registry.complete_version(name, v.version, files=[ModelFile("model.skops", D1, 10)])
    return v.version


class RegistryConformance:
    """The registry metadata contract on its own (no bytes)."""

    def test_versions_number_from_one_and_records_round_trip(self, registry: ModelRegistry) -> None:
        sig = Signature(
            kind="columns",
            inputs=(ColSpec("a", "float64"), ColSpec("b", "str")),
            outputs=(ColSpec(None, "int64", (-1,)),),
        )
        new = _new(
            signature=sig,
            input_example="input_example.parquet",
            environment=ModelEnv("3.11.7", {"scikit-learn": "1.9.1"}),
            latency_ms=1.5,
            options={"file": "model.skops", "nested": {"k": [1, 2]}},
            run_id="r1",
            source="runs:/r1/model",
            datasets=(DatasetInput("churn@v3", "d" * 64),),
            git_commit="abc123",
            description="first",
            tags={"team": "growth"},
        )
        v1 = registry.create_version(new)
        assert (v1.version, v1.status, v1.files, v1.size) == (1, VersionStatus.PENDING, (), 0)
        files = [ModelFile("model.skops", D1, 10), ModelFile("sub/x.json", D2, 5)]
        done = registry.complete_version("churn", 1, files=files)
        assert done.status is VersionStatus.READY and done.size == 15
        got = registry.get_version("churn", 1)
        assert got == done
        assert got.files == tuple(files)
        assert got.signature == sig
        assert got.environment.packages == {"scikit-learn": "1.9.1"}
        assert got.options == {"file": "model.skops", "nested": {"k": [1, 2]}}
        assert got.datasets == (DatasetInput("churn@v3", "d" * 64),)
        assert (got.run_id, got.git_commit, got.latency_ms) == ("r1", "abc123", 1.5)
        assert (got.description, dict(got.tags)) == ("first", {"team": "growth"})
        assert _ready(registry) == 2
        assert registry.get_model("churn").latest_version == 2
        assert [m.name for m in registry.list_models()] == ["churn"]

    def test_status_moves_only_from_pending(self, registry: ModelRegistry) -> None:
        v = registry.create_version(_new())
        failed = registry.complete_version("churn", v.version, error="upload broke")
        assert (failed.status, failed.error) == (VersionStatus.FAILED, "upload broke")
        with pytest.raises(Conflict):
            registry.complete_version("churn", v.version, files=[ModelFile("m", D1, 1)])
        with pytest.raises(InvalidInput):
            registry.complete_version("churn", _ready(registry) + 1, files=[])
        with pytest.raises(Conflict):
            registry.set_alias("churn", "champion", v.version)  # failed versions carry none
        assert [x.version for x in registry.list_versions("churn", status=VersionStatus.READY)] == [
            2
        ]

    def test_bad_manifest_is_refused_and_leaves_the_version_pending(
        self, registry: ModelRegistry
    ) -> None:
        v = registry.create_version(_new())
        for files in (
            [ModelFile("../escape", D1, 1)],
            [ModelFile("/abs", D1, 1)],
            [ModelFile("m", "not-a-digest", 1)],
            [ModelFile("m", D1, -1)],
            [ModelFile("m", D1, 1), ModelFile("m", D2, 1)],
        ):
            with pytest.raises(InvalidInput):
                registry.complete_version("churn", v.version, files=files)
        assert registry.get_version("churn", v.version).status is VersionStatus.PENDING

    def test_aliases_move_and_resolve(self, registry: ModelRegistry) -> None:
        one, two = _ready(registry), _ready(registry)
        registry.set_alias("churn", "champion", one)
        registry.set_alias("churn", "challenger", two)
        assert registry.resolve_alias("churn", "champion").version == one
        assert registry.get_version("churn", two).aliases == ("challenger",)
        registry.set_alias("churn", "champion", two)  # moves
        assert registry.resolve_alias("churn", "champion").version == two
        assert registry.get_model("churn").aliases == {"challenger": two, "champion": two}
        assert registry.resolve_alias("churn", "latest").version == two
        registry.delete_alias("churn", "challenger")
        with pytest.raises(NotFound):
            registry.resolve_alias("churn", "challenger")
        with pytest.raises(NotFound):
            registry.delete_alias("churn", "challenger")
        for bad in ("latest", "12", "a/b", "a@b", ""):
            with pytest.raises(InvalidInput):
                registry.set_alias("churn", bad, one)
        with pytest.raises(NotFound):
            registry.set_alias("churn", "x", 99)

    def test_tags_descriptions_and_models(self, registry: ModelRegistry) -> None:
        created = registry.create_model("fraud", description="d", tags={"a": "1"})
        assert (created.description, dict(created.tags), created.latest_version) == (
            "d",
            {"a": "1"},
            0,
        )
        with pytest.raises(AlreadyExists):
            registry.create_model("fraud")
        m = registry.update_model("fraud", description="new", tags={"b": "2"}, delete_tags=["a"])
        assert (m.description, dict(m.tags)) == ("new", {"b": "2"})
        v = _ready(registry, "fraud")
        got = registry.update_version("fraud", v, description="v", tags={"k": "x"})
        assert (got.description, dict(got.tags)) == ("v", {"k": "x"})
        assert dict(registry.update_version("fraud", v, delete_tags=["k"]).tags) == {}
        with pytest.raises(NotFound):
            registry.get_model("nope")
        with pytest.raises(NotFound):
            registry.get_version("fraud", 9)
        with pytest.raises(InvalidInput):
            registry.create_version(_new("bad/name"))
        with pytest.raises(InvalidInput):
            registry.update_model("fraud", tags={"bad key": "x"})

    def test_trust_is_recorded_with_a_reason(self, registry: ModelRegistry) -> None:
        v = registry.create_version(_new(requires_trust=True))
        assert (v.requires_trust, v.trusted) == (True, False)
        with pytest.raises(InvalidInput):
            registry.mark_trusted("churn", v.version, reason="  ")
        got = registry.mark_trusted("churn", v.version, reason="reviewed by sec")
        assert (got.trusted, got.trust_reason) == (True, "reviewed by sec")
        back = registry.mark_trusted("churn", v.version, reason="revoked", trusted=False)
        assert back.trusted is False

    def test_versions_by_run_and_referenced_digests(self, registry: ModelRegistry) -> None:
        _ready(registry, "a", run_id="r1")
        _ready(registry, "b", run_id="r2")
        registry.create_version(_new("c", run_id="r1"))  # pending: no files yet
        assert [(v.name, v.version) for v in registry.list_versions(run_ids=["r1"])] == [
            ("a", 1),
            ("c", 1),
        ]
        assert registry.list_versions(run_ids=[]) == []
        assert set(registry.referenced_digests()) == {D1}

    def test_concurrent_registrations_get_distinct_consecutive_numbers(
        self, registry: ModelRegistry
    ) -> None:
        numbers: list[int] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(5):
                    numbers.append(registry.create_version(_new("race")).version)
            except KeelError as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(numbers) == list(range(1, 21))
