"""Sanity reports: missing values, outliers, duplicates and shift against a reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.data._sanity import SanityThresholds, _ks, sanity_report
from keel.errors import InvalidInput


def test_missing_outliers_duplicates() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 2.0, 3.0, 2.0, 100.0, None], "s": [*"aabbcc", None]})
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    report = sanity_report(df)
    x = report.column("x")
    assert (x.missing, x.iqr_outliers) == (1, 1)
    assert report.duplicated_rows == 1
    assert report.column("s").iqr_outliers is None
    assert any("IQR outliers" in f for f in report.findings)
    assert any("duplicated rows" in f for f in report.findings)
    assert report.to_dict()["columns"][0]["column"] == "x"


def test_z_score_matches_a_brute_force_count() -> None:
    values = np.random.default_rng(3).standard_t(2, size=500)
    report = sanity_report(pd.DataFrame({"v": values}), thresholds=SanityThresholds(z=2.5))
    z = np.abs(values - values.mean()) / values.std()
    assert report.column("v").z_outliers == sum(1 for d in z if d > 2.5)


def test_shift_against_reference() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"v": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    same = pd.DataFrame({"v": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    moved = pd.DataFrame({"v": rng.normal(1, 1, 2000),
                          "c": rng.choice(["a", "b"], 2000, p=[0.9, 0.1])})  # fmt: skip
    quiet = sanity_report(same, reference=ref)
    assert quiet.column("v").psi < 0.1 and quiet.column("v").ks < 0.1
    assert not [f for f in quiet.findings if "shift" in f]
    loud = sanity_report(moved, reference=ref)
    assert loud.column("v").psi > 0.2 and loud.column("v").ks > 0.3
    assert loud.column("c").psi > 0.2 and loud.column("c").ks is None
    assert len([f for f in loud.findings if "shift" in f]) == 3
    lenient = sanity_report(moved, reference=ref, thresholds=SanityThresholds(psi=10, ks=1))
    assert not [f for f in lenient.findings if "shift" in f]


def test_ks_equals_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        a, b = rng.integers(0, 10, 30).astype(float), rng.integers(0, 12, 40).astype(float)
        grid = sorted(set(a) | set(b))
        want = max(abs((a <= g).mean() - (b <= g).mean()) for g in grid)
        assert _ks(a, b) == pytest.approx(want)


def test_bad_input_is_reported_not_raised() -> None:
    empty = sanity_report(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    assert empty.rows == 0 and "the frame has no rows" in empty.findings
    mixed = sanity_report(pd.DataFrame({"m": pd.Series([1, "a"], dtype=object)}))
    assert "m: mixed types in one column" in mixed.findings
    odd = sanity_report(pd.DataFrame({"l": [[1], [2]]}))
    assert odd.rows == 2 and odd.column("l").kind == "mixed"
    with pytest.raises(InvalidInput) as err:
        SanityThresholds(psi=-1)
    assert err.value.field == "psi"
