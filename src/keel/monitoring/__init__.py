"""Monitoring: drift between a reference and current data (see ``docs/monitoring.md``), and
the prediction log read back with its delayed labels (``read_predictions``).

``assess_drift(reference, current)`` tests each column with a test chosen by its type and the
sample sizes (overridable), from summaries binned on edges fixed by the reference, so a
``ReferenceProfile`` is computed once, stored as JSON, and reused for every window. NumPy,
pyarrow, SciPy and scikit-learn load on first use, not on ``import keel.monitoring``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring._drift import (
        DEFAULT_THRESHOLDS,
        TESTS,
        assess_column,
        assess_drift,
        assess_prediction_drift,
        default_test,
    )
    from keel.monitoring._predlog import read_predictions
    from keel.monitoring._records import ColumnDrift, DriftReport, MultivariateDrift
    from keel.monitoring._reference import ColumnSummary, ReferenceProfile

_LAZY = {
    "assess_drift": "keel.monitoring._drift",
    "assess_column": "keel.monitoring._drift",
    "assess_prediction_drift": "keel.monitoring._drift",
    "default_test": "keel.monitoring._drift",
    "DEFAULT_THRESHOLDS": "keel.monitoring._drift",
    "TESTS": "keel.monitoring._drift",
    "ColumnDrift": "keel.monitoring._records",
    "DriftReport": "keel.monitoring._records",
    "MultivariateDrift": "keel.monitoring._records",
    "read_predictions": "keel.monitoring._predlog",
    "ColumnSummary": "keel.monitoring._reference",
    "ReferenceProfile": "keel.monitoring._reference",
}

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TESTS",
    "ColumnDrift",
    "ColumnSummary",
    "DriftReport",
    "MultivariateDrift",
    "ReferenceProfile",
    "assess_column",
    "assess_drift",
    "assess_prediction_drift",
    "default_test",
    "read_predictions",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.monitoring' has no attribute {name!r}")
