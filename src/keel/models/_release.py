"""Model releases on the configured stores: ``keel.models.evaluate``, ``promote``,
``check_gates``, ``approve``, ``decisions``, ``evaluations``, ``card`` and ``set_card``.

See ``docs/models-release.md``. Identities (``actor``, ``user``) are what the caller says: the
library has no login. The team server passes the authenticated user instead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.models._evaluate import BusinessMetric, Task
from keel.models._gates import GateResult, GateSpec, load_gates
from keel.models._promote import GatesArg
from keel.models._release_records import Approval, EvaluationResult, PromotionDecision

if TYPE_CHECKING:
    from keel.data import DatasetVersion
    from keel.models._card import ModelCard
    from keel.models._records import ModelVersion
    from keel.models._release_base import ReleaseStore

__all__ = [
    "Approval",
    "EvaluationResult",
    "GateResult",
    "GateSpec",
    "PromotionDecision",
    "approve",
    "card",
    "check_gates",
    "decisions",
    "evaluate",
    "evaluations",
    "load_gates",
    "promote",
    "releases",
    "set_card",
    "write_card",
]

_default: dict[str, ReleaseStore] = {}
_lock = threading.Lock()


def releases() -> ReleaseStore:
    """The release store at the configured tracking URI (rebuilt when it changes)."""
    from keel.config import get_settings
    from keel.models._release_sql import open_release_store

    uri = get_settings().tracking_uri
    with _lock:
        found = _default.get(uri)
        if found is None:
            found = open_release_store(uri)
            _default.clear()
            _default[uri] = found
    return found


def _models() -> Any:
    from keel.models import default

    return default()


def evaluate(
    model_uri: str | ModelVersion,
    data: str | DatasetVersion,
    target: str,
    *,
    slices: Sequence[str] = (),
    business_metrics: Mapping[str, BusinessMetric] | None = None,
    features: Sequence[str] | None = None,
    task: Task = "auto",
    project: str | None = None,
) -> EvaluationResult:
    """Score a registered version (``models:/churn/4``, ``churn@champion`` …) on a dataset
    version (``churn@v3``): classification or regression metrics, calibration, confusion
    matrix, per-slice metrics for the ``slices`` columns and ``business_metrics`` (functions of
    ``y_true, y_pred, rows`` returning a number). Logged to a run whose input is the dataset
    version, and stored (``evaluations(name, version)``)."""
    from keel.models._evaluate import evaluate as _evaluate

    return _evaluate(
        _models(), releases(), model_uri, data=data, target=target, slices=slices,
        business_metrics=business_metrics, features=features, task=task, project=project,
    )  # fmt: skip


def promote(
    name: str,
    version: int,
    alias: str = "champion",
    *,
    gates: GatesArg = None,
    override_reason: str | None = None,
    actor: str | None = None,
    data: str | None = None,
    target: str | None = None,
) -> PromotionDecision:
    """Run the gates for ``alias`` (from ``keel.toml``, or ``gates``: a file path, a parsed
    table or a ``GateSpec``), record the decision, and move the alias when all pass or an
    ``override_reason`` is given. Check ``decision.moved``; ``decision.gates`` has the
    evidence."""
    from keel.models._promote import promote as _promote

    return _promote(
        _models(), releases(), name, version, alias, gates=gates,
        override_reason=override_reason, actor=actor, data=data, target=target,
    )  # fmt: skip


def check_gates(
    name: str,
    version: int,
    alias: str = "champion",
    *,
    gates: GatesArg = None,
    actor: str | None = None,
    data: str | None = None,
    target: str | None = None,
) -> PromotionDecision:
    """Run the gates without moving anything (``keel ci gate``); the check is recorded."""
    from keel.models._promote import promote as _promote

    return _promote(
        _models(), releases(), name, version, alias, gates=gates, actor=actor, data=data,
        target=target, move=False,
    )  # fmt: skip


def approve(name: str, version: int, *, user: str | None = None, comment: str = "") -> Approval:
    """Record ``user``'s (default: the current user's) approval; authors cannot approve their
    own versions."""
    from keel.models._promote import approve as _approve

    return _approve(_models(), releases(), name, version, user=user, comment=comment)


def approvals(name: str, version: int) -> list[Approval]:
    return releases().list_approvals(name, version)


def decisions(name: str, version: int | None = None) -> list[PromotionDecision]:
    """Promotion decisions and gate checks of ``name`` (one version if given), newest first."""
    return releases().list_decisions(name, version)


def evaluations(name: str, version: int | None = None) -> list[EvaluationResult]:
    """Stored evaluations of ``name`` (one version if given), newest first."""
    return releases().list_evaluations(name, version)


def set_card(name: str, version: int, **fields: str) -> None:
    """Set the hand-written fields of a version's card: ``intended_use``, ``limitations``,
    ``ethical_considerations``, ``owner`` (an empty string removes one)."""
    _models().registry.get_version(name, version)  # the version must exist
    releases().set_card_fields(name, version, fields)


def card(uri: str) -> ModelCard:
    """The facts of a version's model card, gathered from the stores now."""
    from keel.models._card import gather

    return gather(_models(), releases(), uri)


def write_card(
    uri: str, out: str | Path = ".", *, formats: Sequence[str] = ("md", "html")
) -> list[Path]:
    """Render the card of ``uri`` into ``out`` as Markdown and/or HTML; returns the files."""
    from keel.models._card import write

    return write(card(uri), Path(out), formats=formats)
