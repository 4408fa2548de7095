"""LightGBM models in LightGBM's own text format (no pickle). The scikit-learn wrappers are
loaded as a ``Booster``; a classifier's labels are kept in the options so ``predict``
answers labels and ``predict_proba`` probabilities, as the wrapper did."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.models.flavors._base import Flavor, Loaded, module_of, require

FILE = "model.txt"


def _lgb() -> Any:
    return require("lightgbm", package="lightgbm", extra="models", purpose="LightGBM models")


def _plain(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    packages = ("lightgbm", "sklearn")

    def accepts(self, model: Any) -> bool:
        return module_of(model).startswith("lightgbm") and (
            type(model).__name__ in ("LGBMClassifier", "LGBMRegressor", "LGBMRanker", "Booster")
        )

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        booster = model if type(model).__name__ == "Booster" else model.booster_
        booster.save_model(str(folder / FILE))
        options: dict[str, Any] = {"file": FILE, "class": type(model).__name__}
        if type(model).__name__ == "LGBMClassifier":
            options["classes"] = _plain(model.classes_)
        return options

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        import numpy as np

        lgb = _lgb()
        booster = lgb.Booster(model_file=str(folder / FILE))
        classes = options.get("classes")
        if classes is None:
            return Loaded(raw=booster, predict=booster.predict)
        labels = np.asarray(classes)

        def predict_proba(data: Any) -> Any:
            proba = np.asarray(booster.predict(data))
            return np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba

        def predict(data: Any) -> Any:
            return labels[np.argmax(predict_proba(data), axis=1)]

        return Loaded(raw=booster, predict=predict, predict_proba=predict_proba)
