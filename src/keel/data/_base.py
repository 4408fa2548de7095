"""The data store contract: dataset version metadata and contract texts. ``SqlDataStore``
implements it on SQLite and PostgreSQL; ``keel.testing.data_conformance`` is the one suite every
implementation passes. Bytes live in the content store; this store only records digests."""

from __future__ import annotations

import abc
from collections.abc import Iterator

from keel.data._records import DatasetVersion, NewVersion


class VersionStore(abc.ABC):
    @abc.abstractmethod
    def create_version(self, new: NewVersion) -> DatasetVersion:
        """Record a version whose bytes are all stored, numbered race-free (``vN+1``). When the
        latest live version of the name has the same digest, nothing is created and that
        version is returned with ``existed=True``."""

    @abc.abstractmethod
    def resolve(self, ref: str) -> DatasetVersion:
        """The version ``ref`` names: ``name`` or ``name@latest`` (latest live), ``name@vN``,
        ``name@tag``; ``NotFound`` if absent or deleted, ``InvalidInput`` if malformed."""

    @abc.abstractmethod
    def find_by_source(self, name: str, source_digest: str) -> DatasetVersion | None:
        """The latest live version of ``name`` if it was made from ``source_digest``."""

    @abc.abstractmethod
    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Live versions (of ``name``, or of every dataset), by name then version."""

    @abc.abstractmethod
    def set_tag(self, ref: str, tag: str) -> DatasetVersion:
        """Point ``name@tag`` at the version ``ref`` names (moving it if it pointed elsewhere).
        Tags look like names but may not be ``latest`` or ``v<digits>``."""

    @abc.abstractmethod
    def delete_version(self, ref: str) -> DatasetVersion:
        """Soft-delete: hidden from resolve and ls, bytes left for ``keel gc``; its tags go."""

    @abc.abstractmethod
    def referenced_digests(self) -> Iterator[str]:
        """Every object digest a live version needs (garbage collection keeps these)."""


class ContractStore(abc.ABC):
    @abc.abstractmethod
    def save_contract(self, name: str, text: str) -> int:
        """Store a new version of the contract ``name``; returns its number (1, 2, …)."""

    @abc.abstractmethod
    def get_contract(self, name: str, version: int | None = None) -> tuple[int, str]:
        """``(version, text)`` of the contract (default: newest); ``NotFound`` if absent."""


class DataStore(VersionStore, ContractStore, abc.ABC):
    """Everything keel.data persists as metadata. Implementations raise only ``keel.errors``."""

    def warm_up(self) -> None:
        """A hint that the store is about to be used (an add is about to store its bytes): a
        store that is slow to open may start opening now. Does nothing by default."""

    def close(self) -> None:
        """Release connections."""
