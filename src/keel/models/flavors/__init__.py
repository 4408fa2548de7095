"""Model flavours: one module per kind of model. ``for_model`` picks the flavour that saves a
model (by its type, without importing any library), ``get`` the one that loads a version.

Detection order matters: XGBoost's and LightGBM's estimators are also scikit-learn
estimators, and they are saved in their native formats rather than with skops. ``pickle`` is
never chosen by detection: it must be asked for, with ``trusted=True``.
"""

from __future__ import annotations

import importlib
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded

# name -> "module:class", in detection order
_FLAVORS: dict[str, str] = {
    "python": "keel.models.flavors.python:PythonFlavor",
    "xgboost": "keel.models.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "keel.models.flavors.lightgbm:LightGBMFlavor",
    "sklearn": "keel.models.flavors.sklearn:SklearnFlavor",
    "onnx": "keel.models.flavors.onnx:OnnxFlavor",
    "torch": "keel.models.flavors.torch:TorchFlavor",
    "pickle": "keel.models.flavors.pickle:PickleFlavor",
}
_DETECTED = ("python", "xgboost", "lightgbm", "sklearn", "onnx", "torch")
_cache: dict[str, Flavor] = {}

__all__ = ["NAMES", "Flavor", "Loaded", "for_model", "get"]

NAMES = tuple(_FLAVORS)


def get(name: str) -> Flavor:
    """The flavour called ``name``; ``InvalidInput`` for an unknown one."""
    found = _cache.get(name)
    if found is None:
        if name not in _FLAVORS:
            raise InvalidInput(
                f"unknown flavour {name!r}; known: {', '.join(_FLAVORS)}", field="flavor"
            )
        module, _, cls = _FLAVORS[name].partition(":")
        found = getattr(importlib.import_module(module), cls)()
        _cache[name] = found
    return found


def for_model(model: Any) -> Flavor:
    """The flavour that saves ``model`` safely; ``InvalidInput`` if none does."""
    for name in _DETECTED:
        flavor = get(name)
        if flavor.accepts(model):
            return flavor
    cls = type(model)
    raise InvalidInput(
        f"no safe format for {cls.__module__}.{cls.__qualname__}: Keel saves scikit-learn, "
        "XGBoost, LightGBM, ONNX and PyTorch models and keel.PythonModel subclasses. Wrap it in "
        "a keel.PythonModel, or pass flavor='pickle', trusted=True (it then loads only after an "
        "admin marks the version trusted)",
        field="model",
    )
