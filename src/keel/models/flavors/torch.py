"""PyTorch modules: the weights as safetensors, the architecture from the user's own code.

The module's class is recorded as ``module:Class`` with JSON constructor arguments
(``config``); loading imports that class (it must subclass ``torch.nn.Module``), builds it and
loads the weights strictly, then switches it to eval mode. No pickle is involved."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded, class_path, import_class, require

FILE = "model.safetensors"


def _torch() -> Any:
    return require("torch", package="torch", extra="torch", purpose="PyTorch models")


def _safetensors() -> Any:
    return require(
        "safetensors.torch", package="safetensors", extra="torch", purpose="PyTorch models"
    )


class TorchFlavor(Flavor):
    name = "torch"
    packages = ("torch", "safetensors")

    def accepts(self, model: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(model, torch.nn.Module)

    def modules(self, model: Any) -> list[str]:
        return [type(model).__module__]

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        _safetensors().save_model(model, str(folder / FILE))
        return {"file": FILE, "class": class_path(type(model)), "config": dict(config)}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        import numpy as np

        torch = _torch()
        cls = import_class(options.get("class"), base=torch.nn.Module)
        config = options.get("config") or {}
        if not isinstance(config, dict):
            raise InvalidInput("must be a JSON object", field="options.config")
        try:
            module = cls(**config)
        except TypeError as exc:
            raise InvalidInput(
                f"cannot build {options.get('class')} from config {config}: {exc}; pass the "
                "constructor arguments as config=… when logging",
                field="config",
            ) from exc
        try:
            _safetensors().load_model(module, str(folder / FILE), strict=True)
        except RuntimeError as exc:  # missing or unexpected weights, wrong shapes
            raise InvalidInput(
                f"the stored weights do not fit {options.get('class')}: {exc}", field="model"
            ) from exc
        module.eval()

        def predict(data: Any) -> Any:
            arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            with torch.no_grad():
                out = module(torch.from_numpy(np.ascontiguousarray(arr)))
            return out.detach().cpu().numpy()

        return Loaded(raw=module, predict=predict)
