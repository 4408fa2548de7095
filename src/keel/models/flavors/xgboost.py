"""XGBoost models in XGBoost's own JSON format (no pickle): the scikit-learn wrappers keep
their classes and parameters in it, a ``Booster`` its trees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded, module_of, proba_of, require

FILE = "model.json"
# The classes a file may ask Keel to construct (by name, from the xgboost package only).
_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def _xgb() -> Any:
    return require("xgboost", package="xgboost", extra="models", purpose="XGBoost models")


class XGBoostFlavor(Flavor):
    name = "xgboost"
    packages = ("xgboost", "sklearn")

    def accepts(self, model: Any) -> bool:
        return module_of(model).startswith("xgboost") and (
            type(model).__name__ in _CLASSES or type(model).__name__ == "Booster"
        )

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        model.save_model(str(folder / FILE))
        return {"file": FILE, "class": type(model).__name__}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        xgb = _xgb()
        cls = options.get("class")
        path = str(folder / FILE)
        if cls == "Booster":
            booster = xgb.Booster()
            booster.load_model(path)

            def predict(data: Any) -> Any:
                return booster.predict(xgb.DMatrix(data))

            return Loaded(raw=booster, predict=predict)
        if cls not in _CLASSES:
            raise InvalidInput(f"unknown XGBoost class {cls!r}", field="options.class")
        model = getattr(xgb, str(cls))()
        model.load_model(path)
        return Loaded(raw=model, predict=model.predict, predict_proba=proba_of(model))
