"""Paired bootstrap of the difference of one metric between two models scored on the same rows.

Each resample draws the row indices once and scores both models on them, so the row-to-row
variation both models share cancels out of the difference. Resamples are weight matrices
(``counts[b, i]``: how often row ``i`` was drawn in resample ``b``), and every supported metric
is written as weighted sums over rows, so a whole block of resamples is a few matrix products
rather than a Python loop per resample. Blocks keep the matrix under ~4 M cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput
from keel.models._metrics import higher_is_better

FloatArray = npt.NDArray[np.float64]
_BLOCK_CELLS = 4_000_000
_EPS = float(np.finfo(np.float64).eps)
MAX_RESAMPLES = 100_000


@dataclass(frozen=True, slots=True)
class BootstrapDiff:
    """How much better model A is than model B on ``metric`` (positive: A is better, for
    lower-is-better metrics too), as observed on all rows and as a percentile interval."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    confidence: float
    resamples: int
    relative: bool


def weighted_metric(
    metric: str,
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    weights: FloatArray,
    *,
    classes: Sequence[Any] | None = None,
) -> FloatArray:
    """``metric`` under each row of ``weights`` (shape (resamples, rows)); one value per row.

    ``scores`` are predicted labels for accuracy/precision/recall/F1, class probabilities
    (rows x classes, columns in ``classes`` order) for ROC AUC, log loss and Brier score, and
    predicted values for regression metrics. With all weights 1 the values equal scikit-learn's.
    """
    fn = _METRICS.get(metric)
    if fn is None:
        raise InvalidInput(
            f"no bootstrap for metric {metric!r}; choose one of {', '.join(sorted(_METRICS))}",
            field="metric",
        )
    return fn(np.asarray(y_true), np.asarray(scores), weights, classes)


def paired_bootstrap(
    metric: str,
    y_true: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    *,
    classes: Sequence[Any] | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    relative: bool = False,
    seed: int = 0,
) -> BootstrapDiff:
    """The paired bootstrap percentile interval of ``metric(A) - metric(B)`` (or of the relative
    difference over ``|metric(B)|``), oriented so that positive means A is better."""
    truth = np.asarray(y_true)
    n = len(truth)
    if n < 2:
        raise InvalidInput("needs at least 2 rows to resample", field="data")
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise InvalidInput(f"must be within 1..{MAX_RESAMPLES}", field="resamples")
    if not 0 < confidence < 1:
        raise InvalidInput("must be strictly between 0 and 1", field="confidence")
    a, b = np.asarray(scores_a), np.asarray(scores_b)
    if len(a) != n or len(b) != n:
        raise InvalidInput("both models need one prediction per row", field="scores")
    sign = 1.0 if higher_is_better(metric) else -1.0
    ones = np.ones((1, n))
    full_a = float(weighted_metric(metric, truth, a, ones, classes=classes)[0])
    full_b = float(weighted_metric(metric, truth, b, ones, classes=classes)[0])

    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_CELLS // n))
    diffs: list[FloatArray] = []
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        weights = _resample_weights(rng, size, n)
        va = weighted_metric(metric, truth, a, weights, classes=classes)
        vb = weighted_metric(metric, truth, b, weights, classes=classes)
        diffs.append(_difference(va, vb, sign, relative))
        done += size
    spread = np.concatenate(diffs)
    spread = spread[np.isfinite(spread)]  # a resample without both classes has no ROC AUC
    observed = float(_difference(np.array([full_a]), np.array([full_b]), sign, relative)[0])
    if len(spread) < max(10, resamples // 2):
        low = high = float("nan")
    else:
        tail = (1.0 - confidence) / 2
        low, high = (float(q) for q in np.quantile(spread, [tail, 1.0 - tail]))
    return BootstrapDiff(
        metric=metric,
        a=full_a,
        b=full_b,
        diff=observed,
        low=low,
        high=high,
        confidence=confidence,
        resamples=resamples,
        relative=relative,
    )


def _difference(va: FloatArray, vb: FloatArray, sign: float, relative: bool) -> FloatArray:
    diff = sign * (va - vb)
    if not relative:
        return diff
    scale = np.abs(vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.nan)


def _resample_weights(rng: np.random.Generator, size: int, n: int) -> FloatArray:
    """Draw counts for ``size`` resamples of ``n`` rows with replacement, as one bincount."""
    draws = rng.integers(0, n, size=(size, n))
    draws += (np.arange(size) * n)[:, None]
    counts = np.bincount(draws.ravel(), minlength=size * n)
    return counts.reshape(size, n).astype(np.float64)


# -- the metrics as weighted sums ---------------------------------------------------------------

Metric = Callable[
    [npt.NDArray[Any], npt.NDArray[Any], FloatArray, Sequence[Any] | None], FloatArray
]


def _mean(weights: FloatArray, per_row: FloatArray) -> FloatArray:
    total: FloatArray = weights.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = (weights @ per_row) / total
    return out


def _accuracy(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    return _mean(w, (t == s).astype(np.float64))


def _counts(t: Any, s: Any, w: FloatArray, label: Any) -> tuple[FloatArray, ...]:
    truth, pred = (t == label).astype(np.float64), (s == label).astype(np.float64)
    tp = w @ (truth * pred)
    return tp, w @ ((1 - truth) * pred), w @ (truth * (1 - pred))


def _per_class(
    score: Callable[[FloatArray, FloatArray, FloatArray], FloatArray],
) -> Metric:
    """Binary: the positive (last) class; multiclass: the macro average over classes."""

    def metric(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
        labels = list(c) if c is not None else list(np.unique(np.concatenate([t, s])))
        picked = labels[-1:] if len(labels) == 2 else labels
        parts = []
        for label in picked:  # over classes, not rows
            tp, fp, fn = _counts(t, s, w, label)
            with np.errstate(divide="ignore", invalid="ignore"):
                parts.append(np.nan_to_num(score(tp, fp, fn), nan=0.0))
        out: FloatArray = np.mean(parts, axis=0)
        return out

    return metric


def _proba(s: Any, t: Any, c: Sequence[Any] | None) -> tuple[FloatArray, FloatArray]:
    labels = np.asarray(list(c) if c is not None else np.unique(t))
    proba = np.asarray(s, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.shape[1] != len(labels):
        raise InvalidInput("probability columns do not match the classes", field="scores")
    onehot = (t[:, None] == labels[None, :]).astype(np.float64)
    return proba, onehot


def _log_loss(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    proba, onehot = _proba(s, t, c)
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return _mean(w, -np.sum(onehot * np.log(clipped), axis=1))


def _brier(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    proba, onehot = _proba(s, t, c)
    if proba.shape[1] == 2:
        return _mean(w, (proba[:, 1] - onehot[:, 1]) ** 2)
    return _mean(w, np.sum((proba - onehot) ** 2, axis=1))


def _binary_auc(positive: FloatArray, score: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted Mann-Whitney AUC for every weight row: sort once, sum weights per tied score."""
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    wp = np.add.reduceat(w[:, order] * positive[order], starts, axis=1)
    wn = np.add.reduceat(w[:, order] * (1 - positive[order]), starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn
    pairs = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc: FloatArray = np.sum(wp * (below + 0.5 * wn), axis=1) / pairs
    return np.where(pairs > 0, auc, np.nan)


def _roc_auc(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    proba, onehot = _proba(s, t, c)
    if proba.shape[1] == 2:
        return _binary_auc(onehot[:, 1], proba[:, 1], w)
    # one-vs-rest macro average, as roc_auc_score(multi_class="ovr")
    out: FloatArray = np.mean(
        [_binary_auc(onehot[:, k], proba[:, k], w) for k in range(proba.shape[1])], axis=0
    )
    return out


def _regression(t: Any, s: Any) -> tuple[FloatArray, FloatArray]:
    return np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64)


def _mae(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    truth, pred = _regression(t, s)
    return _mean(w, np.abs(truth - pred))


def _mse(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    truth, pred = _regression(t, s)
    return _mean(w, (truth - pred) ** 2)


def _rmse(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    out: FloatArray = np.sqrt(_mse(t, s, w, c))
    return out


def _mape(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    truth, pred = _regression(t, s)
    nonzero = truth != 0
    rel = np.abs(truth - pred) / np.where(nonzero, np.abs(truth), 1.0)
    return _mean(w[:, nonzero], rel[nonzero])


def _r2(t: Any, s: Any, w: FloatArray, c: Sequence[Any] | None) -> FloatArray:
    truth, pred = _regression(t, s)
    total = w.sum(axis=1)
    mean = (w @ truth) / total
    ss_tot = w @ (truth**2) - total * mean**2
    ss_res = w @ ((truth - pred) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2: FloatArray = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 1e-12 * np.maximum(w @ (truth**2), 1.0), r2, np.nan)


_METRICS: dict[str, Metric] = {
    "accuracy": _accuracy,
    "precision": _per_class(lambda tp, fp, fn: tp / (tp + fp)),
    "recall": _per_class(lambda tp, fp, fn: tp / (tp + fn)),
    "f1": _per_class(lambda tp, fp, fn: 2 * tp / (2 * tp + fp + fn)),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "brier": _brier,
    "mae": _mae,
    "mse": _mse,
    "rmse": _rmse,
    "mape": _mape,
    "r2": _r2,
}
BOOTSTRAP_METRICS = frozenset(_METRICS)
# Metrics computed from class probabilities rather than predicted labels.
PROBA_METRICS = frozenset({"roc_auc", "log_loss", "brier"})
