"""``SqlReleaseStore``: the release store contract on SQLite and PostgreSQL, one
``keel.db.transaction`` per method."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel import _time
from keel.db import SqlStore
from keel.errors import InvalidInput, NotFound
from keel.models._gates import GateResult
from keel.models._release_base import ReleaseStore
from keel.models._release_records import (
    CARD_FIELDS,
    MAX_CARD_FIELD,
    Approval,
    EvaluationResult,
    PromotionDecision,
    evaluation_from_parts,
)
from keel.models._release_tables import (
    model_approvals,
    model_card_fields,
    model_decisions,
    model_evaluations,
)

_MAX_NAME = 250


def _dumps(value: Any) -> str:
    """JSON with non-finite floats as null (JSON has no NaN)."""
    return json.dumps(_clean(value), allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _check_name(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NAME:
        raise InvalidInput(f"must be 1..{_MAX_NAME} characters", field=field)
    return value


def _decision(row: Any) -> PromotionDecision:
    return PromotionDecision(
        id=row.id,
        name=row.name,
        version=row.version,
        alias=row.alias,
        action=row.action,
        passed=bool(row.passed),
        moved=bool(row.moved),
        actor=row.actor,
        gates=tuple(GateResult.from_dict(g) for g in json.loads(row.gates)),
        previous_version=row.previous_version,
        dataset=row.dataset,
        evaluation_id=row.evaluation_id,
        override_reason=row.override_reason,
        source=row.source,
        created_ms=row.created_ms,
    )


def _evaluation(row: Any) -> EvaluationResult:
    metrics = {k: v for k, v in json.loads(row.metrics).items() if v is not None}
    return evaluation_from_parts(row._mapping, metrics, json.loads(row.details))


class SqlReleaseStore(SqlStore, ReleaseStore):
    def save_evaluation(self, result: EvaluationResult) -> EvaluationResult:
        values = {
            "id": result.id,
            "name": _check_name(result.name, "name"),
            "version": result.version,
            "dataset": result.dataset,
            "dataset_digest": result.dataset_digest,
            "target": result.target,
            "task": result.task,
            "rows": result.rows,
            "metrics": _dumps(dict(result.metrics)),
            "details": _dumps(result.details()),
            "run_id": result.run_id,
            "created_ms": result.created_ms or _time.now_ms(),
        }

        def work(conn: Connection) -> EvaluationResult:
            conn.execute(model_evaluations.insert().values(**values))
            row = conn.execute(
                select(model_evaluations).where(model_evaluations.c.id == result.id)
            ).one()
            return _evaluation(row)

        return self._write(work)

    def list_evaluations(self, name: str, version: int | None = None) -> list[EvaluationResult]:
        query = select(model_evaluations).where(model_evaluations.c.name == name)
        if version is not None:
            query = query.where(model_evaluations.c.version == version)
        query = query.order_by(model_evaluations.c.created_ms.desc(), model_evaluations.c.id.desc())
        return self._read(lambda conn: [_evaluation(r) for r in conn.execute(query)])

    def add_approval(self, name: str, version: int, *, user: str, comment: str = "") -> Approval:
        _check_name(user, "user")
        if len(comment) > MAX_CARD_FIELD:
            raise InvalidInput(f"at most {MAX_CARD_FIELD} characters", field="comment")

        def work(conn: Connection) -> Approval:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                insert(model_approvals)
                .values(
                    name=name, version=version, user=user, comment=comment,
                    created_ms=_time.now_ms(),
                )
                .on_conflict_do_nothing(index_elements=["name", "version", "user"])
            )  # fmt: skip
            row = conn.execute(
                select(model_approvals).where(
                    model_approvals.c.name == name,
                    model_approvals.c.version == version,
                    model_approvals.c.user == user,
                )
            ).one()
            return Approval(row.name, row.version, row.user, row.comment, row.created_ms)

        return self._write(work)

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        query = (
            select(model_approvals)
            .where(model_approvals.c.name == name, model_approvals.c.version == version)
            .order_by(model_approvals.c.created_ms, model_approvals.c.user)
        )
        return self._read(
            lambda conn: [
                Approval(r.name, r.version, r.user, r.comment, r.created_ms)
                for r in conn.execute(query)
            ]
        )

    def save_decision(self, decision: PromotionDecision) -> PromotionDecision:
        values = {
            "id": decision.id,
            "name": _check_name(decision.name, "name"),
            "version": decision.version,
            "alias": _check_name(decision.alias, "alias"),
            "action": decision.action,
            "passed": decision.passed,
            "moved": decision.moved,
            "actor": _check_name(decision.actor, "actor"),
            "override_reason": decision.override_reason,
            "previous_version": decision.previous_version,
            "dataset": decision.dataset,
            "evaluation_id": decision.evaluation_id,
            "source": decision.source,
            "gates": _dumps([g.to_dict() for g in decision.gates]),
            "created_ms": decision.created_ms or _time.now_ms(),
        }

        def work(conn: Connection) -> PromotionDecision:
            conn.execute(model_decisions.insert().values(**values))
            row = conn.execute(
                select(model_decisions).where(model_decisions.c.id == decision.id)
            ).one()
            return _decision(row)

        return self._write(work)

    def mark_moved(self, decision_id: str) -> PromotionDecision:
        def work(conn: Connection) -> PromotionDecision:
            where = model_decisions.c.id == decision_id
            if conn.execute(update(model_decisions).where(where).values(moved=True)).rowcount != 1:
                raise NotFound(f"no decision {decision_id}")
            return _decision(conn.execute(select(model_decisions).where(where)).one())

        return self._write(work)

    def list_decisions(self, name: str, version: int | None = None) -> list[PromotionDecision]:
        query = select(model_decisions).where(model_decisions.c.name == name)
        if version is not None:
            query = query.where(model_decisions.c.version == version)
        query = query.order_by(model_decisions.c.created_ms.desc(), model_decisions.c.id.desc())
        return self._read(lambda conn: [_decision(r) for r in conn.execute(query)])

    def set_card_fields(self, name: str, version: int, fields: Mapping[str, str]) -> None:
        for key, value in fields.items():
            if key not in CARD_FIELDS:
                raise InvalidInput(
                    f"unknown card field {key!r}; editable: {', '.join(CARD_FIELDS)}", field=key
                )
            if not isinstance(value, str) or len(value) > MAX_CARD_FIELD:
                raise InvalidInput(f"must be text of at most {MAX_CARD_FIELD} chars", field=key)
        now = _time.now_ms()

        def work(conn: Connection) -> None:
            for key, value in fields.items():
                where = (
                    (model_card_fields.c.name == name)
                    & (model_card_fields.c.version == version)
                    & (model_card_fields.c.field == key)
                )
                conn.execute(delete(model_card_fields).where(where))
                if value.strip():
                    conn.execute(
                        model_card_fields.insert().values(
                            name=name, version=version, field=key, value=value, updated_ms=now
                        )
                    )

        self._write(work)

    def card_fields(self, name: str, version: int) -> dict[str, tuple[str, int]]:
        query = (
            select(model_card_fields)
            .where(model_card_fields.c.name == name, model_card_fields.c.version <= version)
            .order_by(model_card_fields.c.version.desc())
        )

        def work(conn: Connection) -> dict[str, tuple[str, int]]:
            found: dict[str, tuple[str, int]] = {}
            for row in conn.execute(query):
                found.setdefault(row.field, (row.value, row.version))
            return found

        return self._read(work)


def open_release_store(uri: str | None = None) -> ReleaseStore:
    """The release store at ``uri`` (default: the configured tracking URI)."""
    from keel.config import get_settings

    target = uri or get_settings().tracking_uri
    if target.startswith(("http://", "https://")):
        from keel.models._release_http import HttpReleaseStore  # a team server's

        return HttpReleaseStore(target)
    return SqlReleaseStore(target)
