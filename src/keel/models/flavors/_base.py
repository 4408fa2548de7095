"""The flavour contract: how one kind of model is saved to a folder of files and loaded back.

A flavour never pickles unless it is the ``pickle`` flavour, which is marked
``requires_trust``: such a version loads only after an admin marks it trusted. Libraries are
imported inside the methods, so ``import keel.models`` loads none of them.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from keel.errors import InvalidInput, KeelError, MissingDependency


def require(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependency`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package, extra=extra, purpose=purpose) from exc


@dataclass(frozen=True, slots=True)
class Loaded:
    """A model loaded by a flavour: the library object and its prediction functions."""

    raw: Any
    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None = None


class Flavor(abc.ABC):
    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # import names; their distributions are recorded
    requires_trust: ClassVar[bool] = False

    @abc.abstractmethod
    def accepts(self, model: Any) -> bool:
        """True if this flavour saves ``model`` (checked without importing its library)."""

    @abc.abstractmethod
    def save(self, model: Any, folder: Path, *, config: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``model`` into the empty ``folder``; return JSON options ``load`` needs."""

    @abc.abstractmethod
    def load(self, folder: Path, options: Mapping[str, Any]) -> Loaded:
        """Load the model from ``folder`` (every file already verified against its digest)."""

    def modules(self, model: Any) -> list[str]:
        """Modules of user code the model needs (their distributions go in the environment)."""
        return []


@contextmanager
def library_errors(what: str, field: str) -> Iterator[None]:
    """A model library's own exception (any type: each library has its own) as
    ``InvalidInput`` naming ``field``; Keel's errors pass unchanged."""
    try:
        yield
    except KeelError:
        raise
    except Exception as exc:
        raise InvalidInput(f"{what}: {type(exc).__name__}: {exc}", field=field) from exc


def module_of(model: Any) -> str:
    return type(model).__module__ or ""


def class_path(cls: type) -> str:
    if "<locals>" in cls.__qualname__:
        raise InvalidInput(
            f"{cls.__qualname__} is defined inside a function; define it at module level in an "
            "importable module so it can be imported when the model is loaded",
            field="model",
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: object, *, base: type, field: str = "options.class") -> type:
    """The class at ``module:qualname``, which must subclass ``base``. Importing names the
    user's own code; nothing is called before the subclass check passes."""
    if not isinstance(path, str) or ":" not in path:
        raise InvalidInput(f"expected 'module:Class', got {path!r}", field=field)
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(
            f"cannot import {module_name!r} for {qualname}: {exc}; install or put on sys.path "
            "the code that defines the model class",
            field=field,
        ) from exc
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InvalidInput(f"{module_name!r} has no {qualname!r}", field=field)
    if not isinstance(obj, type) or not issubclass(obj, base):
        raise InvalidInput(f"{path} is not a subclass of {base.__qualname__}", field=field)
    return obj


def proba_of(model: Any) -> Callable[[Any], Any] | None:
    method = getattr(model, "predict_proba", None)
    return method if callable(method) else None
