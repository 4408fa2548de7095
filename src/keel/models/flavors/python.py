"""``keel.PythonModel``: custom prediction code, saved as a reference to its class plus JSON
config and data files, never as pickled bytes. The class is imported from the user's own
importable package when the model is loaded, so the code that runs is the code installed
where it loads, at the version the environment records.
"""

from __future__ import annotations

import abc
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models.flavors._base import Flavor, Loaded, class_path, import_class

_ARTIFACTS = "artifacts"


class PythonModel(abc.ABC):
    """Base of custom models. Subclass it in an importable module and implement ``predict``.

    - ``get_config()`` returns JSON the model is rebuilt from (``from_config``, default
      ``cls(**config)``);
    - ``artifacts()`` names local files or folders to store with the model; at load time
      ``load_context(paths)`` receives where they are (same keys);
    - define ``predict_proba`` too if the model has it.
    """

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PythonModel:
        return cls(**config)

    def artifacts(self) -> Mapping[str, str | Path]:
        return {}

    def load_context(self, artifacts: Mapping[str, Path]) -> None:  # noqa: B027 - optional hook
        """Read the stored artifacts (called once after ``from_config`` at load time)."""

    @abc.abstractmethod
    def predict(self, model_input: Any) -> Any:
        """Predictions for a batch (already checked against the signature)."""


def _copy_artifact(name: str, source: Path, target: Path) -> str:
    if source.is_symlink():
        raise InvalidInput(f"{source} is a symlink; store its target", field=f"artifacts.{name}")
    if source.is_file():
        target.mkdir(parents=True)
        shutil.copy2(source, target / source.name)
        return source.name
    if source.is_dir():
        shutil.copytree(source, target / source.name, symlinks=True)
        for path in (target / source.name).rglob("*"):
            if path.is_symlink():
                raise InvalidInput(f"{path} is a symlink", field=f"artifacts.{name}")
        return source.name
    raise InvalidInput(f"{source} does not exist", field=f"artifacts.{name}")


class PythonFlavor(Flavor):
    name = "python"
    packages = ()

    def accepts(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def modules(self, model: Any) -> list[str]:
        return [type(model).__module__]

    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        from keel.models import _names

        settings = dict(config) if config else model.get_config()
        stored: dict[str, str] = {}
        for key, source in model.artifacts().items():
            _names.name(key, "artifacts")
            stored[key] = _copy_artifact(key, Path(source), folder / _ARTIFACTS / key)
        return {"class": class_path(type(model)), "config": settings, "artifacts": stored}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        from keel.artifacts import safe_relpath

        cls = import_class(options.get("class"), base=PythonModel)
        config = options.get("config") or {}
        if not isinstance(config, dict):
            raise InvalidInput("must be a JSON object", field="options.config")
        model = cls.from_config(config)  # type: ignore[attr-defined]
        paths = {
            key: folder / _ARTIFACTS / safe_relpath(key, field="artifacts") / safe_relpath(name)
            for key, name in dict(options.get("artifacts") or {}).items()
        }
        model.load_context(paths)
        proba = getattr(model, "predict_proba", None)
        return Loaded(
            raw=model, predict=model.predict, predict_proba=proba if callable(proba) else None
        )
