"""Custom models the serving tests log by class path (``PythonModel`` never pickles)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from keel.models import PythonModel


class Sleepy(PythonModel):
    """Sleeps ``max(sleep)`` seconds per batch, then answers ``2 * a``: a slow or stuck model."""

    def predict(self, model_input: Any) -> Any:
        time.sleep(float(model_input["sleep"].max()))
        return np.asarray(model_input["a"], dtype="float64") * 2
