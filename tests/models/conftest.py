"""Fixtures of the model tests: training data and the helper module path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture
def helpers_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``tests/models/helpers`` importable (model classes logged by path live there)."""
    monkeypatch.syspath_prepend(str(HELPERS))
    return HELPERS


@pytest.fixture
def churn() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    n = 200
    x = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype("int64"),
            "charges": rng.normal(70, 20, n),
            "plan": rng.choice(["basic", "pro", "max"], n),
        }
    )
    y = pd.Series(((x.charges > 70) ^ (x.tenure < 12)).astype("int64"), name="churned")
    return x, y


@pytest.fixture
def numeric(churn: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    x, y = churn
    return x[["tenure", "charges"]].astype("float64"), y
