"""Frozen records of model releases: evaluations, approvals, promotion decisions."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.models._gates import GateResult
from keel.models._metrics import Calibration, ConfusionMatrix

# Card fields people write; everything else on a card is generated from stored facts.
CARD_FIELDS = ("intended_use", "limitations", "ethical_considerations", "owner")
MAX_CARD_FIELD = 20_000


def new_id() -> str:
    """32 hex characters that sort by creation time (nanoseconds, then 64 random bits), so
    records made within one millisecond still list in the order they were made."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """One evaluation of a model version on a dataset version."""

    id: str
    name: str
    version: int
    dataset: str  # the dataset version, name@vN
    dataset_digest: str | None
    target: str
    task: str  # classification | regression
    rows: int
    metrics: Mapping[str, float]
    classes: tuple[str, ...] = ()
    confusion: ConfusionMatrix | None = None
    calibration: Calibration | None = None
    # column -> slice value -> metrics (with "rows")
    slices: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    business: Mapping[str, float] = field(default_factory=dict)
    run_id: str | None = None
    created_ms: int = 0

    @property
    def model_ref(self) -> str:
        return f"{self.name}/{self.version}"

    def details(self) -> dict[str, Any]:
        """Everything but the identifying columns, as stored in one JSON document."""
        return {
            "classes": list(self.classes),
            "confusion": None if self.confusion is None else self.confusion.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "slices": {k: {s: dict(m) for s, m in v.items()} for k, v in self.slices.items()},
            "business": dict(self.business),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model_ref,
            "name": self.name,
            "version": self.version,
            "dataset": self.dataset,
            "dataset_digest": self.dataset_digest,
            "target": self.target,
            "task": self.task,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            **self.details(),
            "run_id": self.run_id,
            "created_ms": self.created_ms,
        }


def evaluation_from_parts(
    base: Mapping[str, Any], metrics: Mapping[str, float], details: Mapping[str, Any]
) -> EvaluationResult:
    confusion = details.get("confusion")
    calibration = details.get("calibration")
    return EvaluationResult(
        id=str(base["id"]),
        name=str(base["name"]),
        version=int(base["version"]),
        dataset=str(base["dataset"]),
        dataset_digest=base.get("dataset_digest"),
        target=str(base["target"]),
        task=str(base["task"]),
        rows=int(base["rows"]),
        metrics={str(k): float(v) for k, v in metrics.items()},
        classes=tuple(str(c) for c in details.get("classes", ())),
        confusion=None if confusion is None else ConfusionMatrix.from_dict(confusion),
        calibration=None if calibration is None else Calibration.from_dict(calibration),
        slices=details.get("slices", {}),
        business={str(k): float(v) for k, v in details.get("business", {}).items()},
        run_id=base.get("run_id"),
        created_ms=int(base.get("created_ms", 0)),
    )


@dataclass(frozen=True, slots=True)
class Approval:
    name: str
    version: int
    user: str
    comment: str
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": f"{self.name}/{self.version}",
            "user": self.user,
            "comment": self.comment,
            "created_ms": self.created_ms,
        }


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """A gate check of ``name/version`` for ``alias`` and what came of it: ``action`` is
    ``promote`` (the alias moves when ``moved``) or ``check`` (``keel ci gate``: nothing
    moves). ``override_reason`` is set when someone moved the alias past failing gates."""

    id: str
    name: str
    version: int
    alias: str
    action: str
    passed: bool
    moved: bool
    actor: str
    gates: tuple[GateResult, ...]
    previous_version: int | None = None  # who held the alias when the gates ran
    dataset: str | None = None
    evaluation_id: str | None = None
    override_reason: str | None = None
    source: str = ""  # the gates file
    created_ms: int = 0

    @property
    def overridden(self) -> bool:
        return self.override_reason is not None

    @property
    def failed_gates(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": f"{self.name}/{self.version}",
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "action": self.action,
            "passed": self.passed,
            "moved": self.moved,
            "actor": self.actor,
            "override_reason": self.override_reason,
            "previous_version": self.previous_version,
            "dataset": self.dataset,
            "evaluation_id": self.evaluation_id,
            "source": self.source,
            "created_ms": self.created_ms,
            "gates": [g.to_dict() for g in self.gates],
        }
