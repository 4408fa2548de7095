"""Evaluation metrics over whole arrays (scikit-learn and NumPy, no per-row Python).

Classification: accuracy, precision, recall, F1 (binary: of the last class, the positive one;
multiclass: macro averages), ROC AUC (multiclass: one-vs-rest macro), log loss, Brier score,
expected calibration error, a reliability curve and the confusion matrix. Regression: MAE, MSE,
RMSE, R² and MAPE. A metric that is undefined on the data at hand (ROC AUC with one class
present, R² over fewer than two rows) is left out of the result rather than reported as NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput

# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "mse", "rmse", "mape"})
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "mape")
CALIBRATION_BINS = 10
# Probabilities are clipped away from 0 and 1 before log loss so a confident miss costs a large
# but finite amount, as scikit-learn does.
_EPS = float(np.finfo(np.float64).eps)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """Counts of (true label, predicted label); ``counts[i][j]``: true ``labels[i]`` predicted
    as ``labels[j]``."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "counts": [list(r) for r in self.counts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfusionMatrix:
        return cls(
            labels=tuple(str(x) for x in data["labels"]),
            counts=tuple(tuple(int(c) for c in row) for row in data["counts"]),
        )


@dataclass(frozen=True, slots=True)
class Calibration:
    """A reliability curve over equal-width probability bins (empty bins left out) with the
    Brier score and the expected calibration error. Binary models: the predicted probability of
    the positive class against the observed positive rate. Multiclass: the top class's
    probability (confidence) against the observed accuracy."""

    mean_predicted: tuple[float, ...]
    observed: tuple[float, ...]
    counts: tuple[int, ...]
    brier: float
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_predicted": list(self.mean_predicted),
            "observed": list(self.observed),
            "counts": list(self.counts),
            "brier": self.brier,
            "ece": self.ece,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            mean_predicted=tuple(float(x) for x in data["mean_predicted"]),
            observed=tuple(float(x) for x in data["observed"]),
            counts=tuple(int(x) for x in data["counts"]),
            brier=float(data["brier"]),
            ece=float(data["ece"]),
        )


def label_text(value: object) -> str:
    """A class label as people read it (``1`` not ``1.0`` for whole floats, ``np.int64``)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def check_proba(proba: npt.ArrayLike, *, rows: int, classes: int) -> npt.NDArray[np.float64]:
    """Class probabilities as a (rows, classes) float array; one column means P(positive)."""
    array = np.asarray(proba, dtype=np.float64)
    if array.ndim == 1:
        array = np.column_stack([1.0 - array, array])
    if array.shape != (rows, classes):
        raise InvalidInput(
            f"probabilities have shape {array.shape}, expected ({rows}, {classes}) for "
            f"{classes} classes",
            field="proba",
        )
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise InvalidInput("probabilities must be finite and within [0, 1]", field="proba")
    return array


def classification_metrics(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    proba: npt.NDArray[np.float64] | None = None,
    *,
    classes: Sequence[Any],
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and, with ``proba`` (columns in ``classes`` order), ROC
    AUC, log loss, Brier score and ECE."""
    from sklearn import metrics as skm

    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(classes)
    binary = len(labels) == 2
    out: dict[str, float] = {"accuracy": float(skm.accuracy_score(truth, pred))}
    average = "binary" if binary else "macro"
    common: dict[str, Any] = {"labels": labels, "average": average, "zero_division": 0}
    if binary:
        common["pos_label"] = labels[1]
    out["precision"] = float(skm.precision_score(truth, pred, **common))
    out["recall"] = float(skm.recall_score(truth, pred, **common))
    out["f1"] = float(skm.f1_score(truth, pred, **common))
    if proba is None:
        return out
    present = np.isin(np.asarray(labels), truth)
    if present.all():
        if binary:
            out["roc_auc"] = float(skm.roc_auc_score(truth == labels[1], proba[:, 1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro", labels=labels)
            )
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    clipped /= clipped.sum(axis=1, keepdims=True)
    out["log_loss"] = float(skm.log_loss(truth, clipped, labels=labels))
    calibration = reliability(truth, proba, classes=labels)
    out["brier"] = calibration.brier
    out["ece"] = calibration.ece
    return out


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """MAE, MSE, RMSE, R² (two rows or more) and MAPE (rows with a zero target left out of
    MAPE: the relative error of a zero is undefined)."""
    from sklearn import metrics as skm

    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    mse = float(skm.mean_squared_error(truth, pred))
    out = {"mae": float(skm.mean_absolute_error(truth, pred)), "mse": mse, "rmse": mse**0.5}
    if len(truth) >= 2 and np.ptp(truth) > 0:
        out["r2"] = float(skm.r2_score(truth, pred))
    nonzero = truth != 0
    if nonzero.any():
        out["mape"] = float(skm.mean_absolute_percentage_error(truth[nonzero], pred[nonzero]))
    return out


def confusion(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, classes: Sequence[Any]
) -> ConfusionMatrix:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(classes))
    return ConfusionMatrix(
        labels=tuple(label_text(c) for c in classes),
        counts=tuple(tuple(int(c) for c in row) for row in matrix),
    )


def reliability(
    y_true: npt.ArrayLike,
    proba: npt.NDArray[np.float64],
    *,
    classes: Sequence[Any],
    bins: int = CALIBRATION_BINS,
) -> Calibration:
    """The reliability curve, Brier score and ECE (bins as ``sklearn.calibration``'s uniform
    strategy, so the curve matches ``calibration_curve``)."""
    truth = np.asarray(y_true)
    labels = np.asarray(list(classes))
    onehot = (truth[:, None] == labels[None, :]).astype(np.float64)
    if len(labels) == 2:
        score = proba[:, 1]
        hit = onehot[:, 1]
        brier = float(np.mean((score - hit) ** 2))
    else:
        top = proba.argmax(axis=1)
        score = proba[np.arange(len(proba)), top]
        hit = (labels[top] == truth).astype(np.float64)
        brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], score)
    total = np.bincount(ids, minlength=bins)
    sums = np.bincount(ids, weights=score, minlength=bins)
    hits = np.bincount(ids, weights=hit, minlength=bins)
    used = total > 0
    mean_pred = sums[used] / total[used]
    observed = hits[used] / total[used]
    ece = float(np.sum(total[used] * np.abs(observed - mean_pred)) / max(len(score), 1))
    return Calibration(
        mean_predicted=tuple(float(x) for x in mean_pred),
        observed=tuple(float(x) for x in observed),
        counts=tuple(int(x) for x in total[used]),
        brier=brier,
        ece=ece,
    )


def slice_metrics(
    column: npt.ArrayLike,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    proba: npt.NDArray[np.float64] | None,
    *,
    classes: Sequence[Any] | None,
    max_values: int = 100,
    field: str = "slices",
) -> dict[str, dict[str, float]]:
    """Metrics per distinct value of ``column`` (missing values form the slice ``"<missing>"``),
    each with its row count under ``"rows"``. One pass of the vectorised metrics per value."""
    import pandas as pd

    values = pd.Series(np.asarray(column, dtype=object)).fillna("<missing>").map(label_text)
    codes, uniques = pd.factorize(values, sort=True)
    if len(uniques) > max_values:
        raise InvalidInput(
            f"has {len(uniques)} distinct values; slices need at most {max_values} "
            "(bucket the column first)",
            field=field,
        )
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    out: dict[str, dict[str, float]] = {}
    for code, value in enumerate(uniques):
        mask = codes == code
        if classes is None:
            found = regression_metrics(truth[mask], pred[mask])
        else:
            part = None if proba is None else proba[mask]
            found = classification_metrics(truth[mask], pred[mask], part, classes=classes)
        out[str(value)] = {"rows": float(mask.sum()), **found}
    return out
