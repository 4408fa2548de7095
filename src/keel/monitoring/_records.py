"""Frozen records of a drift assessment; ``to_dict()`` is JSON-safe (None, never NaN)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OK = "ok"
DRIFT = "drift"
INSUFFICIENT = "insufficient_data"


def _safe(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. ``statistic`` is the test's statistic or distance; ``p_value``
    is set for the KS and chi-squared tests, whose ``threshold`` is a p-value (drift when
    ``p_value < threshold``); for distances and PSI drift is ``statistic >= threshold``."""

    column: str
    type: str
    test: str | None
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    status: str
    reason: str = ""
    reference_count: int = 0
    current_count: int = 0
    unseen: tuple[tuple[str, int], ...] = ()

    @property
    def score(self) -> float | None:
        """The number compared with the threshold (p-value or distance)."""
        return self.p_value if self.p_value is not None else self.statistic

    @property
    def unseen_share(self) -> float:
        return sum(c for _, c in self.unseen) / self.current_count if self.current_count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "type": self.type,
            "test": self.test,
            "statistic": _safe(self.statistic),
            "p_value": _safe(self.p_value),
            "threshold": _safe(self.threshold),
            "drifted": self.drifted,
            "status": self.status,
            "reason": self.reason,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "unseen": [[k, v] for k, v in self.unseen],
            "unseen_share": self.unseen_share,
        }


@dataclass(frozen=True)
class MultivariateDrift:
    """A domain classifier's verdict: ``auc`` is the cross-validated ROC AUC of telling
    reference rows from current rows (0.5: indistinguishable); ``importances`` are the
    classifier's feature importances, largest first."""

    auc: float | None
    auc_std: float | None
    threshold: float
    drifted: bool
    status: str
    reason: str = ""
    rows_reference: int = 0
    rows_current: int = 0
    folds: int = 0
    importances: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": _safe(self.auc),
            "auc_std": _safe(self.auc_std),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "status": self.status,
            "reason": self.reason,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "folds": self.folds,
            "importances": [[k, _safe(v)] for k, v in self.importances],
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column results, the share of tested columns that drifted (columns with
    insufficient data are not counted), and the multivariate result if one was computed."""

    reference: str
    current: str
    rows_reference: int
    rows_current: int
    columns: tuple[ColumnDrift, ...]
    drift_share_threshold: float
    multivariate: MultivariateDrift | None = None

    @property
    def tested(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.status != INSUFFICIENT)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    @property
    def drift_share(self) -> float:
        tested = self.tested
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when the drift share reaches the threshold (or the domain classifier drifts)."""
        by_share = bool(self.tested) and self.drift_share >= self.drift_share_threshold
        return by_share or bool(self.multivariate and self.multivariate.drifted)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "current": self.current,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "drifted_columns": list(self.drifted_columns),
            "dataset_drift": self.dataset_drift,
            "columns": [c.to_dict() for c in self.columns],
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
        }
