"""The byte-store contract: bytes by key, nothing more.

A backend knows keys (relative posix names, already checked by ``safe_relpath``) and bytes. It
knows nothing of digests, runs or models: the content-addressed layer (``ContentStore``) sits on
top and is the only thing most of Keel talks to. Keeping the contract this small is what lets a
new backend (GCS, Azure, a WebDAV box) be written in an afternoon and proven by the one
conformance suite in ``keel.testing.artifact_conformance``.

Every method raises only ``keel.errors`` types: ``NotFound`` for a missing key,
``StoreUnavailable`` for a transient failure (connection refused, throttled), ``StoreError`` for
anything else the backend reports, ``UnsafePath`` for a key that fails ``safe_relpath``.

The package's records (``ObjectRef``, ``GcReport``, ``KeyInfo``) live here too, so both layers
share one definition.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

from keel.errors import Conflict

# Called with the number of bytes just transferred (an increment), so one Rich bar can
# ``advance`` across many files.
ProgressCallback = Callable[[int], None]

# A day: longer than any upload-then-record gap, short enough that disk comes back soon.
DEFAULT_GRACE_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A stored object: its hex BLAKE3 digest and size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class GcReport:
    """What ``gc`` deleted (or, in a dry run, would delete)."""

    dry_run: bool
    deleted: tuple[ObjectRef, ...]
    kept_count: int  # objects in the keep set
    recent_count: int  # unreferenced but inside the grace period, so left alone
    incomplete_count: int  # abandoned temp files / multipart uploads (purged unless dry run)

    @property
    def deleted_count(self) -> int:
        return len(self.deleted)

    @property
    def deleted_bytes(self) -> int:
        return sum(ref.size for ref in self.deleted)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, as ``keel gc --json`` prints it."""
        return {
            "dry_run": self.dry_run,
            "deleted_count": self.deleted_count,
            "deleted_bytes": self.deleted_bytes,
            "kept_count": self.kept_count,
            "recent_count": self.recent_count,
            "incomplete_count": self.incomplete_count,
            "deleted": [{"digest": r.digest, "size": r.size} for r in self.deleted],
        }


class KeyInfo(NamedTuple):
    """One listed key: its name relative to the store root, size, and last-modified time."""

    key: str
    size: int
    modified_ms: int


class _State(enum.Enum):
    OPEN = "open"
    COMMITTED = "committed"
    ABORTED = "aborted"


class BackendWriter(abc.ABC):
    """Bytes on their way to one key. Nothing is visible under the key until ``commit()``;
    ``abort()`` (or an exception inside ``with``) leaves nothing behind but, at worst, an
    incomplete upload that ``ArtifactBackend.purge_incomplete`` removes later.

    A writer that is dropped without either is treated as aborted: it never publishes on its
    own, so a crash or a forgotten ``commit()`` cannot expose a partial object.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._state = _State.OPEN

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; returns its length."""
        if self._state is not _State.OPEN:
            raise Conflict(f"writer for {self.key!r} is already {self._state.value}")
        if data:
            self._write(data)
        return len(data)

    def commit(self) -> None:
        """Publish everything written, atomically. A failed commit aborts and raises."""
        if self._state is _State.COMMITTED:
            return
        if self._state is _State.ABORTED:
            raise Conflict(f"writer for {self.key!r} was aborted and cannot be committed")
        try:
            self._commit()
        except BaseException:
            self.abort()
            raise
        self._state = _State.COMMITTED

    def abort(self) -> None:
        """Discard everything written. Idempotent, and a no-op after a commit, so a
        ``finally: writer.abort()`` is always safe."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.ABORTED
        self._abort()

    def __enter__(self) -> BackendWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    @abc.abstractmethod
    def _write(self, data: bytes | bytearray | memoryview) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _abort(self) -> None: ...


class ArtifactBackend(abc.ABC):
    """Bytes by key, with atomic publish. Implementations: ``LocalBackend``, ``S3Backend``."""

    #: Where the backend lives, e.g. ``/home/me/.keel/artifacts`` or ``s3://bucket/prefix``.
    uri: str

    @abc.abstractmethod
    def open_writer(self, key: str) -> BackendWriter:
        """A writer that publishes ``key`` on commit (replacing any previous value)."""

    @abc.abstractmethod
    def open_reader(self, key: str) -> BinaryIO:
        """The bytes of ``key`` as a stream; ``NotFound`` if absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` is published."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The size of ``key`` in bytes; ``NotFound`` if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``. Idempotent: deleting a missing key is not an error, so two
        concurrent garbage collections do not trip over each other."""

    @abc.abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[KeyInfo]:
        """Every published key inside the folder ``prefix`` ("" is the whole store), in no
        particular order. Incomplete writes are never listed."""

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release connections (a server's backend holds a pool; the others nothing)."""

    @abc.abstractmethod
    def purge_incomplete(self, *, older_than_s: float, dry_run: bool = True) -> int:
        """Remove what crashed or abandoned writers left behind (temp files, incomplete
        multipart uploads) that is older than ``older_than_s``; returns how many there were."""
