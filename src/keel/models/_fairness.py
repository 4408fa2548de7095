"""Group fairness of a classifier across a sensitive column, via fairlearn.

``demographic_parity_difference``: the largest gap in selection rate (share predicted
positive) between groups. ``equalized_odds_difference``: the larger of the largest gaps in
true-positive rate and false-positive rate between groups. 0 means no gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput
from keel.models._metrics import label_text

FAIRNESS_METRICS = ("demographic_parity_difference", "equalized_odds_difference")


@dataclass(frozen=True, slots=True)
class FairnessResult:
    metric: str
    sensitive: str
    value: float
    # per group: its rows and the rates the metric compares
    groups: dict[str, dict[str, float]]


def fairness(
    metric: str,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    sensitive: npt.ArrayLike,
    *,
    sensitive_name: str,
    classes: Sequence[Any],
) -> FairnessResult:
    """``metric`` of predictions ``y_pred`` across the groups of ``sensitive`` (a binary task;
    the last of ``classes`` is the positive outcome)."""
    if metric not in FAIRNESS_METRICS:
        raise InvalidInput(
            f"unknown fairness metric {metric!r}; choose {' or '.join(FAIRNESS_METRICS)}",
            field="fairness.metric",
        )
    labels = list(classes)
    if len(labels) != 2:
        raise InvalidInput(
            f"fairness gates need a binary classifier; this one has {len(labels)} classes",
            field="fairness",
        )
    import pandas as pd
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    truth = (np.asarray(y_true) == labels[1]).astype(int)
    pred = (np.asarray(y_pred) == labels[1]).astype(int)
    groups = pd.Series(np.asarray(sensitive, dtype=object)).fillna("<missing>").map(label_text)
    if groups.nunique() < 2:
        raise InvalidInput(
            f"column {sensitive_name!r} has one group only; fairness compares two or more",
            field="fairness.sensitive",
        )
    fn = (
        demographic_parity_difference
        if metric == "demographic_parity_difference"
        else equalized_odds_difference
    )
    value = float(fn(truth, pred, sensitive_features=groups))
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=truth,
        y_pred=pred,
        sensitive_features=groups.rename(sensitive_name),
    )
    per_group = frame.by_group
    counts = groups.value_counts()
    table = {
        str(group): {
            "rows": float(counts[group]),
            **{k: float(v) for k, v in per_group.loc[group].items() if np.isfinite(v)},
        }
        for group in per_group.index
    }
    return FairnessResult(metric=metric, sensitive=sensitive_name, value=value, groups=table)
