"""The release store on SQLite and PostgreSQL: evaluations, approvals, decisions and card fields
round-trip; bad input is refused with the field named and stores nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect

from keel.db import connect
from keel.errors import InvalidInput, NotFound
from keel.models._gates import GateResult
from keel.models._metrics import Calibration, ConfusionMatrix
from keel.models._release_records import EvaluationResult, PromotionDecision
from keel.models._release_sql import SqlReleaseStore


@pytest.fixture
def store(db_url: str) -> SqlReleaseStore:
    s = SqlReleaseStore(db_url)
    yield s
    s.close()


def _evaluation(version: int = 1, **kw: object) -> EvaluationResult:
    base: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "name": "churn",
        "version": version,
        "dataset": "churn@v2",
        "dataset_digest": "blake3:abc",
        "target": "churned",
        "task": "classification",
        "rows": 100,
        "metrics": {"accuracy": 0.9, "roc_auc": 0.95},
        "classes": ("0", "1"),
        "confusion": ConfusionMatrix(("0", "1"), ((40, 5), (5, 50))),
        "calibration": Calibration((0.1, 0.9), (0.12, 0.88), (50, 50), 0.08, 0.02),
        "slices": {"region": {"north": {"rows": 50.0, "accuracy": 0.8}}},
        "business": {"profit": 1234.5},
        "run_id": "r" * 32,
    }
    base.update(kw)
    return EvaluationResult(**base)  # type: ignore[arg-type]


def test_migration_creates_the_release_tables(db_url: str) -> None:
    tables = set(inspect(connect(db_url)).get_table_names())
    assert {"model_evaluations", "model_decisions", "model_approvals", "model_card_fields"} <= (
        tables
    )


def test_evaluations_round_trip_newest_first(store: SqlReleaseStore) -> None:
    first = store.save_evaluation(_evaluation(created_ms=1))
    second = store.save_evaluation(_evaluation(created_ms=2))
    other = store.save_evaluation(_evaluation(version=2, created_ms=3))
    assert store.list_evaluations("churn", 1) == [second, first]
    assert store.list_evaluations("churn") == [other, second, first]
    assert first.confusion == ConfusionMatrix(("0", "1"), ((40, 5), (5, 50)))
    assert first.calibration is not None and first.calibration.ece == 0.02
    assert first.slices["region"]["north"]["accuracy"] == 0.8
    assert first.business == {"profit": 1234.5}


def test_approvals_are_idempotent_per_user(store: SqlReleaseStore) -> None:
    first = store.add_approval("churn", 4, user="bob", comment="looks good")
    again = store.add_approval("churn", 4, user="bob", comment="second time")
    assert again == first and again.comment == "looks good"
    store.add_approval("churn", 4, user="carol")
    assert [a.user for a in store.list_approvals("churn", 4)] == ["bob", "carol"]
    assert store.list_approvals("churn", 5) == []
    with pytest.raises(InvalidInput) as info:
        store.add_approval("churn", 4, user="")
    assert info.value.field == "user"


def test_decisions_round_trip_and_mark_moved(store: SqlReleaseStore) -> None:
    gate = GateResult("roc_auc >= 0.8", "metric", True, 0.9, 0.8, ">=")
    beat = GateResult("beats", "beat", False, 0.01, 0.0, ">", ci_low=-0.02, ci_high=0.04)
    decision = PromotionDecision(
        id=uuid.uuid4().hex, name="churn", version=4, alias="champion", action="promote",
        passed=False, moved=False, actor="alice", gates=(gate, beat), previous_version=3,
        dataset="churn@v2", override_reason="hotfix: v3 leaks PII", created_ms=5,
    )  # fmt: skip
    saved = store.save_decision(decision)
    assert saved == decision and saved.overridden and saved.failed_gates == (beat,)
    moved = store.mark_moved(decision.id)
    assert moved.moved and store.list_decisions("churn", 4) == [moved]
    with pytest.raises(NotFound):
        store.mark_moved("0" * 32)


def test_bad_decision_stores_nothing(store: SqlReleaseStore) -> None:
    decision = PromotionDecision(
        id=uuid.uuid4().hex, name="churn", version=4, alias="champion", action="promote",
        passed=True, moved=False, actor="", gates=(),
    )  # fmt: skip
    with pytest.raises(InvalidInput) as info:
        store.save_decision(decision)
    assert info.value.field == "actor"
    assert store.list_decisions("churn") == []


def test_card_fields_inherit_from_earlier_versions_until_edited(store: SqlReleaseStore) -> None:
    store.set_card_fields("churn", 2, {"intended_use": "Rank accounts for retention calls."})
    store.set_card_fields("churn", 4, {"limitations": "Trained on EU customers only."})
    fields = store.card_fields("churn", 5)
    assert fields == {
        "intended_use": ("Rank accounts for retention calls.", 2),
        "limitations": ("Trained on EU customers only.", 4),
    }
    assert store.card_fields("churn", 1) == {}
    store.set_card_fields("churn", 5, {"limitations": "EU and UK."})
    assert store.card_fields("churn", 5)["limitations"] == ("EU and UK.", 5)
    with pytest.raises(InvalidInput) as info:
        store.set_card_fields("churn", 5, {"limitations": "ok", "secret_sauce": "x"})
    assert info.value.field == "secret_sauce"
    assert store.card_fields("churn", 5)["limitations"] == ("EU and UK.", 5)  # nothing written


def test_migration_0006_matches_the_declared_tables(db_url: str) -> None:
    from keel.db import metadata
    from keel.models import _release_tables

    inspector = inspect(connect(db_url))
    for table in (
        _release_tables.model_evaluations,
        _release_tables.model_decisions,
        _release_tables.model_approvals,
        _release_tables.model_card_fields,
    ):
        assert table is metadata.tables[table.name]
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert set(pk) == {c.name for c in table.primary_key.columns}, table.name
        declared = {tuple(c.name for c in i.columns) for i in table.indexes}
        found = {tuple(i["column_names"]) for i in inspector.get_indexes(table.name)}
        assert declared <= found, table.name


def test_records_made_in_one_millisecond_list_newest_first(store: SqlReleaseStore) -> None:
    from keel.models._release_records import new_id

    ids = [new_id() for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50 and all(len(i) == 32 for i in ids)
    for i in ids[:5]:
        store.save_evaluation(_evaluation(id=i, created_ms=7))
    assert [e.id for e in store.list_evaluations("churn", 1)] == ids[:5][::-1]
