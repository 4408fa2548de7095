"""The profile against pandas on a bounded table (200k rows); the 1M x 20 timing is measured
in benchmarks, not asserted here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keel.data._profile import BINS, profile_table, schema_of


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 200_000
    x = rng.normal(10, 2, n)
    x[::10] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "i": rng.integers(0, 1000, n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) > 0.5,
            "when": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


def test_numbers_match_pandas(frame: pd.DataFrame) -> None:
    profile = profile_table(pa.Table.from_pandas(frame, preserve_index=False))
    assert profile["rows"] == len(frame)
    x = profile["columns"]["x"]
    assert x["kind"] == "numeric" and x["null_share"] == pytest.approx(0.1)
    valid = frame["x"].dropna()
    assert x["mean"] == pytest.approx(valid.mean())
    assert x["std"] == pytest.approx(valid.std())
    assert (x["min"], x["max"]) == (valid.min(), valid.max())
    assert x["quantiles"]["0.5"] == pytest.approx(valid.quantile(0.5))
    assert x["distinct"] == valid.nunique()
    assert len(x["histogram"]["counts"]) == BINS and sum(x["histogram"]["counts"]) == len(valid)
    assert profile["columns"]["i"]["distinct"] == frame["i"].nunique()


def test_categories_booleans_and_times(frame: pd.DataFrame) -> None:
    profile = profile_table(pa.Table.from_pandas(frame, preserve_index=False))
    cat = profile["columns"]["cat"]
    assert cat["kind"] == "categorical" and cat["top"][0][0] == "a"
    assert dict(zip(cat["histogram"]["categories"], cat["histogram"]["counts"], strict=True)) == (
        frame["cat"].value_counts().to_dict()
    )
    assert profile["columns"]["flag"]["distinct"] == 2
    when = profile["columns"]["when"]
    assert when["kind"] == "temporal" and when["min"].startswith("2024-01-01")


def test_edge_columns() -> None:
    table = pa.table(
        {
            "empty": pa.array([None, None], pa.float64()),
            "inf": pa.array([1.0, float("inf")]),
            "const": pa.array([3, 3]),
            "nested": pa.array([[1], [2, 3]]),
        }
    )
    columns = profile_table(table)["columns"]
    assert columns["empty"]["null_share"] == 1.0 and "mean" not in columns["empty"]
    assert columns["inf"]["max"] == 1.0  # infinities are left out of the statistics
    assert columns["const"]["std"] == 0.0 and sum(columns["const"]["histogram"]["counts"]) == 2
    assert columns["nested"]["kind"] == "other"
    assert schema_of(table)[3] == ("nested", "list<item: int64>")
    assert profile_table(table.slice(0, 0))["rows"] == 0
