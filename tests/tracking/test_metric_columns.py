"""Metric batches as columns: the sequence view and the column-wise checks of the SQL store."""

from __future__ import annotations

import math

import pytest

from keel.errors import InvalidInput
from keel.tracking import _sql_validate as check
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import Metric


def _cols(**over: object) -> MetricColumns:
    cols: dict[str, object] = {
        "keys": ["loss", "acc", "loss"],
        "values": [1.0, 0.5, 0.25],
        "steps": [0, 0, 1],
        "timestamps": [10, 11, 12],
    }
    cols.update(over)
    return MetricColumns(**cols)  # type: ignore[arg-type]


def test_columns_are_a_sequence_of_metrics() -> None:
    points = [Metric("loss", 1.0, 0, 10), Metric("acc", 0.5, 0, 11), Metric("loss", 0.25, 1, 12)]
    cols = MetricColumns.of(points)
    assert MetricColumns.of(cols) is cols
    assert len(cols) == 3
    assert list(cols) == points
    assert cols[1] == points[1]
    assert list(cols[1:]) == points[1:]
    with pytest.raises(ValueError, match="one length"):
        MetricColumns(["a"], [], [], [])


def test_checked_columns_store_nan_as_null_and_ints_as_floats() -> None:
    rows = check.metrics(_cols(values=[math.nan, 2, -math.inf]))
    assert list(rows.values) == [None, 2.0, -math.inf]
    assert type(rows.values[1]) is float
    assert list(rows.keys) == ["loss", "acc", "loss"]


def test_a_batch_of_metric_records_is_checked_like_columns() -> None:
    rows = check.metrics([Metric("loss", 3, 1, 2)])
    assert (list(rows.values), list(rows.steps)) == ([3.0], [1])
    with pytest.raises(InvalidInput, match="item 1 is not a Metric") as caught:
        check.metrics([Metric("loss", 3.0, 1, 2), ("loss", 3.0, 1, 2)])  # type: ignore[list-item]
    assert caught.value.field == "metrics"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"keys": ["loss", "a\x00b", "loss"]}, "metrics.key"),
        ({"keys": ["loss", ["not", "hashable"], "loss"]}, "metrics.key"),
        ({"keys": ["loss", "", "loss"]}, "metrics.key"),
        ({"keys": ["loss", 7, "loss"]}, "metrics.key"),
        ({"values": [1.0, True, 0.5]}, "metrics.value"),
        ({"values": [1.0, "1.5", 0.5]}, "metrics.value"),
        ({"values": [1.0, 10**400, 0.5]}, "metrics.value"),
        ({"steps": [0, 2**63, 1]}, "metrics.step"),
        ({"steps": [0, 1.5, 1]}, "metrics.step"),
        ({"steps": [0, False, 1]}, "metrics.step"),
        ({"timestamps": [10, -1, 12]}, "metrics.timestamp_ms"),
        ({"timestamps": [10, None, 12]}, "metrics.timestamp_ms"),
    ],
)
def test_a_bad_value_in_any_column_is_named(over: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check.metrics(_cols(**over))
    assert caught.value.field == field


def test_the_extreme_int64_steps_pass() -> None:
    rows = check.metrics(_cols(steps=[-(2**63), 0, 2**63 - 1]))
    assert list(rows.steps) == [-(2**63), 0, 2**63 - 1]
