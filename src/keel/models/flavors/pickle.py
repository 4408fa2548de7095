"""Pickle, joblib or cloudpickle: accepted only when asked for with ``trusted=True``, and loaded
only after an admin marks the version trusted, because unpickling runs code chosen by whoever
wrote the file. ``config={"serializer": "joblib"}`` picks the library (default: pickle)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded, proba_of

FILE = "model.pkl"
_SERIALIZERS = ("pickle", "joblib", "cloudpickle")


def _module(name: object) -> Any:
    if name not in _SERIALIZERS:
        raise InvalidInput(f"must be one of {', '.join(_SERIALIZERS)}", field="config.serializer")
    try:
        return importlib.import_module(str(name))
    except ImportError as exc:
        raise InvalidInput(f"{name} is not installed", field="config.serializer") from exc


class PickleFlavor(Flavor):
    name = "pickle"
    packages = ("joblib", "cloudpickle")
    requires_trust = True

    def accepts(self, model: Any) -> bool:
        return True  # anything pickles; never chosen by detection

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        serializer = config.get("serializer", "pickle")
        lib = _module(serializer)
        with (folder / FILE).open("wb") as f:
            if serializer == "joblib":
                lib.dump(model, f)
            else:
                lib.dump(model, f, protocol=5)
        return {"file": FILE, "serializer": serializer}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        # Reached only for a version an admin marked trusted (checked by the loader).
        lib = _module(options.get("serializer", "pickle"))
        with (folder / FILE).open("rb") as f:
            model = lib.load(f)
        if not callable(getattr(model, "predict", None)):
            raise InvalidInput("the unpickled object has no predict method", field="model")
        return Loaded(raw=model, predict=model.predict, predict_proba=proba_of(model))
