"""``Datasets``: adding, reading and comparing dataset versions over a metadata store (records)
and a content store (bytes). The module-level functions in ``keel.data`` use one built from the
settings; tests and the server build their own.

A version is recorded only after every byte it needs is stored, so a failed add leaves at most
unreferenced objects, which ``keel gc`` removes after its grace period.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel._hashing import hash_bytes, hash_file
from keel.artifacts import ContentStore, ObjectRef
from keel.data import _ingest, _names
from keel.data._base import DataStore
from keel.data._records import FOLDER, TABLE, DatasetDiff, DatasetVersion, NewVersion
from keel.data._state import StateCache
from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Progress = Callable[[int], None]
MANIFEST_FORMAT = "keel.folder/1"


def _check_text(value: object, field: str, limit: int = 100_000) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(f"must be text under {limit} characters without NUL", field=field)
    return value


class Datasets:
    """Dataset versions on ``store`` (metadata) and ``content`` (bytes)."""

    def __init__(
        self, store: DataStore, content: ContentStore, *, state: StateCache | None = None
    ) -> None:
        self.store = store
        self.content = content
        self.state = state

    # -- adding -----------------------------------------------------------------------------

    def add(
        self,
        source: Any,
        *,
        name: str,
        description: str = "",
        tags: Iterable[str] = (),
        key: str | Iterable[str] | None = None,
        source_uri: str | None = None,
        produced_by: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        _names.name(name)
        keys = (key,) if isinstance(key, str) else tuple(key or ())
        meta: dict[str, Any] = {
            "name": name,
            "description": _check_text(description, "description"),
            "tags": tuple(_names.tag(t) for t in ([tags] if isinstance(tags, str) else tags)),
            "key": keys,
            "source_uri": None if source_uri is None else _check_text(source_uri, "source_uri"),
            "produced_by": None
            if produced_by is None
            else _check_text(produced_by, "produced_by", 250),
        }
        if _ingest.is_frame(source):
            self.store.warm_up()  # opens while the table is converted and profiled
            return self._add_table(_ingest.from_frame(source), meta, source_digest=None)
        if not isinstance(source, str | os.PathLike):
            raise InvalidInput(
                f"expected a path, a pandas DataFrame or a pyarrow Table, got "
                f"{type(source).__name__}",
                field="source",
            )
        path = Path(source).expanduser()
        _ingest.check_file(path)
        if meta["source_uri"] is None:
            meta["source_uri"] = str(path.resolve())
        if path.is_dir():
            if keys:
                raise InvalidInput("a key applies to tables, not folders", field="key")
            return self._add_folder(path, meta, progress)
        if path.suffix.lower() not in _ingest.TABULAR_SUFFIXES:
            raise InvalidInput(
                f"{str(path)!r}: unknown table format {path.suffix or '(no suffix)'!r}; use "
                ".csv, .tsv, .parquet, .jsonl or a folder",
                field="source",
            )
        self.store.warm_up()  # opens while the file is hashed
        source_digest = self._digests([path])[0][0]
        # Unchanged since the latest version: a stat and one metadata query, no parsing.
        existing = self.store.find_by_source(name, source_digest)
        if existing is not None and existing.key == keys:
            return existing
        return self._add_table(_ingest.read_file(path), meta, source_digest=source_digest)

    def _digests(self, paths: list[Path]) -> list[tuple[str, int]]:
        if self.state is not None:
            return self.state.digests(paths)
        return [hash_file(p) for p in paths]

    def _add_table(
        self, table: pa.Table, meta: dict[str, Any], *, source_digest: str | None
    ) -> DatasetVersion:
        import pyarrow.parquet as pq

        from keel.data._profile import profile_table, schema_of

        for column in meta["key"]:
            if column not in table.column_names:
                raise InvalidInput(f"key column {column!r} is not in the table", field="key")
        profile = profile_table(table)
        with tempfile.TemporaryDirectory(prefix="keel-data-") as tmp:
            target = Path(tmp, "data.parquet")
            pq.write_table(table, target, compression="zstd")
            ref = self.content.put_file(target)
        return self.store.create_version(
            NewVersion(
                digest=ref.digest,
                kind=TABLE,
                size=ref.size,
                rows=table.num_rows,
                schema=schema_of(table),
                profile=profile,
                source_digest=source_digest,
                objects=(ref.digest,),
                **meta,
            )
        )

    def _add_folder(
        self, root: Path, meta: dict[str, Any], progress: Progress | None
    ) -> DatasetVersion:
        """Store a folder file by file. Each file the state cache does not know is read once,
        hashed while it is copied into the content store (several files at a time); a known
        unchanged file costs a ``stat``, and nothing more if its object is already stored."""
        files = _ingest.list_folder(root)
        paths = [p for _, p in files]
        cached = self.state.lookup(paths) if self.state is not None else None
        # The store opens while the files are stored; not sooner, so that opening it does not
        # compete for the GIL with the listing above.
        self.store.warm_up()
        refs: list[ObjectRef | None] = [None] * len(files)
        if cached is not None:
            for i, c in enumerate(cached):
                if c.digest is not None:
                    refs[i] = ObjectRef(c.digest, c.stat.st_size)
        latest = None
        if all(r is not None for r in refs):
            # Every file known: if the manifest is the latest version's, nothing to store.
            manifest, digest, entries = _manifest(files, refs)
            try:
                latest = self.store.resolve(meta["name"])
            except NotFound:
                latest = None
            if latest is not None and latest.digest == digest:
                return self.store.create_version(
                    self._folder_version(digest, manifest, entries, meta)
                )
        todo: list[int] = []
        for i, ref in enumerate(refs):
            if ref is not None and self._stored(ref):
                if progress is not None:
                    progress(ref.size)
            else:
                todo.append(i)
        stored = self.content.put_files([paths[i] for i in todo], progress=progress)
        for i, ref in zip(todo, stored, strict=True):
            refs[i] = ref
        if cached is not None and self.state is not None:
            self.state.record(
                (cached[i], ref.digest)
                for i, ref in zip(todo, stored, strict=True)
                if cached[i].digest is None
            )
        manifest, digest, entries = _manifest(files, refs)
        self.content.put_bytes(manifest)
        return self.store.create_version(self._folder_version(digest, manifest, entries, meta))

    def _stored(self, ref: ObjectRef) -> bool:
        try:
            return self.content.stat(ref.digest).size == ref.size
        except NotFound:
            return False

    @staticmethod
    def _folder_version(
        digest: str, manifest: bytes, entries: list[dict[str, Any]], meta: dict[str, Any]
    ) -> NewVersion:
        return NewVersion(
            digest=digest,
            kind=FOLDER,
            size=sum(int(e["size"]) for e in entries) + len(manifest),
            files=len(entries),
            objects=tuple(sorted({str(e["digest"]) for e in entries} | {digest})),
            **meta,
        )

    # -- reading ----------------------------------------------------------------------------

    def show(self, ref: str) -> DatasetVersion:
        return self.store.resolve(ref)

    def ls(self, name: str | None = None) -> list[DatasetVersion]:
        return self.store.list_versions(name)

    def tag(self, ref: str, tag: str) -> DatasetVersion:
        return self.store.set_tag(ref, tag)

    def rm(self, ref: str) -> DatasetVersion:
        return self.store.delete_version(ref)

    def manifest(self, version: DatasetVersion) -> list[dict[str, Any]]:
        """The files of a folder version: ``{"path", "digest", "size"}`` by path."""
        if version.kind != FOLDER:
            raise InvalidInput(f"{version.ref} is a table, not a folder", field="ref")
        files: list[dict[str, Any]] = json.loads(self.content.get_bytes(version.digest))["files"]
        return files

    def get(
        self,
        ref: str | DatasetVersion,
        *,
        as_: str | None = None,
        dest: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
    ) -> Any:
        version = ref if isinstance(ref, DatasetVersion) else self.store.resolve(ref)
        kind = as_ or ("pandas" if version.kind == TABLE else "path")
        if kind not in ("pandas", "arrow", "path"):
            raise InvalidInput(f"must be 'pandas', 'arrow' or 'path', got {kind!r}", field="as_")
        if version.kind == FOLDER:
            if kind != "path":
                raise InvalidInput(f"{version.ref} is a folder: use as_='path'", field="as_")
            target = (
                Path(dest)
                if dest is not None
                else Path.cwd() / f"{version.name}-v{version.version}"
            )
            pairs = [(str(e["path"]), str(e["digest"])) for e in self.manifest(version)]
            self.content.get_tree(pairs, target, progress=progress)
            return target
        if kind == "path":
            target = (
                Path(dest)
                if dest is not None
                else Path.cwd() / f"{version.name}-v{version.version}.parquet"
            )
            if target.is_dir():
                target = target / f"{version.name}-v{version.version}.parquet"
            self.content.get_file(version.digest, target, progress=progress)
            return target
        table = self.read_table(version)
        return table if kind == "arrow" else _to_pandas(table)

    def read_table(self, version: DatasetVersion, columns: list[str] | None = None) -> pa.Table:
        import pyarrow.parquet as pq

        if version.kind != TABLE:
            raise InvalidInput(f"{version.ref} is a folder, not a table", field="ref")
        with tempfile.TemporaryDirectory(prefix="keel-data-") as tmp:
            target = Path(tmp, "data.parquet")
            self.content.get_file(version.digest, target)
            return pq.read_table(target, columns=columns)

    def diff(self, a: str, b: str) -> DatasetDiff:
        from keel.data._diff import diff_versions

        return diff_versions(self, self.store.resolve(a), self.store.resolve(b))


def _manifest(
    files: list[tuple[str, Path]], refs: list[ObjectRef | None]
) -> tuple[bytes, str, list[dict[str, Any]]]:
    """The folder's manifest (canonical JSON), its digest, and its entries."""
    entries = [
        {"path": rel, "digest": ref.digest, "size": ref.size}
        for (rel, _), ref in zip(files, refs, strict=True)
        if ref is not None
    ]
    if len(entries) != len(files):
        raise RuntimeError("a file of the folder has no stored object")
    manifest = json.dumps(
        {"format": MANIFEST_FORMAT, "files": entries}, sort_keys=True, separators=(",", ":")
    ).encode()
    return manifest, hash_bytes(manifest), entries


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    return frame
