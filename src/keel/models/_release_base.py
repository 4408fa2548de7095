"""The model release store contract: evaluations, approvals, promotion decisions and the
hand-written fields of model cards. ``SqlReleaseStore`` implements it on SQLite and PostgreSQL.

Records refer to versions by (name, version); the registry stays the authority on whether a
version exists, so callers check there first.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

from keel.models._release_records import Approval, EvaluationResult, PromotionDecision


class EvaluationStore(abc.ABC):
    @abc.abstractmethod
    def save_evaluation(self, result: EvaluationResult) -> EvaluationResult:
        """Store an evaluation (its ``id`` chosen by the caller, unique)."""

    @abc.abstractmethod
    def list_evaluations(self, name: str, version: int | None = None) -> list[EvaluationResult]:
        """Evaluations of ``name`` (of one version if given), newest first."""


class DecisionStore(abc.ABC):
    @abc.abstractmethod
    def add_approval(self, name: str, version: int, *, user: str, comment: str = "") -> Approval:
        """Record ``user``'s approval of a version; approving twice keeps the first record."""

    @abc.abstractmethod
    def list_approvals(self, name: str, version: int) -> list[Approval]:
        """Approvals of one version, oldest first."""

    @abc.abstractmethod
    def save_decision(self, decision: PromotionDecision) -> PromotionDecision:
        """Store a decision with its evidence (``id`` chosen by the caller, unique)."""

    @abc.abstractmethod
    def mark_moved(self, decision_id: str) -> PromotionDecision:
        """Record that the alias of a stored decision has moved."""

    @abc.abstractmethod
    def list_decisions(self, name: str, version: int | None = None) -> list[PromotionDecision]:
        """Decisions about ``name`` (one version if given), newest first."""


class CardStore(abc.ABC):
    @abc.abstractmethod
    def set_card_fields(self, name: str, version: int, fields: Mapping[str, str]) -> None:
        """Set hand-written card fields of a version (an empty value removes the field)."""

    @abc.abstractmethod
    def card_fields(self, name: str, version: int) -> dict[str, tuple[str, int]]:
        """Each field's text and the version it was set on: this version's own value, else
        the nearest earlier version's (a card carries its predecessor's words until edited)."""


class ReleaseStore(EvaluationStore, DecisionStore, CardStore, abc.ABC):
    """Everything model releases persist. Implementations raise only ``keel.errors`` types."""

    def close(self) -> None:
        """Release connections."""
