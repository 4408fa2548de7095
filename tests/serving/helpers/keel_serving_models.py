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


class Raising(PythonModel):
    """A challenger that fails on every batch once a test sets ``failing = True`` (keel
    predicts the input example when saving a model)."""

    failing = False

    def predict(self, model_input: Any) -> Any:
        if self.failing:
            raise RuntimeError("this challenger always fails")
        return np.asarray(model_input["a"], dtype="float64")


class Slow(PythonModel):
    """A challenger that takes 200 ms per batch, then answers ``a - 1000``."""

    def predict(self, model_input: Any) -> Any:
        time.sleep(0.2)
        return np.asarray(model_input["a"], dtype="float64") - 1000


class Broken(PythonModel):
    """Logs fine (keel loads a model back when saving it), then fails to load once a test
    sets ``loadable = False``: a version that cannot be loaded where it is served."""

    loadable = True

    @classmethod
    def from_config(cls, config: Any) -> Broken:
        if not cls.loadable:
            raise RuntimeError("this version cannot be loaded")
        return cls()

    def predict(self, model_input: Any) -> Any:
        return np.asarray(model_input["a"], dtype="float64")
