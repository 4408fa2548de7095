"""The metrics of one group of labelled rows, and champion vs challenger on the same requests.

Classification: accuracy, precision, recall and F1 (binary: of the positive class; otherwise
macro averages) and the confusion matrix, all from one ``bincount`` of (true, predicted) codes,
which gives scikit-learn's values (``zero_division=0``) without its per-call input checks (a
window may have hundreds of groups). Regression: MAE, MSE, RMSE, R² and MAPE (rows with a zero
label left out of MAPE) from ``keel.models._metrics``. A metric that cannot be computed is None
with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.monitoring._quantities import Quantity

if TYPE_CHECKING:
    from keel.models._metrics import ConfusionMatrix
    from keel.monitoring._performance_align import Aligned, BusinessRule

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
REGRESSION = ("mae", "mse", "rmse", "r2", "mape")
# The paired bootstrap draws at most this many rows per metric (resamples x pairs); past it
# the resamples shrink, down to MIN_RESAMPLES, so a million pairs stay in seconds.
MAX_DRAWS = 50_000_000
MIN_RESAMPLES = 200


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class BusinessValue:
    """A business metric over ``n`` labelled rows: its ``total`` and ``per_row`` mean."""

    total: float | None
    n: int
    reason: str = ""

    @property
    def per_row(self) -> float | None:
        return self.total / self.n if self.total is not None and self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"total": _finite(self.total), "per_row": _finite(self.per_row), "n": self.n,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Metrics:
    """Metrics over ``n`` rows that have both a label and a prediction. ``values`` holds every
    metric of the task (None when not computable, ``reasons`` says why); ``missing_labels``
    counts the group's rows still waiting for a label."""

    n: int
    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    confusion: ConfusionMatrix | None = None
    business: dict[str, BusinessValue] = field(default_factory=dict)
    missing_labels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "missing_labels": self.missing_labels,
            "values": {k: _finite(v) for k, v in self.values.items()},
            "reasons": dict(self.reasons),
            "confusion": None if self.confusion is None else self.confusion.to_dict(),
            "business": {k: v.to_dict() for k, v in self.business.items()},
        }

    def quantities(self, prefix: str) -> dict[str, Quantity]:
        out = {f"{prefix}.{k}": Quantity(v, self.n) for k, v in self.values.items()}
        for name, value in self.business.items():
            out[f"{prefix}.business.{name}"] = Quantity(value.per_row, self.n)
        return out


def _empty(task: str, n: int, reason: str, missing: int) -> Metrics:
    names = CLASSIFICATION if task == "classification" else REGRESSION
    return Metrics(n, dict.fromkeys(names), dict.fromkeys(names, reason), missing_labels=missing)


def _from_counts(counts: Any) -> dict[str, float]:
    """Precision, recall and F1 from a confusion matrix exactly as scikit-learn computes them
    with ``zero_division=0``: of the last (positive) class when there are two classes, else
    macro averages over every class of the window."""
    import numpy as np

    tp = np.diag(counts).astype(np.float64)
    fp = counts.sum(axis=0) - tp
    fn = counts.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    pick = slice(-1, None) if len(tp) == 2 else slice(None)
    return {
        "precision": float(np.mean(precision[pick])),
        "recall": float(np.mean(recall[pick])),
        "f1": float(np.mean(f1[pick])),
    }


def compute(
    aligned: Aligned, mask: Any, rules: Sequence[BusinessRule], *, missing_labels: int = 0
) -> Metrics:
    """The metrics of the rows ``mask`` selects that have a label and a prediction."""
    import numpy as np

    from keel.models import _metrics
    from keel.monitoring._performance_align import business_value

    rows = np.flatnonzero(mask & aligned.usable)
    n = len(rows)
    if n == 0:
        reason = (
            "no labelled rows with a prediction"
            if missing_labels < int(np.sum(mask))
            else "no labels have arrived for these rows"
        )
        metrics = _empty(aligned.task, 0, reason, missing_labels)
    elif aligned.task == "classification":
        truth, pred = aligned.truth[rows], aligned.predicted[rows]
        k = len(aligned.classes)
        # counts[i][j]: true class i predicted as j (sklearn's confusion_matrix, by bincount)
        counts = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
        confusion = _metrics.ConfusionMatrix(
            labels=aligned.classes, counts=tuple(tuple(int(c) for c in row) for row in counts)
        )
        values: dict[str, float | None] = dict.fromkeys(CLASSIFICATION)
        reasons: dict[str, str] = {}
        values["accuracy"] = float(np.trace(counts)) / n
        present = np.flatnonzero(counts.sum(axis=0) + counts.sum(axis=1))
        if len(present) < 2:
            only = aligned.classes[int(present[0])]
            for name in CLASSIFICATION[1:]:
                reasons[name] = f"only one class ({only}) among the labels and predictions"
        else:
            values.update(_from_counts(counts))
        metrics = Metrics(n, values, reasons, confusion, missing_labels=missing_labels)
    else:
        truth, pred = aligned.truth[rows], aligned.predicted[rows]
        found = _metrics.regression_metrics(truth, pred)
        values = {name: found.get(name) for name in REGRESSION}
        reasons = {}
        if values["r2"] is None:
            reasons["r2"] = "needs two or more rows with different labels"
        if values["mape"] is None:
            reasons["mape"] = "every label is 0 (relative error undefined)"
        metrics = Metrics(n, values, reasons, missing_labels=missing_labels)
    business = {}
    for rule in rules:
        total, why = business_value(rule, aligned, rows) if n else (None, "no labelled rows")
        business[rule.name] = BusinessValue(total, n, why)
    return Metrics(
        metrics.n,
        metrics.values,
        metrics.reasons,
        metrics.confusion,
        business,
        metrics.missing_labels,
    )


@dataclass(frozen=True, slots=True)
class MetricDiff:
    """Challenger minus champion on one metric, oriented so that positive means the challenger
    is better (for lower-is-better metrics too), with its paired bootstrap interval."""

    diff: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"diff": _finite(self.diff), "low": _finite(self.low), "high": _finite(self.high)}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Champion and challenger scored on the same ``n`` labelled (request, row) pairs."""

    n: int
    champion: Metrics
    challenger: Metrics
    diffs: dict[str, MetricDiff]
    challenger_versions: tuple[str, ...] = ()
    confidence: float = 0.95
    resamples: int = 0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "champion": self.champion.to_dict(),
            "challenger": self.challenger.to_dict(),
            "diffs": {k: v.to_dict() for k, v in self.diffs.items()},
            "challenger_versions": list(self.challenger_versions),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "reason": self.reason,
        }


def compare(
    aligned: Aligned,
    *,
    champion: Any,
    challenger: Any,
    keys: tuple[Any, Any],
    versions: Any,
    resamples: int = 1000,
    confidence: float = 0.95,
) -> Comparison:
    """Champion vs challenger on the labelled (request id, row) pairs both answered."""
    import numpy as np
    import pandas as pd

    from keel.models._bootstrap import paired_bootstrap

    ids, row = keys

    def side(mask: Any) -> Any:
        picked = np.flatnonzero(mask & aligned.usable)
        frame = pd.DataFrame({"id": ids[picked], "row": row[picked], "i": picked})
        return frame.drop_duplicates(["id", "row"], keep="first")

    pairs = side(champion).merge(side(challenger), on=["id", "row"], suffixes=("_a", "_b"))
    a, b = pairs["i_a"].to_numpy(), pairs["i_b"].to_numpy()
    n = len(pairs)
    # The two sides share the label (one per request id); score each on the same pairs.
    only_a = np.zeros(len(aligned.usable), dtype=bool)
    only_a[a] = True
    only_b = np.zeros(len(aligned.usable), dtype=bool)
    only_b[b] = True
    champ, chall = compute(aligned, only_a, ()), compute(aligned, only_b, ())
    names = CLASSIFICATION if aligned.task == "classification" else ("mae", "rmse", "r2", "mape")
    diffs: dict[str, MetricDiff] = {}
    reason = ""
    draws = resamples
    if n < 2:
        reason = "needs two or more labelled requests answered by both"
    else:
        draws = max(MIN_RESAMPLES, min(resamples, MAX_DRAWS // n))
        classes = list(range(len(aligned.classes))) if aligned.task == "classification" else None
        truth = aligned.truth[a]
        for name in names:
            if champ.values.get(name) is None or chall.values.get(name) is None:
                diffs[name] = MetricDiff(None, None, None)
                continue
            result = paired_bootstrap(
                name,
                truth,
                aligned.predicted[b],
                aligned.predicted[a],
                classes=classes,
                resamples=draws,
                confidence=confidence,
            )
            diffs[name] = MetricDiff(result.diff, result.low, result.high)
    picked = versions[b] if n else np.array([], dtype=object)
    return Comparison(
        n=n,
        champion=champ,
        challenger=chall,
        diffs=diffs,
        challenger_versions=tuple(sorted({str(v) for v in picked.tolist()})),
        confidence=confidence,
        resamples=draws,
        reason=reason,
    )
