"""The statistics from summaries agree with SciPy on the raw data, within stated tolerances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from keel.monitoring import ReferenceProfile, assess_drift
from keel.monitoring._stats import chi_squared, jensen_shannon, psi

RNG = np.random.default_rng(20_261_122)


def _numeric_pair(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "normal-shift":
        return RNG.normal(0, 1, n), RNG.normal(0.25, 1.1, n)
    if kind == "lognormal":
        return RNG.lognormal(0, 0.8, n), RNG.lognormal(0.1, 0.9, n)
    if kind == "lognormal-scaled":  # a long right tail, stretched: most of W1 is in the tail
        return RNG.lognormal(0, 0.5, n), RNG.lognormal(0, 0.5, n) * 1.5
    if kind == "same":
        return RNG.normal(5, 2, n), RNG.normal(5, 2, n)
    if kind == "outside-range":  # most of the current lies beyond the reference's maximum
        return RNG.uniform(0, 1, n), RNG.uniform(0.5, 3, n)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["normal-shift", "lognormal", "lognormal-scaled", "same", "outside-range"]
)
def test_wasserstein_and_ks_from_bins_match_scipy(kind: str) -> None:
    ref, cur = _numeric_pair(kind, 50_000)
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": ref}), sample_rows=0)
    report_w = assess_drift(profile, pd.DataFrame({"x": cur}), tests="wasserstein")
    exact_w = stats.wasserstein_distance(ref, cur) / ref.std(ddof=1)
    # Tolerance: 1 % of a reference standard deviation (0.1 % quantile bins, exact tails).
    assert report_w.columns[0].statistic == pytest.approx(exact_w, abs=0.01)
    report_ks = assess_drift(profile, pd.DataFrame({"x": cur}), tests="ks")
    exact = stats.ks_2samp(ref, cur)
    got = report_ks.columns[0]
    # KS at the reference's 0.1 % edges: a lower bound, short by at most about one bin's mass.
    assert exact.statistic - 0.003 <= got.statistic <= exact.statistic + 1e-12
    assert (got.p_value < 0.05) == (exact.pvalue < 0.05)


def test_ks_is_exact_for_small_samples() -> None:
    ref, cur = RNG.normal(0, 1, 400), RNG.normal(0.3, 1, 300)
    report = assess_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    got = report.columns[0]
    exact = stats.ks_2samp(ref, cur)
    assert got.test == "ks"
    assert got.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(exact.pvalue, rel=1e-9)


def test_chi_squared_matches_chi2_contingency_including_unseen() -> None:
    ref = RNG.choice(["a", "b", "c"], 800, p=[0.5, 0.3, 0.2])
    cur = RNG.choice(["a", "b", "c", "d"], 600, p=[0.4, 0.3, 0.2, 0.1])
    report = assess_drift(pd.DataFrame({"c": ref}), pd.DataFrame({"c": cur}))
    got = report.columns[0]
    labels = ["a", "b", "c", "d"]
    table = np.array([[np.sum(ref == k) for k in labels], [np.sum(cur == k) for k in labels]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert got.test == "chi2"
    assert got.statistic == pytest.approx(chi2, rel=1e-9)
    assert got.p_value == pytest.approx(p, rel=1e-6, abs=1e-300)
    assert dict(got.unseen) == {"d": int(np.sum(cur == "d"))}
    direct = chi_squared(table[0], table[1])
    assert direct[0] == pytest.approx(chi2, rel=1e-12)


def test_jensen_shannon_matches_scipy_on_shared_bins() -> None:
    ref = RNG.choice(list("abcdef"), 5_000)
    cur = RNG.choice(list("abcdefg"), 4_000)
    report = assess_drift(pd.DataFrame({"c": ref}), pd.DataFrame({"c": cur}))
    got = report.columns[0]
    labels = list("abcdefg")
    p = np.array([np.sum(ref == k) for k in labels], float)
    q = np.array([np.sum(cur == k) for k in labels], float)
    assert got.test == "jensenshannon"
    assert got.statistic == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert jensen_shannon(p, p) == 0.0


def test_numeric_jensen_shannon_uses_the_reference_5_percent_bins() -> None:
    ref, cur = RNG.normal(0, 1, 20_000), RNG.normal(0.5, 1, 20_000)
    report = assess_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), tests="js")
    cuts = np.quantile(ref, np.arange(1, 20) / 20)
    edges = np.concatenate(([-np.inf], cuts, [np.inf]))
    p = np.histogram(ref, edges)[0]
    q = np.histogram(cur, edges)[0]
    assert report.columns[0].statistic == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


def test_psi_by_hand() -> None:
    # Shares 0.25 x 4 against 0.1, 0.2, 0.3, 0.4: sum of (q - p) * ln(q / p).
    by_hand = (
        (-0.15) * math.log(0.4)
        + (-0.05) * math.log(0.8)
        + 0.05 * math.log(1.2)
        + 0.15 * math.log(1.6)
    )
    assert by_hand == pytest.approx(0.228217, abs=1e-6)
    assert psi(np.array([25, 25, 25, 25]), np.array([10, 20, 30, 40])) == pytest.approx(by_hand)
    cats = ["a"] * 25 + ["b"] * 25 + ["c"] * 25 + ["d"] * 25
    now = ["a"] * 10 + ["b"] * 20 + ["c"] * 30 + ["d"] * 40
    report = assess_drift(pd.DataFrame({"c": cats}), pd.DataFrame({"c": now}), tests="psi")
    assert report.columns[0].statistic == pytest.approx(by_hand)
    assert report.columns[0].status == "drift"  # >= 0.2


def test_numeric_psi_on_reference_deciles_by_hand() -> None:
    ref = np.arange(1000, dtype=float)  # deciles at 99.9, 199.8, ...: 100 values per bin
    cur = np.concatenate([np.full(300, 50.0), np.full(700, 950.0)])  # 30 % first, 70 % last
    report = assess_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), tests="psi")
    p = np.full(10, 0.1)
    q = np.array([0.3] + [1e-4] * 8 + [0.7])  # empty bins get the 1e-4 floor
    expected = float(np.sum((q - p) * np.log(q / p)))
    assert report.columns[0].statistic == pytest.approx(expected, rel=1e-9)


def test_arrow_table_and_dataframe_give_the_same_answer() -> None:
    ref, cur = _numeric_pair("normal-shift", 5_000)
    a = assess_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}))
    b = assess_drift(pa.table({"x": ref}), pa.table({"x": cur}))
    assert a.columns == b.columns
