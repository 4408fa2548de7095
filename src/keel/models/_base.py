"""The model registry contract. ``SqlModelRegistry`` implements it on SQLite and PostgreSQL,
and ``keel.testing.models_conformance`` is the one suite every implementation passes.

The registry holds metadata only: a version's bytes are objects in the content store, and the
registry records their digests and sizes (the manifest) so a load can check each file before
opening it. Three small contracts make up a registry: models, versions, and aliases.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence

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

__all__ = [
    "AliasStore",
    "ColSpec",
    "DatasetInput",
    "ModelCatalog",
    "ModelEnv",
    "ModelFile",
    "ModelRegistry",
    "ModelVersion",
    "NewModelVersion",
    "RegisteredModel",
    "Signature",
    "VersionStatus",
    "VersionStore",
]


class ModelCatalog(abc.ABC):
    @abc.abstractmethod
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """Register a model name; ``AlreadyExists`` if taken, ``InvalidInput`` if malformed."""

    @abc.abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """The registered model with its tags and aliases; ``NotFound`` if absent."""

    @abc.abstractmethod
    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""

    @abc.abstractmethod
    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        """Replace the description and/or set and delete tags of a model."""


class VersionStore(abc.ABC):
    @abc.abstractmethod
    def create_version(self, new: NewModelVersion) -> ModelVersion:
        """Record a PENDING version numbered race-free (1, 2, …; numbers are never reused),
        creating the model on demand."""

    @abc.abstractmethod
    def complete_version(
        self,
        name: str,
        version: int,
        *,
        files: Sequence[ModelFile] = (),
        error: str | None = None,
    ) -> ModelVersion:
        """End a PENDING version: READY with its manifest (``files``, which the caller has
        stored and verified), or FAILED with ``error``. ``Conflict`` unless it is PENDING."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion:
        """The version with its files, tags and aliases; ``NotFound`` if absent."""

    @abc.abstractmethod
    def list_versions(
        self,
        name: str | None = None,
        *,
        run_ids: Iterable[str] | None = None,
        status: VersionStatus | None = None,
    ) -> list[ModelVersion]:
        """Versions of ``name`` (or of every model), optionally only those logged by one of
        ``run_ids`` or in ``status``, by name then number."""

    @abc.abstractmethod
    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        """Replace the description and/or set and delete tags of a version."""

    @abc.abstractmethod
    def mark_trusted(
        self, name: str, version: int, *, reason: str, trusted: bool = True
    ) -> ModelVersion:
        """Record an admin's decision that this version's code-executing files may be loaded
        (or withdraw it). ``reason`` is required and kept. Who may call this is the server's
        business (admins only); the library records it."""

    @abc.abstractmethod
    def referenced_digests(self) -> Iterator[str]:
        """Every file digest a version refers to (garbage collection keeps these)."""


class AliasStore(abc.ABC):
    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``name@alias`` at a READY version (moving it if it pointed elsewhere).
        Aliases look like names but may not be ``latest`` or all digits."""

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``name@alias``; ``NotFound`` if it does not exist."""

    @abc.abstractmethod
    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``name@alias`` points at; ``latest`` is the newest READY version."""


class ModelRegistry(ModelCatalog, VersionStore, AliasStore, abc.ABC):
    """Everything the registry persists. Implementations raise only ``keel.errors`` types."""

    def close(self) -> None:
        """Release connections."""
