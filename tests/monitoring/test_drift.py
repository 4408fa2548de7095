"""assess_drift: the choice rule, verdicts, degenerate windows, overrides and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keel.errors import InvalidInput
from keel.monitoring import (
    ReferenceProfile,
    assess_drift,
    assess_prediction_drift,
    default_test,
)

RNG = np.random.default_rng(7)


def frame(n: int, *, shift: float = 0.0, extra: str | None = None, seed: int = 0) -> pd.DataFrame:
    # Seeded per call: a p-value test flags 5 % of same-distribution samples by design, so a
    # test that expects "ok" must not depend on the order other tests draw numbers in.
    rng = np.random.default_rng(seed)
    cats = ["a", "b", "c"] + ([extra] if extra else [])
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "k": rng.integers(0, 100, n),
            "c": rng.choice(cats, n),
            "flag": rng.random(n) < 0.3,
        }
    )


def test_choice_rule() -> None:
    assert default_test("numeric", 1_000, 1_000) == "ks"
    assert default_test("numeric", 1_000_000, 1_000) == "ks"  # a small window: p-values
    assert default_test("numeric", 50, 1_000_000) == "ks"
    assert default_test("numeric", 1_001, 1_001) == "wasserstein"
    assert default_test("categorical", 900, 900) == "chi2"
    assert default_test("categorical", 5_000, 900) == "chi2"
    assert default_test("categorical", 5_000, 1_001) == "jensenshannon"


def test_small_window_against_a_large_reference_is_calibrated() -> None:
    # 800 rows of unchanged data against 50,000: KS on the reference's bins, no false alarm;
    # the normalised Wasserstein of the same pair is noisy (about 0.07 here).
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"s": rng.random(50_000)}))
    window = pd.DataFrame({"s": rng.random(800)})
    got = assess_drift(profile, window).columns[0]
    assert (got.test, got.status) == ("ks", "ok")
    moved = assess_drift(profile, pd.DataFrame({"s": rng.random(800) * 0.8})).columns[0]
    assert (moved.test, moved.status) == ("ks", "drift")


@pytest.mark.parametrize("n", [500, 20_000])
def test_same_distribution_is_ok_and_a_shift_drifts(n: int) -> None:
    profile = ReferenceProfile.from_frame(frame(n))
    same = assess_drift(profile, frame(n, seed=1))
    assert {c.column: c.status for c in same.columns} == dict.fromkeys(
        ["x", "k", "c", "flag"], "ok"
    )
    assert same.drift_share == 0.0 and not same.dataset_drift
    moved = assess_drift(profile, frame(n, shift=1.0, seed=2))
    x = moved.column("x")
    assert x.drifted and x.status == "drift"
    assert x.test == ("ks" if n <= 1_000 else "wasserstein")
    assert moved.drifted_columns == ("x",)
    assert moved.drift_share == pytest.approx(0.25)


def test_degenerate_windows_are_insufficient_data_not_errors() -> None:
    profile = ReferenceProfile.from_frame(
        pd.DataFrame(
            {
                "x": RNG.normal(0, 1, 2_000),
                "const": np.full(2_000, 3.0),
                "c": RNG.choice(["a", "b"], 2_000),
                "nulls": pd.array([None] * 2_000, dtype="Float64"),
                "when": pd.date_range("2026-01-01", periods=2_000, freq="min"),
            }
        )
    )
    empty = assess_drift(profile, pd.DataFrame({"x": pd.Series([], dtype=float)}))
    assert all(c.status == "insufficient_data" and not c.drifted for c in empty.columns)
    assert empty.column("x").reason == "current window has no rows"
    assert empty.column("c").reason == "column missing from the current data"
    assert empty.drift_share == 0.0 and not empty.dataset_drift

    current = pd.DataFrame(
        {
            "x": pd.array([None] * 10, dtype="Float64"),
            "const": [3.0] * 9 + [4.0],
            "c": ["a"] + [None] * 9,
            "nulls": pd.array([1.0] * 10, dtype="Float64"),
            "when": pd.date_range("2026-02-01", periods=10, freq="min"),
        }
    )
    report = assess_drift(profile, current, multivariate=True)
    reasons = {c.column: c.reason for c in report.columns}
    assert {c.status for c in report.columns} == {"insufficient_data"}
    assert reasons["x"] == "all current values are null"
    assert reasons["const"] == "constant in the reference (3); 10.0% of current values differ"
    assert reasons["c"] == "current has 1 non-null values (< 5)"
    assert reasons["nulls"] == "reference has 0 usable values (< 5)"
    assert "not tested" in reasons["when"]
    assert report.multivariate is not None and report.multivariate.status == "insufficient_data"
    text = json.dumps(report.to_dict(), allow_nan=False)  # no NaN anywhere
    assert '"statistic": null' in text

    one_row = assess_drift(profile, pd.DataFrame({"x": [0.1], "c": ["a"]}))
    assert one_row.column("x").status == "insufficient_data"
    assert one_row.column("x").reason == "current has 1 usable values (< 5)"


def test_single_category_on_both_sides_is_insufficient() -> None:
    report = assess_drift(pd.DataFrame({"c": ["a"] * 50}), pd.DataFrame({"c": ["a"] * 40}))
    assert report.columns[0].status == "insufficient_data"
    assert "one category" in report.columns[0].reason


def test_unseen_categories_are_reported_and_count_as_drift() -> None:
    ref = pd.DataFrame({"c": RNG.choice(["a", "b"], 5_000)})
    cur = pd.DataFrame({"c": RNG.choice(["a", "b", "new"], 5_000, p=[0.4, 0.3, 0.3])})
    got = assess_drift(ref, cur).columns[0]
    assert got.drifted and got.test == "jensenshannon"
    assert [k for k, _ in got.unseen] == ["new"]
    assert got.unseen_share == pytest.approx(0.3, abs=0.03)
    assert got.reason.startswith("1 category unseen in the reference: 'new'")
    assert got.to_dict()["unseen"][0][0] == "new"


def test_type_change_is_drift() -> None:
    got = assess_drift(pd.DataFrame({"x": [1.0, 2.0]}), pd.DataFrame({"x": ["a", "b"]})).columns[0]
    assert (got.status, got.test, got.drifted) == ("drift", "type", True)
    assert "type changed" in got.reason


def test_overrides_and_thresholds() -> None:
    ref, cur = frame(5_000), frame(5_000, shift=0.05, seed=1)
    default = assess_drift(ref, cur, columns=["x"]).columns[0]
    assert default.test == "wasserstein" and default.status == "ok"
    strict = assess_drift(ref, cur, columns=["x"], thresholds={"x": 0.01}).columns[0]
    assert strict.threshold == 0.01 and strict.status == "drift"
    by_test = assess_drift(ref, cur, columns=["x"], thresholds={"wasserstein": 0.02}).columns[0]
    assert by_test.threshold == 0.02
    psi = assess_drift(ref, cur, tests={"x": "psi", "c": "chi2"}, columns=["x", "c"])
    assert [c.test for c in psi.columns] == ["psi", "chi2"]
    # One test for every column: applied where it fits, the rule elsewhere.
    everywhere = assess_drift(ref, cur, tests="ks")
    assert [c.test for c in everywhere.columns] == ["ks", "ks", "jensenshannon", "jensenshannon"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tests": "t-test"}, "tests"),
        ({"tests": {"c": "ks"}}, "tests"),
        ({"tests": {"nope": "ks"}}, "tests"),
        ({"columns": ["nope"]}, "columns"),
        ({"thresholds": {"nope": 0.1}}, "thresholds"),
        ({"thresholds": {"x": -1}}, "thresholds"),
        ({"thresholds": {"x": float("nan")}}, "thresholds"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        assess_drift(frame(50), frame(50), **kwargs)
    assert err.value.field == field


def test_bad_current_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        assess_drift(frame(50), [1, 2, 3])
    assert err.value.field == "current"


def test_a_window_source_plugs_in_through_to_arrow() -> None:
    class Window:
        def to_arrow(self) -> pa.Table:
            return pa.Table.from_pandas(frame(300, shift=2.0, seed=1), preserve_index=False)

    report = assess_drift(frame(300), Window(), current_name="window 12:00-13:00")
    assert report.current == "window 12:00-13:00"
    assert report.column("x").drifted


def test_prediction_drift_uses_the_same_tests() -> None:
    ref = pd.DataFrame({"prediction": RNG.random(3_000), "label": RNG.choice(["y", "n"], 3_000)})
    cur = pd.DataFrame({"prediction": RNG.random(3_000) ** 2, "label": ["y"] * 3_000})
    got = assess_prediction_drift(ref, cur)
    assert (got.column, got.test, got.status) == ("prediction", "wasserstein", "drift")
    label = assess_prediction_drift(ref, cur, column="label", test="chi2")
    assert label.test == "chi2" and label.drifted


def test_domain_classifier_sees_a_joint_shift_the_marginals_miss() -> None:
    n = 4_000
    base = RNG.normal(0, 1, (n, 2))
    ref = pd.DataFrame({"a": base[:, 0], "b": base[:, 0] * 0.95 + base[:, 1] * 0.3})
    other = RNG.normal(0, 1, (n, 2))
    # Same marginals, the correlation flipped.
    cur = pd.DataFrame({"a": other[:, 0], "b": -other[:, 0] * 0.95 + other[:, 1] * 0.3})
    cur["noise"] = ref["noise"] = 0.0
    ref["noise"] = RNG.normal(0, 1, n)
    cur["noise"] = RNG.normal(0, 1, n)
    report = assess_drift(ref, cur, multivariate=True)
    assert [c.status for c in report.columns] == ["ok", "ok", "ok"]
    m = report.multivariate
    assert m is not None and m.drifted and m.auc is not None and m.auc > 0.8
    assert {m.importances[0][0], m.importances[1][0]} == {"a", "b"}
    assert report.dataset_drift
    same = assess_drift(ref, ref.sample(frac=1.0, random_state=1), multivariate=True)
    assert same.multivariate is not None and not same.multivariate.drifted
    assert same.multivariate.auc is not None and same.multivariate.auc < 0.55


def test_report_to_dict_is_json_safe() -> None:
    report = assess_drift(
        frame(2_000), frame(2_000, shift=0.5, extra="z", seed=1), multivariate=True
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["drifted_columns"] == ["x", "c"]
    assert data["drift_share"] == 0.5 and data["dataset_drift"] is True
    assert set(data["columns"][0]) >= {
        "column",
        "type",
        "test",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
        "status",
        "reason",
    }
    top_two = {name for name, _ in data["multivariate"]["importances"][:2]}
    assert top_two == {"x", "c"}
