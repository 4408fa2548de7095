"""``log``: save a model in a safe format chosen by its type, with its signature, input example,
environment and latency, to the active run and/or as the next version of a registered model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.models import _bundle, _names
from keel.models._records import ModelFile, ModelVersion

if TYPE_CHECKING:
    from keel.models._registry import Models


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged to a run without registering it: load or register it by ``uri``."""

    run_id: str
    artifact_path: str
    flavor: str
    files: tuple[ModelFile, ...]

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


def log(
    models: Models,
    model: Any,
    *,
    name: str | None = None,
    signature_from: Any = None,
    input_example: Any = None,
    flavor: str | None = None,
    trusted: bool = False,
    config: Mapping[str, Any] | None = None,
    artifact_path: str = "model",
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion | LoggedModel:
    from keel.artifacts import safe_relpath
    from keel.tracking import active_run

    if name is not None:
        _names.name(name)
    path = safe_relpath(artifact_path, field="artifact_path")
    chosen = _bundle.choose(model, flavor, trusted=trusted)
    if signature_from is None and input_example is None:
        raise InvalidInput(
            "pass signature_from=X (a sample of the model's inputs) or input_example=…: every "
            "model carries its signature, an input example and its predict latency",
            field="signature_from",
        )
    run = active_run()
    if run is None and name is None:
        raise InvalidInput("outside a run a model must be registered: pass name=…", field="name")
    if run is not None and run.client.list_artifacts(run.id, path):
        raise InvalidInput(
            f"run {run.id} already has files at {path!r}; pass another artifact_path=…",
            field="artifact_path",
        )
    with tempfile.TemporaryDirectory(prefix="keel-model-") as tmp:
        folder = Path(tmp)
        bundle = _bundle.save(
            model,
            folder,
            flavor=chosen,
            signature_from=signature_from,
            input_example=input_example,
            config=config,
        )
        if run is not None:
            logged = run.client.log_artifacts(run.id, folder, path)
            prefix = path + "/"
            files = tuple(ModelFile(a.path[len(prefix) :], a.digest, a.size) for a in logged)
            if name is None:
                return LoggedModel(run.id, path, chosen.name, files)
            return models.register(
                f"runs:/{run.id}/{path}", name, description=description, tags=tags
            )
        assert name is not None
        pending = models.create_pending(
            name, bundle, run_id=None, source="", description=description, tags=tags
        )

        def store() -> list[ModelFile]:
            return [
                ModelFile(rel, ref.digest, ref.size) for rel, ref in models.content.put_tree(folder)
            ]

        return models.finish(pending, store)
