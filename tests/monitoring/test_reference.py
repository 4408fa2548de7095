"""Reference profiles: computed once, stored as JSON, loaded back to the same verdicts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import keel.data
from keel.errors import InvalidInput, NotFound
from keel.monitoring import ReferenceProfile, assess_drift
from keel.monitoring._reference import EXACT_ROWS, quantile_grid

RNG = np.random.default_rng(3)


def _frame(n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": RNG.normal(shift, 1, n),
            "c": RNG.choice(["a", "b", "c"], n),
            "b": RNG.random(n) < 0.5,
        }
    )


def test_numeric_summary_has_fixed_quantile_edges() -> None:
    profile = ReferenceProfile.from_frame(_frame(50_000))
    x = profile.columns["x"]
    assert len(x.edges) == len(quantile_grid()) == 1_181
    assert x.edges[0] == x.min and x.edges[-1] == x.max
    assert len(x.counts) == len(x.edges) + 1 and sum(x.counts) == 50_000
    assert x.counts[-1] == 0  # nothing above the reference maximum
    assert len(x.deciles) == 9 and len(x.vigintiles) == 19
    assert x.values is None  # large: binned tests only
    small = ReferenceProfile.from_frame(_frame(EXACT_ROWS)).columns["x"]
    assert small.values is not None and len(small.values) == EXACT_ROWS
    assert profile.columns["b"].kind == "categorical"
    assert set(profile.columns["b"].categories) == {"true", "false"}


def test_json_round_trip_gives_the_same_report() -> None:
    ref, cur = _frame(3_000), _frame(3_000, shift=0.4)
    profile = ReferenceProfile.from_frame(ref, source="train")
    text = profile.to_json()
    assert "NaN" not in text
    again = ReferenceProfile.from_json(text)
    assert again == profile and again.sample == profile.sample
    a = assess_drift(profile, cur, multivariate=True)
    b = assess_drift(again, cur, multivariate=True)
    assert a == b and a.reference == "train"


def test_sample_is_bounded_and_json_safe() -> None:
    data = _frame(10_000)
    data.loc[:5, "x"] = np.inf
    profile = ReferenceProfile.from_frame(data, sample_rows=500)
    assert {len(v) for v in profile.sample.values()} == {500}
    json.loads(profile.to_json())
    assert ReferenceProfile.from_frame(data, sample_rows=0).sample == {}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"format": "other"}),
        json.dumps({"format": "keel.drift-reference/1"}),
    ],
)
def test_bad_json_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        ReferenceProfile.from_json(text)
    assert err.value.field == "reference"


def test_from_dataset_version() -> None:
    v1 = keel.data.add(_frame(2_000), name="churn")
    profile = ReferenceProfile.from_dataset("churn@v1")
    assert profile.source == "churn@v1" and profile.rows == 2_000
    report = assess_drift("churn@v1", _frame(2_000, shift=1.0))
    assert report.reference == v1.ref and report.column("x").drifted
    with pytest.raises(NotFound):
        ReferenceProfile.from_dataset("churn@v9")


def test_import_keel_monitoring_is_light() -> None:
    code = (
        "import sys, keel, keel.monitoring; keel.monitoring.assess_drift;"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'scipy', 'sklearn')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_from_the_stored_dataset_profile_without_reading_data() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 20_000),
            "c": rng.choice(["a", "b"], 20_000),
            "b": rng.random(20_000) < 0.5,
            "k": np.full(20_000, 7),
        }
    )
    keel.data.add(ref, name="stored")
    coarse = ReferenceProfile.from_dataset("stored@v1", use="profile")
    fine = ReferenceProfile.from_dataset("stored@v1")
    assert coarse.sample == {} and len(coarse.columns["x"].edges) == 21
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.5, 1, 20_000),
            "c": rng.choice(["a", "b", "z"], 20_000),
            "b": rng.random(20_000) < 0.5,
            "k": np.full(20_000, 8),
        }
    )
    a = assess_drift(coarse, cur, multivariate=True)
    b = assess_drift(fine, cur)
    # 20 fixed-width bins against 0.1 % quantile bins: the distance moves by a few hundredths.
    assert a.column("x").statistic == pytest.approx(b.column("x").statistic, abs=0.03)
    assert a.column("x").drifted and b.column("x").drifted
    assert a.column("c").statistic == pytest.approx(b.column("c").statistic, abs=1e-12)
    assert [k for k, _ in a.column("c").unseen] == ["z"]
    assert a.column("b").status == "ok" and a.column("b").statistic == pytest.approx(
        b.column("b").statistic, abs=1e-12
    )
    assert a.column("k").status == "insufficient_data"
    assert a.column("k").reason == "constant in the reference (7); 100.0% of current values differ"
    assert a.multivariate is not None and a.multivariate.status == "insufficient_data"
    assert "no sample rows" in a.multivariate.reason
    with pytest.raises(InvalidInput) as err:
        ReferenceProfile.from_dataset("stored@v1", use="nothing")
    assert err.value.field == "use"
