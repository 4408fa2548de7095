"""Concept-drift detectors on synthetic error streams with a known change: a label-flip drift
(error rate 5% -> 40%) fires within a bounded delay for every method, a mean shift of regression
errors fires for ADWIN and Page-Hinkley, and unshifted streams stay quiet over 50 seeds at the
false-alarm rate docs/monitoring-performance.md states (at most 10% of seeds with any alarm)."""

from __future__ import annotations

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.monitoring import ChangePoint, detect_changes
from keel.monitoring._detectors import error_stream

N = 4000
CHANGE = 2000
SEEDS = 50
MAX_DELAY = 400  # values after the change by which every method must have fired
MAX_ALARM_SEEDS = 5  # 10% of 50 seeds


def flips(seed: int, *, shifted: bool) -> np.ndarray:
    """0/1 errors of a classifier whose labels start flipping at CHANGE (5% -> 40% wrong)."""
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(N) < CHANGE, 0.05, 0.40 if shifted else 0.05)
    return (rng.random(N) < rate).astype(np.float64)


def abs_errors(seed: int, *, shifted: bool) -> np.ndarray:
    """Absolute errors of a regression whose residuals gain a bias of 1.5 sd at CHANGE."""
    rng = np.random.default_rng(seed)
    residual = rng.normal(0.0, 10.0, N)
    if shifted:
        residual[CHANGE:] += 15.0
    return np.abs(residual)


@pytest.mark.parametrize("method", ["adwin", "page_hinkley", "ddm"])
def test_label_flip_drift_fires_soon_after_the_change(method: str) -> None:
    times = 1_790_000_000_000 + np.arange(N) * 1000
    for seed in range(SEEDS):
        found = detect_changes(flips(1000 + seed, shifted=True), times, method=method)
        after = [c for c in found if c.index >= CHANGE]
        assert after, f"{method} missed the change (seed {seed})"
        first = after[0]
        assert first.index - CHANGE <= MAX_DELAY, (method, seed, first)
        assert first.timestamp_ms == int(times[first.index])
        assert first.method == method


@pytest.mark.parametrize("method", ["adwin", "page_hinkley", "ddm"])
def test_unshifted_error_rates_stay_quiet(method: str) -> None:
    alarmed = sum(
        bool(detect_changes(flips(s, shifted=False), method=method)) for s in range(SEEDS)
    )
    assert alarmed <= MAX_ALARM_SEEDS, f"{method}: {alarmed}/{SEEDS} seeds alarmed"


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_regression_error_mean_shift_fires_and_no_shift_stays_quiet(method: str) -> None:
    alarmed = 0
    for seed in range(SEEDS):
        after = [c for c in detect_changes(abs_errors(1000 + seed, shifted=True), method=method)
                 if c.index >= CHANGE]  # fmt: skip
        assert after and after[0].index - CHANGE <= MAX_DELAY, (method, seed)
        alarmed += bool(detect_changes(abs_errors(seed, shifted=False), method=method))
    assert alarmed <= MAX_ALARM_SEEDS


def test_page_hinkley_is_scale_free_by_default() -> None:
    stream = abs_errors(7, shifted=True)
    in_units = detect_changes(stream, method="page_hinkley")
    in_cents = detect_changes(stream * 100, method="page_hinkley")
    assert [c.index for c in in_units] == [c.index for c in in_cents]
    # river's raw units (scale=1): errors of size ~8 swamp its threshold of 50 -> alarms early
    raw = detect_changes(abs_errors(7, shifted=False) * 100, method="page_hinkley", scale=1.0)
    assert raw and raw[0].index < CHANGE


def test_params_reach_river_and_bad_ones_are_named() -> None:
    stream = flips(3, shifted=True)
    loose = detect_changes(stream, method="adwin", delta=0.5)
    strict = detect_changes(stream, method="adwin", delta=1e-9)
    assert len(loose) > len(strict)
    with pytest.raises(InvalidInput) as err:
        detect_changes(stream, method="adwin", nonsense=1)
    assert err.value.field == "params"


def test_ddm_rejects_non_binary_streams_and_unknown_methods() -> None:
    with pytest.raises(InvalidInput, match="binary") as err:
        detect_changes([0.5, 1.2, 3.0], method="ddm")
    assert err.value.field == "method"
    with pytest.raises(InvalidInput) as err:
        detect_changes([0.0, 1.0], method="cusum")
    assert err.value.field == "method"
    with pytest.raises(InvalidInput):
        detect_changes([0.0, float("nan")])
    with pytest.raises(InvalidInput) as err:
        detect_changes([0.0, 1.0], [1, 2, 3])
    assert err.value.field == "timestamps_ms"


def test_empty_and_tiny_streams_find_nothing() -> None:
    assert detect_changes([], method="adwin") == []
    assert detect_changes([1.0], [5], method="page_hinkley") == []
    assert detect_changes([1.0, 0.0, 1.0], method="ddm") == []
    assert ChangePoint(3, None, "adwin").to_dict() == {
        "index": 3,
        "timestamp_ms": None,
        "method": "adwin",
    }


def test_error_stream_is_misclassification_or_absolute_error() -> None:
    assert error_stream([1, 2, 3], [1, 0, 3], task="classification").tolist() == [0.0, 1.0, 0.0]
    assert error_stream([1.0, 2.0], [1.5, 0.0], task="regression").tolist() == [0.5, 2.0]
