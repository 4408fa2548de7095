"""Detection power and false alarms of every drift test on synthetic data with a known,
injected shift: a mean shift, a variance change and a new category must be found; unshifted
samples must stay quiet at the stated rate over repeated seeds.

Stated false-alarm rates (docs/monitoring.md): the p-value tests (KS, chi-squared) flag about
5% of unshifted samples at p < 0.05 by design; the distance tests (normalised Wasserstein,
Jensen-Shannon, PSI) at their default thresholds flag none at these sizes. The seeds are fixed,
so these tests are deterministic; the bounds leave room for the binomial spread of 100 draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.monitoring import ReferenceProfile, assess_drift

SEEDS = range(100)
NUMERIC_TESTS = [("ks", 500), ("wasserstein", 5_000), ("psi", 5_000), ("jensenshannon", 5_000)]
CATEGORICAL_TESTS = [("chi2", 500), ("psi", 5_000), ("jensenshannon", 5_000)]
CATS = ["a", "b", "c", "d"]
P = [0.4, 0.3, 0.2, 0.1]


def numeric(n: int, seed: int, *, loc: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"v": np.random.default_rng(seed).normal(loc, scale, n)})


def categorical(n: int, seed: int, *, new: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.choice(CATS, n, p=P).astype(object)
    values[rng.random(n) < new] = "e"  # a category the reference never saw
    return pd.DataFrame({"v": values})


def alarm(profile: ReferenceProfile, current: pd.DataFrame, test: str) -> bool:
    (column,) = assess_drift(profile, current, tests=test).columns
    assert column.test == test and column.status in ("ok", "drift")
    return column.drifted


@pytest.mark.parametrize(("test", "n"), NUMERIC_TESTS)
def test_numeric_tests_find_a_mean_shift_and_a_variance_change(test: str, n: int) -> None:
    profile = ReferenceProfile.from_frame(numeric(20_000, seed=10_000))
    # Half a standard deviation, and a 1.75x wider spread with the same mean (PSI on deciles
    # is the least sensitive to spread: about 0.19 at 1.5x, under its 0.2 threshold).
    assert all(alarm(profile, numeric(n, seed, loc=0.5), test) for seed in range(10))
    assert all(alarm(profile, numeric(n, seed, scale=1.75), test) for seed in range(10))


@pytest.mark.parametrize(("test", "n"), CATEGORICAL_TESTS)
def test_categorical_tests_find_a_new_category(test: str, n: int) -> None:
    profile = ReferenceProfile.from_frame(categorical(20_000, seed=10_000))
    for seed in range(10):
        (column,) = assess_drift(profile, categorical(n, seed, new=0.2), tests=test).columns
        assert column.drifted and dict(column.unseen)["e"] > 0


@pytest.mark.parametrize(("test", "n"), NUMERIC_TESTS)
def test_numeric_tests_stay_quiet_on_unshifted_samples(test: str, n: int) -> None:
    profile = ReferenceProfile.from_frame(numeric(20_000, seed=10_000))
    alarms = sum(alarm(profile, numeric(n, seed), test) for seed in SEEDS)
    assert alarms <= (10 if test == "ks" else 0), f"{test}: {alarms} alarms in 100 samples"


@pytest.mark.parametrize(("test", "n"), CATEGORICAL_TESTS)
def test_categorical_tests_stay_quiet_on_unshifted_samples(test: str, n: int) -> None:
    profile = ReferenceProfile.from_frame(categorical(20_000, seed=10_000))
    alarms = sum(alarm(profile, categorical(n, seed), test) for seed in SEEDS)
    assert alarms <= (10 if test == "chi2" else 0), f"{test}: {alarms} alarms in 100 samples"


def test_the_p_value_tests_false_alarm_near_their_level() -> None:
    # Not only bounded above: about 5% of unshifted samples alarm, so the test is not simply
    # deaf (a KS that never fires would pass the quiet test above).
    profile = ReferenceProfile.from_frame(numeric(20_000, seed=10_000))
    alarms = sum(alarm(profile, numeric(500, seed), "ks") for seed in range(400))
    assert 8 <= alarms <= 32, alarms  # 2%..8% of 400
