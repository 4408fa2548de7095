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
Weighted = Callable[[FloatArray], FloatArray]  # row weights (resamples, rows) -> one value each
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
    return prepare(metric, y_true, scores, classes=classes)(weights)


def prepare(
    metric: str, y_true: npt.ArrayLike, scores: npt.ArrayLike, *, classes: Sequence[Any] | None
) -> Weighted:
    """``metric`` of fixed truth and scores as a function of the row weights. The per-row work
    (losses, indicator columns, the sort behind ROC AUC) is done here, once per model."""
    fn = _METRICS.get(metric)
    if fn is None:
        raise InvalidInput(
            f"no bootstrap for metric {metric!r}; choose one of {', '.join(sorted(_METRICS))}",
            field="metric",
        )
    return fn(np.asarray(y_true), np.asarray(scores), classes)


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
    score_a = prepare(metric, truth, a, classes=classes)
    score_b = prepare(metric, truth, b, classes=classes)
    ones = np.ones((1, n))
    full_a, full_b = float(score_a(ones)[0]), float(score_b(ones)[0])

    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_CELLS // n))
    diffs: list[FloatArray] = []
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        weights = _resample_weights(rng, size, n)
        diffs.append(_difference(score_a(weights), score_b(weights), sign, relative))
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
    """Counts for ``size`` resamples of ``n`` rows drawn with replacement (one bincount per
    resample: faster than one over the whole block, which needs 64-bit offsets)."""
    draws = rng.integers(0, n, size=(size, n), dtype=np.int32)
    weights = np.empty((size, n), dtype=np.float64)
    for b in range(size):  # over resamples; each is one vectorised count over all rows
        weights[b] = np.bincount(draws[b], minlength=n)
    return weights


# -- the metrics as weighted sums ---------------------------------------------------------------

Prepare = Callable[[npt.NDArray[Any], npt.NDArray[Any], Sequence[Any] | None], Weighted]


def _mean_of(per_row: FloatArray) -> Weighted:
    def weighted(w: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = (w @ per_row) / w.sum(axis=1)
        return out

    return weighted


def _accuracy(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    return _mean_of((t == s).astype(np.float64))


def _per_class(score: Callable[[FloatArray, FloatArray, FloatArray], FloatArray]) -> Prepare:
    """Binary: the positive (last) class; multiclass: the macro average over classes."""

    def prep(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
        labels = list(c) if c is not None else list(np.unique(np.concatenate([t, s])))
        picked = labels[-1:] if len(labels) == 2 else labels
        # per class: the rows counting as true positives, false positives, false negatives
        columns = []
        for label in picked:  # over classes, not rows
            truth, pred = (t == label).astype(np.float64), (s == label).astype(np.float64)
            columns += [truth * pred, (1 - truth) * pred, truth * (1 - pred)]
        stacked = np.column_stack(columns)

        def weighted(w: FloatArray) -> FloatArray:
            counts = w @ stacked
            parts = []
            for k in range(len(picked)):
                tp, fp, fn = counts[:, 3 * k], counts[:, 3 * k + 1], counts[:, 3 * k + 2]
                with np.errstate(divide="ignore", invalid="ignore"):
                    parts.append(np.nan_to_num(score(tp, fp, fn), nan=0.0))
            out: FloatArray = np.mean(parts, axis=0)
            return out

        return weighted

    return prep


def _proba(s: Any, t: Any, c: Sequence[Any] | None) -> tuple[FloatArray, FloatArray]:
    labels = np.asarray(list(c) if c is not None else np.unique(t))
    proba = np.asarray(s, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.shape[1] != len(labels):
        raise InvalidInput("probability columns do not match the classes", field="scores")
    onehot = (t[:, None] == labels[None, :]).astype(np.float64)
    return proba, onehot


def _log_loss(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    proba, onehot = _proba(s, t, c)
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return _mean_of(-np.sum(onehot * np.log(clipped), axis=1))


def _brier(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    proba, onehot = _proba(s, t, c)
    if proba.shape[1] == 2:
        return _mean_of((proba[:, 1] - onehot[:, 1]) ** 2)
    return _mean_of(np.sum((proba - onehot) ** 2, axis=1))


def _binary_auc(positive: FloatArray, score: FloatArray) -> Weighted:
    """Weighted Mann-Whitney AUC: rows sorted by score once; per weight row, the positives'
    weight times the negatives' weight below them (ties count half), over all pairs."""
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    pos = positive[order]
    ties = len(starts) < len(score)

    def weighted(w: FloatArray) -> FloatArray:
        ws = w[:, order]
        wp, wn = ws * pos, ws * (1 - pos)
        if ties:  # sum weights per group of equal scores
            wp = np.add.reduceat(wp, starts, axis=1)
            wn = np.add.reduceat(wn, starts, axis=1)
        below = np.cumsum(wn, axis=1) - wn
        pairs = wp.sum(axis=1) * wn.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auc: FloatArray = np.sum(wp * (below + 0.5 * wn), axis=1) / pairs
        return np.where(pairs > 0, auc, np.nan)

    return weighted


def _roc_auc(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    proba, onehot = _proba(s, t, c)
    if proba.shape[1] == 2:
        return _binary_auc(onehot[:, 1], proba[:, 1])
    # one-vs-rest macro average, as roc_auc_score(multi_class="ovr")
    per_class = [_binary_auc(onehot[:, k], proba[:, k]) for k in range(proba.shape[1])]

    def weighted(w: FloatArray) -> FloatArray:
        out: FloatArray = np.mean([fn(w) for fn in per_class], axis=0)
        return out

    return weighted


def _regression(t: Any, s: Any) -> tuple[FloatArray, FloatArray]:
    return np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64)


def _mae(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    truth, pred = _regression(t, s)
    return _mean_of(np.abs(truth - pred))


def _mse(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    truth, pred = _regression(t, s)
    return _mean_of((truth - pred) ** 2)


def _rmse(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    mse = _mse(t, s, c)
    return lambda w: np.sqrt(mse(w))


def _mape(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    truth, pred = _regression(t, s)
    nonzero = truth != 0
    rel = (np.abs(truth - pred) / np.where(nonzero, np.abs(truth), 1.0))[nonzero]
    mean = _mean_of(rel)
    return lambda w: mean(w[:, nonzero])


def _r2(t: Any, s: Any, c: Sequence[Any] | None) -> Weighted:
    truth, pred = _regression(t, s)
    columns = np.column_stack([truth, truth**2, (truth - pred) ** 2])

    def weighted(w: FloatArray) -> FloatArray:
        total = w.sum(axis=1)
        sums = w @ columns
        mean = sums[:, 0] / total
        ss_tot = sums[:, 1] - total * mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2: FloatArray = 1.0 - sums[:, 2] / ss_tot
        return np.where(ss_tot > 1e-12 * np.maximum(sums[:, 1], 1.0), r2, np.nan)

    return weighted


_METRICS: dict[str, Prepare] = {
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
