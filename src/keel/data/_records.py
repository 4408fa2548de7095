"""Frozen records the data store returns: dataset versions and their diffs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TABLE = "table"
FOLDER = "folder"


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version ``name@vN`` of a dataset.

    ``digest`` identifies the content: the Parquet object of a table, the manifest of a folder.
    ``schema`` is ``((column, arrow type), ...)`` and ``profile`` the per-column statistics
    (empty for folders). ``existed`` is True when ``add`` found this content already stored as
    the latest version and created nothing.
    """

    name: str
    version: int
    digest: str
    kind: str
    size: int
    rows: int | None = None
    files: int | None = None
    schema: tuple[tuple[str, str], ...] = ()
    profile: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    description: str = ""
    key: tuple[str, ...] = ()
    source_uri: str | None = None
    produced_by: str | None = None
    source_digest: str | None = None
    tags: tuple[str, ...] = ()
    created_ms: int = 0
    deleted: bool = False
    existed: bool = field(default=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "kind": self.kind,
            "size": self.size,
            "rows": self.rows,
            "files": self.files,
            "schema": [list(c) for c in self.schema],
            "profile": self.profile,
            "description": self.description,
            "key": list(self.key),
            "source_uri": self.source_uri,
            "produced_by": self.produced_by,
            "tags": list(self.tags),
            "created_ms": self.created_ms,
            "deleted": self.deleted,
            "existed": self.existed,
        }


@dataclass(frozen=True)
class NewVersion:
    """What ``DatasetStore.create_version`` records (the bytes are already stored)."""

    name: str
    digest: str
    kind: str
    size: int
    rows: int | None = None
    files: int | None = None
    schema: tuple[tuple[str, str], ...] = ()
    profile: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    description: str = ""
    key: tuple[str, ...] = ()
    source_uri: str | None = None
    produced_by: str | None = None
    source_digest: str | None = None
    tags: tuple[str, ...] = ()
    # Every stored object this version needs (the Parquet file, or the manifest and its files).
    objects: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetDiff:
    """What changed from ``a`` to ``b``."""

    a: str
    b: str
    rows_a: int | None
    rows_b: int | None
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    rows_added: int | None = None
    rows_removed: int | None = None
    rows_changed: int | None = None
    files_added: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    column_shifts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return not (
            self.columns_added
            or self.columns_removed
            or self.type_changes
            or self.rows_a != self.rows_b
            or self.rows_added
            or self.rows_removed
            or self.rows_changed
            or self.files_added
            or self.files_removed
            or self.files_changed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "same": self.same,
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "columns_added": list(self.columns_added),
            "columns_removed": list(self.columns_removed),
            "type_changes": {k: list(v) for k, v in self.type_changes.items()},
            "key": list(self.key),
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "rows_changed": self.rows_changed,
            "files_added": list(self.files_added),
            "files_removed": list(self.files_removed),
            "files_changed": list(self.files_changed),
            "column_shifts": self.column_shifts,
        }
