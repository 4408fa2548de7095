"""Models: safe formats, signatures, and the registry (versions, aliases, trust, lineage).
See ``docs/models.md``.

The functions here work on the configured stores (metadata at ``tracking_uri``, files at
``artifacts_uri``); ``Models`` takes explicit ones. No model library, SQLAlchemy or pandas is
imported by ``import keel.models``: each loads when first needed.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from keel.models._records import (
    ColSpec,
    DatasetInput,
    ModelEnv,
    ModelFile,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Signature,
    VersionStatus,
)
from keel.models._uri import ModelRef, parse_uri
from keel.models.flavors.python import PythonModel

if TYPE_CHECKING:
    from keel.models._base import ModelRegistry
    from keel.models._load import LoadedModel
    from keel.models._log import LoggedModel
    from keel.models._registry import Lineage, Models
    from keel.models._signature import infer_signature
    from keel.models._store import open_registry

__all__ = [
    "ColSpec",
    "DatasetInput",
    "Lineage",
    "LoadedModel",
    "LoggedModel",
    "ModelEnv",
    "ModelFile",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "Models",
    "NewModelVersion",
    "PythonModel",
    "RegisteredModel",
    "Signature",
    "VersionStatus",
    "default",
    "delete_alias",
    "export_model",
    "get_version",
    "import_model",
    "infer_signature",
    "lineage",
    "list_models",
    "list_versions",
    "load",
    "log",
    "mark_trusted",
    "models_using",
    "open_registry",
    "parse_uri",
    "register",
    "resolve_uri",
    "set_alias",
    "set_description",
    "set_tag",
]

_default: dict[tuple[str, str], Models] = {}
_lock = threading.Lock()


def default() -> Models:
    """The ``Models`` on the configured stores (rebuilt when the settings change)."""
    from keel.config import get_settings

    settings = get_settings()
    key = (settings.tracking_uri, settings.artifacts_uri)
    with _lock:
        found = _default.get(key)
        if found is None:
            from keel.artifacts import open_content_store
            from keel.models._registry import Models
            from keel.models._store import open_registry
            from keel.tracking import open_store

            # A team server owns its artifact store: its clients reach it through the server.
            remote = settings.tracking_uri.startswith(("http://", "https://"))
            content = open_content_store(settings.tracking_uri if remote else None)
            found = Models(open_registry(), content, open_store())
            _default.clear()
            _default[key] = found
    return found


@overload
def log(
    model: Any,
    name: str,
    *,
    signature_from: Any = None,
    input_example: Any = None,
    flavor: str | None = None,
    trusted: bool = False,
    config: Mapping[str, Any] | None = None,
    artifact_path: str = "model",
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion: ...


@overload
def log(
    model: Any,
    name: None = None,
    *,
    signature_from: Any = None,
    input_example: Any = None,
    flavor: str | None = None,
    trusted: bool = False,
    config: Mapping[str, Any] | None = None,
    artifact_path: str = "model",
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> LoggedModel: ...


def log(
    model: Any,
    name: str | None = None,
    *,
    signature_from: Any = None,
    input_example: Any = None,
    flavor: str | None = None,
    trusted: bool = False,
    config: Mapping[str, Any] | None = None,
    artifact_path: str = "model",
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion | LoggedModel:
    """Save ``model`` in a safe format chosen by its type (skops, XGBoost/LightGBM native,
    ONNX, safetensors, ``PythonModel``) with its signature (inferred from ``signature_from``),
    an input example (``input_example``, default the first rows of ``signature_from``), its
    environment and its predict latency on the example.

    In a run the files are logged under ``artifact_path`` and, with ``name``, registered as
    the next version (lineage: the run, its datasets, its commit); outside a run ``name`` is
    required. ``config``: JSON constructor arguments of a PyTorch module or ``PythonModel``.
    ``flavor="pickle"`` needs ``trusted=True`` and loads only once an admin marks the version
    trusted. Returns the READY ``ModelVersion``, or a ``LoggedModel`` without ``name``."""
    from keel.models._log import log as _log

    return _log(
        default(),
        model,
        name=name,
        signature_from=signature_from,
        input_example=input_example,
        flavor=flavor,
        trusted=trusted,
        config=config,
        artifact_path=artifact_path,
        description=description,
        tags=tags,
    )


def load(uri: str | ModelVersion) -> LoadedModel:
    """Load ``models:/name/3``, ``models:/name@alias`` or ``runs:/<id>/<path>``: every file
    is checked against its recorded digest before it is opened; ``predict`` checks inputs
    against the signature."""
    from keel.models._load import load as _load

    return _load(default(), uri)


def register(
    uri: str,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion:
    """Register the model logged at ``runs:/<id>/<path>`` as the next version of ``name``."""
    return default().register(uri, name, description=description, tags=tags)


def resolve_uri(uri: str) -> ModelVersion:
    """The registered version a reference names (``models:/churn@champion``, ``churn/3`` …)."""
    return default().resolve(uri)


def get_version(name: str, version: int | str | None = None) -> ModelVersion:
    """A version by number or alias: ``get_version("churn", 3)``, ``("churn", "champion")``."""
    return default().get_version(name, version)


def list_models() -> list[RegisteredModel]:
    return default().list_models()


def list_versions(name: str | None = None) -> list[ModelVersion]:
    return default().list_versions(name)


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``name@alias`` (``champion``, ``challenger``, any name) at a ready version."""
    return default().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    default().delete_alias(name, alias)


def set_tag(name: str, key: str, value: object, *, version: int | None = None) -> None:
    """Tag the model ``name``, or one of its versions."""
    default().set_tag(name, key, value, version=version)


def set_description(name: str, text: str, *, version: int | None = None) -> None:
    default().set_description(name, text, version=version)


def mark_trusted(name: str, version: int, *, reason: str, trusted: bool = True) -> ModelVersion:
    """Allow (or, with ``trusted=False``, forbid again) loading a version whose files run code
    (pickle). An admin's decision: the server restricts it to admins."""
    return default().mark_trusted(name, version, reason=reason, trusted=trusted)


def export_model(uri: str, dest: str | Path) -> Path:
    """Pack a version's files (each verified) into a ``.tar.gz`` at ``dest``."""
    from keel.models._exchange import export_model as _export

    return _export(default(), uri, dest)


def import_model(
    archive: str | Path,
    name: str,
    *,
    trusted: bool = False,
    description: str = "",
    tags: Mapping[str, object] | None = None,
) -> ModelVersion:
    """Register the model in ``archive`` (from ``export_model``) as the next version of
    ``name``; the archive is unpacked by Keel's one safe extractor."""
    from keel.models._exchange import import_model as _import

    return _import(default(), archive, name, trusted=trusted, description=description, tags=tags)


def lineage(uri: str) -> Lineage:
    """A version's run (params, metrics), dataset versions and code commit."""
    return default().lineage(uri)


def models_using(dataset_ref: str) -> list[ModelVersion]:
    """Versions trained by runs that read ``dataset_ref`` (e.g. ``churn@v3``)."""
    return default().models_using(dataset_ref)


_LAZY: dict[str, str] = {
    "Models": "keel.models._registry",
    "Lineage": "keel.models._registry",
    "ModelRegistry": "keel.models._base",
    "LoadedModel": "keel.models._load",
    "LoggedModel": "keel.models._log",
    "open_registry": "keel.models._store",
    "infer_signature": "keel.models._signature",
}

# --- release (MODELS-RELEASE: evaluation, gates, promotion, cards) ------------------------------
# Names added here by the release work; this block is theirs to edit.
_LAZY.update(
    {
        "Approval": "keel.models._release",
        "EvaluationResult": "keel.models._release",
        "GateResult": "keel.models._release",
        "GateSpec": "keel.models._release",
        "PromotionDecision": "keel.models._release",
        "approvals": "keel.models._release",
        "approve": "keel.models._release",
        "card": "keel.models._release",
        "check_gates": "keel.models._release",
        "decisions": "keel.models._release",
        "evaluate": "keel.models._release",
        "evaluations": "keel.models._release",
        "load_gates": "keel.models._release",
        "promote": "keel.models._release",
        "set_card": "keel.models._release",
        "write_card": "keel.models._release",
        "ModelCard": "keel.models._card",
    }
)
__all__ += [
    "Approval",
    "EvaluationResult",
    "GateResult",
    "GateSpec",
    "ModelCard",
    "PromotionDecision",
    "approvals",
    "approve",
    "card",
    "check_gates",
    "decisions",
    "evaluate",
    "evaluations",
    "load_gates",
    "promote",
    "set_card",
    "write_card",
]
# --- end release ---------------------------------------------------------------------------------

# --- packaging (SERVE-BENCH: keel.models._package) ----------------------------------------------
_LAZY.update({"package": "keel.models._package", "PackagedBundle": "keel.models._package"})
__all__ += ["PackagedBundle", "package"]
# --- end packaging -------------------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.models' has no attribute {name!r}")
