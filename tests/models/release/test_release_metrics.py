"""Evaluation metrics agree with scikit-learn on known data; the bootstrap's weighted metrics equal
scikit-learn's on every resample, and its interval separates a better model from an equal one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from keel.errors import InvalidInput
from keel.models._bootstrap import BOOTSTRAP_METRICS, paired_bootstrap, weighted_metric
from keel.models._metrics import (
    classification_metrics,
    confusion,
    regression_metrics,
    reliability,
    slice_metrics,
)

RNG = np.random.default_rng(7)


def _binary(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = RNG.integers(0, 2, n)
    p1 = np.clip(0.3 * y + 0.7 * RNG.random(n), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    return y, (p1 >= 0.5).astype(int), proba


def test_binary_metrics_match_sklearn() -> None:
    y, pred, proba = _binary()
    got = classification_metrics(y, pred, proba, classes=[0, 1])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    assert 0 <= got["ece"] <= 1


def test_string_labels_use_the_last_class_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "yes"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
    got = classification_metrics(y, pred, proba, classes=["no", "yes"])
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", proba[:, 1]))


def test_multiclass_metrics_match_sklearn() -> None:
    n = 300
    y = RNG.integers(0, 3, n)
    raw = RNG.random((n, 3)) + np.eye(3)[y] * 0.8
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    got = classification_metrics(y, pred, proba, classes=[0, 1, 2])
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, proba, scale_by_half=False))


def test_regression_metrics_match_sklearn() -> None:
    y = RNG.normal(10, 3, 200)
    pred = y + RNG.normal(0, 1, 200)
    got = regression_metrics(y, pred)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))


def test_undefined_metrics_are_left_out_not_nan() -> None:
    got = classification_metrics(
        [1, 1, 1], [1, 0, 1], np.array([[0.1, 0.9], [0.6, 0.4], [0.2, 0.8]]), classes=[0, 1]
    )
    assert "roc_auc" not in got and "log_loss" in got
    assert "r2" not in regression_metrics([2.0], [1.0])
    assert "mape" not in regression_metrics([0.0, 0.0], [1.0, 2.0])


def test_reliability_curve_matches_calibration_curve_and_ece_is_known() -> None:
    y, _, proba = _binary(1000)
    curve = reliability(y, proba, classes=[0, 1])
    observed, predicted = calibration_curve(y, proba[:, 1], n_bins=10)
    assert np.allclose(curve.observed, observed) and np.allclose(curve.mean_predicted, predicted)
    assert sum(curve.counts) == 1000
    # A perfectly calibrated two-bin case: ECE 0; a constant 0.9 on a 50% base rate: ECE 0.4.
    y2 = np.array([0, 1, 0, 1])
    assert reliability(y2, np.full((4, 2), 0.5), classes=[0, 1]).ece == pytest.approx(0.0)
    off = np.column_stack([np.full(4, 0.1), np.full(4, 0.9)])
    assert reliability(y2, off, classes=[0, 1]).ece == pytest.approx(0.4)


def test_confusion_matrix_matches_sklearn() -> None:
    y, pred, _ = _binary()
    got = confusion(y, pred, classes=[0, 1])
    assert got.labels == ("0", "1")
    assert np.array_equal(np.array(got.counts), skm.confusion_matrix(y, pred))


def test_slice_metrics_per_value_and_cardinality_limit() -> None:
    y, pred, proba = _binary(200)
    region = np.array(["north", "south"] * 100, dtype=object)
    region[:3] = None
    got = slice_metrics(region, y, pred, proba, classes=[0, 1])
    assert set(got) == {"<missing>", "north", "south"}
    assert sum(v["rows"] for v in got.values()) == 200
    mask = region == "south"
    assert got["south"]["f1"] == pytest.approx(skm.f1_score(y[mask], pred[mask]))
    with pytest.raises(InvalidInput) as info:
        slice_metrics(np.arange(200), y, pred, proba, classes=[0, 1], max_values=50)
    assert info.value.field == "slices"


@pytest.mark.parametrize("metric", sorted(BOOTSTRAP_METRICS))
def test_weighted_metrics_equal_sklearn_on_resampled_rows(metric: str) -> None:
    n = 120
    regression = metric in {"mae", "mse", "rmse", "mape", "r2"}
    if regression:
        y = RNG.normal(5, 2, n)
        scores = y + RNG.normal(0, 1, n)
    else:
        y, pred, proba = _binary(n)
        scores = proba if metric in {"roc_auc", "log_loss", "brier"} else pred
    idx = RNG.integers(0, n, size=(3, n))
    weights = np.stack([np.bincount(i, minlength=n) for i in idx]).astype(float)
    got = weighted_metric(metric, y, scores, weights, classes=None if regression else [0, 1])
    reference = {
        "accuracy": skm.accuracy_score,
        "precision": skm.precision_score,
        "recall": skm.recall_score,
        "f1": skm.f1_score,
        "roc_auc": lambda t, s: skm.roc_auc_score(t, s[:, 1]),
        "log_loss": lambda t, s: skm.log_loss(t, s, labels=[0, 1]),
        "brier": lambda t, s: skm.brier_score_loss(t, s[:, 1]),
        "mae": skm.mean_absolute_error,
        "mse": skm.mean_squared_error,
        "rmse": skm.root_mean_squared_error,
        "mape": skm.mean_absolute_percentage_error,
        "r2": skm.r2_score,
    }[metric]
    for b in range(3):
        assert got[b] == pytest.approx(reference(y[idx[b]], scores[idx[b]]), rel=1e-9)


def test_paired_bootstrap_separates_better_from_equal() -> None:
    n = 600
    y = RNG.integers(0, 2, n)
    noise = RNG.random(n)
    good = np.clip(0.55 * y + 0.45 * noise, 0, 1)  # separates the classes well
    weak = np.clip(0.15 * y + 0.85 * noise, 0, 1)  # barely
    better = paired_bootstrap("roc_auc", y, good, weak, resamples=500)
    assert better.diff > 0.1 and better.low > 0.05 and better.low <= better.diff <= better.high
    assert better.a == pytest.approx(skm.roc_auc_score(y, good))
    same = paired_bootstrap("roc_auc", y, weak, weak, resamples=200)
    assert same.low == same.high == same.diff == 0.0
    # A lower-is-better metric is oriented the same way: positive means A is better.
    loss = paired_bootstrap("log_loss", y, good, weak, resamples=200)
    assert loss.diff > 0 and loss.a < loss.b
    rel = paired_bootstrap("roc_auc", y, good, weak, resamples=200, relative=True)
    assert rel.diff == pytest.approx((rel.a - rel.b) / rel.b)


def test_paired_bootstrap_is_reproducible_and_checks_input() -> None:
    y, pred, _proba = _binary(100)
    one = paired_bootstrap("accuracy", y, pred, 1 - pred, resamples=100, seed=3)
    assert one == paired_bootstrap("accuracy", y, pred, 1 - pred, resamples=100, seed=3)
    with pytest.raises(InvalidInput) as info:
        paired_bootstrap("nope", y, pred, pred)
    assert info.value.field == "metric"
    with pytest.raises(InvalidInput):
        paired_bootstrap("accuracy", y, pred, pred[:-1])
    with pytest.raises(InvalidInput):
        paired_bootstrap("accuracy", y, pred, pred, confidence=1.5)


def test_regression_slices() -> None:
    y = RNG.normal(10, 3, 300)
    pred = y + RNG.normal(0, 1, 300)
    group = np.array(["a", "b", "c"] * 100)
    got = slice_metrics(group, y, pred, None, classes=None)
    mask = group == "b"
    assert got["b"]["rows"] == 100
    assert got["b"]["mae"] == pytest.approx(skm.mean_absolute_error(y[mask], pred[mask]))
    assert got["b"]["r2"] == pytest.approx(skm.r2_score(y[mask], pred[mask]))
