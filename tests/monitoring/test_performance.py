"""Performance over a window: metrics equal scikit-learn's on the same rows, labels and
predictions of different JSON types align, business metrics, slices, buckets, and degenerate
windows give None with a reason (never NaN, never a crash)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from keel.errors import InvalidInput
from keel.monitoring import assess_performance
from keel.monitoring._predlog import column_array

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR


def log(
    predictions: Any,
    labels: Any,
    *,
    roles: Any = None,
    versions: Any = None,
    inputs: dict[str, Any] | None = None,
    step_ms: int = 1000,
    ids: Any = None,
) -> pa.Table:
    n = len(predictions)
    columns: dict[str, Any] = {
        "request_id": pa.array(ids if ids is not None else [f"r{i}" for i in range(n)]),
        "model_version": pa.array(versions if versions is not None else ["1"] * n),
        "role": pa.array(roles if roles is not None else ["champion"] * n),
        "timestamp": pa.array(T0 + np.arange(n) * step_ms, pa.timestamp("ms", "UTC")),
        "latency_ms": pa.array(np.ones(n)),
        "row": pa.array(np.zeros(n, dtype=np.int32)),
    }
    for name, values in (inputs or {}).items():
        columns[f"input.{name}"] = pa.array(values)
    # as the log writer and the feedback join store them (mixed values become JSON text)
    columns["output.prediction"] = (
        predictions if isinstance(predictions, pa.Array) else column_array(list(predictions))
    )
    columns["label"] = labels if isinstance(labels, pa.Array) else column_array(list(labels))
    return pa.table(columns)


def check(report_value: float | None, want: float) -> None:
    assert report_value == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_binary_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    p = np.where(rng.random(3000) < 0.8, y, 1 - y)
    report = assess_performance(log(p.tolist(), y.tolist()))
    m = report.metrics.values
    assert report.task == "classification" and report.positive_label == "1"
    check(m["accuracy"], skm.accuracy_score(y, p))
    check(m["precision"], skm.precision_score(y, p))
    check(m["recall"], skm.recall_score(y, p))
    check(m["f1"], skm.f1_score(y, p))
    assert report.metrics.confusion is not None
    assert report.metrics.confusion.counts == tuple(map(tuple, skm.confusion_matrix(y, p)))
    # the positive class can be chosen: here 0
    flipped = assess_performance(log(p.tolist(), y.tolist()), positive_label=0)
    check(flipped.metrics.values["recall"], skm.recall_score(y, p, pos_label=0))
    assert flipped.positive_label == "0"


def test_multiclass_text_metrics_equal_sklearn_macro() -> None:
    rng = np.random.default_rng(1)
    classes = np.array(["cat", "dog", "eel"])
    y = classes[rng.integers(0, 3, 2000)]
    p = np.where(rng.random(2000) < 0.7, y, classes[rng.integers(0, 3, 2000)])
    report = assess_performance(log(p.tolist(), y.tolist()))
    m = report.metrics.values
    check(m["accuracy"], skm.accuracy_score(y, p))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):  # fmt: skip
        check(m[name], fn(y, p, average="macro"))
    assert report.classes == ("cat", "dog", "eel") and report.positive_label is None
    assert report.metrics.confusion is not None
    assert report.metrics.confusion.counts == tuple(
        map(tuple, skm.confusion_matrix(y, p, labels=classes))
    )


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(100, 20, 1500)
    p = y + rng.normal(0, 5, 1500)
    report = assess_performance(log(p.tolist(), y.tolist()))
    m = report.metrics.values
    assert report.task == "regression"
    check(m["mae"], skm.mean_absolute_error(y, p))
    check(m["rmse"], skm.root_mean_squared_error(y, p))
    check(m["r2"], skm.r2_score(y, p))
    check(m["mape"], skm.mean_absolute_percentage_error(y, p))
    # integer-valued targets with few values would be inferred as classes: task= decides
    counts = assess_performance(log([1, 2, 3, 3], [1, 2, 2, 4]), task="regression")
    check(counts.metrics.values["mae"], 0.5)


@pytest.mark.parametrize(
    ("labels", "predictions"),
    [
        (["1", "0", "1", "1"], [1, 0, 0, 1]),  # text labels, integer predictions
        ([1.0, 0.0, 1.0, 1.0], [1, 0, 0, 1]),  # floats vs integers
        ([True, False, True, True], [1, 0, 0, 1]),  # booleans are 1/0
        (["1", "0", "1", "1"], ["1.0", "0", "0", "1"]),  # number text
    ],
)
def test_label_and_prediction_types_align(labels: list[Any], predictions: list[Any]) -> None:
    report = assess_performance(log(predictions, labels))
    assert report.task == "classification"
    assert report.classes == ("0", "1")
    check(report.metrics.values["accuracy"], 0.75)
    check(report.metrics.values["recall"], 2 / 3)


def test_mixed_text_and_numbers_compare_by_text() -> None:
    report = assess_performance(log([1, "other", 2.0, "other"], ["1", "other", "3", 2]))
    assert report.classes == ("1", "2", "3", "other")
    check(report.metrics.values["accuracy"], 0.5)
    with pytest.raises(InvalidInput) as err:
        assess_performance(log(["a", "b"], ["a", "a"]), task="regression")
    assert err.value.field == "task"


def test_business_metrics_from_json_declarations() -> None:
    y = [1, 1, 0, 0, 1, 0]
    p = [1, 0, 1, 0, 0, 0]  # tp=1, fn=2, fp=1, tn=2
    spec = json.loads(
        '{"cost": {"fp": 5, "fn": 50}, "value": {"tp": 100, "fp": -5},'
        ' "cells": {"matrix": {"1": {"0": 7}, "0": {"1": 1.5}}}}'
    )
    report = assess_performance(log(p, y), business=spec)
    b = report.metrics.business
    assert b["cost"].total == 5 * 1 + 50 * 2 and b["cost"].per_row == pytest.approx(105 / 6)
    assert b["value"].total == 100 - 5
    assert b["cells"].total == 7 * 2 + 1.5
    assert report.quantities()["performance.business.cost"].value == pytest.approx(105 / 6)
    regression = assess_performance(
        log([10.0, 12.0, 7.0], [11.0, 10.0, 7.5]), business={"stock": {"over": 2, "under": 3}}
    )
    assert regression.metrics.business["stock"].total == pytest.approx(2 * 2 + 3 * 1.5)
    three = assess_performance(log(["a", "b", "c"], ["a", "b", "b"]), business={"c": {"fp": 1}})
    assert three.metrics.business["c"].total is None
    assert "two classes" in three.metrics.business["c"].reason


@pytest.mark.parametrize(
    "spec",
    [
        {"cost": {"fp": "5"}},
        {"cost": {"fp": float("nan")}},
        {"cost": {"false_positive": 5}},
        {"cost": {}},
        {"cost": {"matrix": {"1": 3}}},
        {"cost": "fp * 5"},
    ],
)
def test_bad_business_specs_are_refused_without_evaluating_text(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as err:
        assess_performance(log([1, 0], [1, 1]), business=spec)
    assert str(err.value.field).startswith("business")


def test_slices_numeric_bins_and_categories() -> None:
    n = 400
    x = np.arange(n, dtype=float)
    country = np.where(np.arange(n) % 2 == 0, "de", "fr")
    y = np.zeros(n, dtype=int)
    p = np.where(x < 100, 1, 0)  # every error sits in the lowest quarter of x
    report = assess_performance(
        log(p.tolist(), y.tolist(), inputs={"x": x, "country": country}), slices=["x", "country"]
    )
    bins = report.slices["input.x"]
    assert [s.rows for s in bins] == [100, 100, 100, 100]
    assert bins[0].value.startswith("[0, ") and bins[-1].value.endswith("]")
    assert [s.metrics.values["accuracy"] for s in bins] == [0.0, 1.0, 1.0, 1.0]
    by_country = {s.value: s.metrics.values["accuracy"] for s in report.slices["input.country"]}
    assert by_country == {"de": 0.75, "fr": 0.75}
    with pytest.raises(InvalidInput) as err:
        assess_performance(log([1], [1]), slices=["nope"])
    assert err.value.field == "slices"


def test_buckets_are_a_series_of_coverage_and_metrics() -> None:
    n = 240  # one request a minute for 4 hours; labels for the first 3 hours only
    y = [1] * n
    p = [1 if i % 60 < 30 + 10 * (i // 60) else 0 for i in range(n)]
    labels = [v if i < 180 else None for i, v in enumerate(y)]
    report = assess_performance(log(p, labels, step_ms=60_000), bucket_ms=HOUR)
    assert [b.start_ms - T0 for b in report.buckets] == [0, HOUR, 2 * HOUR, 3 * HOUR]
    assert [b.label_coverage for b in report.buckets] == [1.0, 1.0, 1.0, 0.0]
    acc = [b.metrics.values["accuracy"] for b in report.buckets]
    assert acc[:3] == pytest.approx([0.5, 40 / 60, 50 / 60]) and acc[3] is None
    assert report.buckets[3].metrics.reasons["accuracy"].startswith("no labels")
    check(report.label_coverage or 0.0, 0.75)


def test_degenerate_windows_give_none_with_a_reason() -> None:
    empty = assess_performance(log([], pa.array([], pa.null())))
    assert empty.rows == 0 and empty.label_coverage is None
    assert empty.reason == "the window holds no predictions"
    no_labels = assess_performance(log([1, 0, 1], [None, None, None]))
    assert no_labels.label_coverage == 0.0
    assert no_labels.metrics.n == 0 and no_labels.metrics.missing_labels == 3
    assert no_labels.metrics.values == dict.fromkeys(["accuracy", "precision", "recall", "f1"])
    assert no_labels.metrics.reasons["f1"] == "no labels have arrived for these rows"
    assert "no labels" in no_labels.reason
    assert no_labels.quantities()["concept_drift.changes"].value is None
    one_row = assess_performance(log([3.5], [4.0]), task="regression")
    assert one_row.metrics.values["mae"] == 0.5 and one_row.metrics.values["r2"] is None
    assert "two or more" in one_row.metrics.reasons["r2"]
    one_class = assess_performance(log(["a", "a"], ["a", "a"]))
    assert one_class.metrics.values["accuracy"] == 1.0
    assert one_class.metrics.values["f1"] is None
    assert "only one class" in one_class.metrics.reasons["f1"]
    null_predictions = assess_performance(log(pa.array([None, None], pa.int64()), [1, 0]))
    assert null_predictions.metrics.n == 0
    assert null_predictions.labelled_requests == 2
    assert all(v is None for v in null_predictions.metrics.values.values())
    for report in (empty, no_labels, one_row, one_class, null_predictions):
        json.dumps(report.to_dict(), allow_nan=False)
        for q in report.quantities().values():
            assert q.value is None or np.isfinite(q.value)


def test_bad_arguments_name_the_field() -> None:
    table = log([1, 0], [1, 0])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prediction": "output.nope"}, "prediction"),
        ({"task": "ranking"}, "task"),
        ({"detectors": ["cusum"]}, "detectors"),
        ({"bucket_ms": -5}, "bucket_ms"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as err:
            assess_performance(table, **kwargs)
        assert err.value.field == field, kwargs
    with pytest.raises(InvalidInput) as err:
        assess_performance(pa.table({"x": [1]}))
    assert err.value.field == "log"
    listy = table.append_column("output.proba", pa.array([[0.1, 0.9], [0.8, 0.2]]))
    with pytest.raises(InvalidInput) as err:
        assess_performance(listy, prediction="output.proba")
    assert err.value.field == "prediction"


def test_concept_drift_changes_are_reported_in_prediction_time_order() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(np.arange(n) < 2000, 0.05, 0.4)
    p = np.where(wrong, 1 - y, y)
    table = log(p.tolist(), y.tolist(), step_ms=1000)
    shuffled = table.take(rng.permutation(n))  # a frame not in time order
    report = assess_performance(shuffled, detectors=("adwin", "ddm", "page_hinkley"))
    assert report.detectors == ("adwin", "ddm", "page_hinkley")
    for method in report.detectors:
        first = min(c.timestamp_ms or 0 for c in report.changes if c.method == method)
        assert T0 + 2000 * 1000 <= first <= T0 + 2400 * 1000, method
    assert report.quantities()["concept_drift.changes"].value == len(report.changes)
    regression = assess_performance(log([1.5, 2.5, 3.5], [1.0, 2.0, 3.0]), task="regression")
    with pytest.raises(InvalidInput):
        assess_performance(log([1.5, 2.5], [1.0, 2.0]), task="regression", detectors=["ddm"])
    assert regression.changes == ()
