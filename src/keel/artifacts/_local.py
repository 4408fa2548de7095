"""A folder on the local filesystem as an artifact backend.

Durability follows the classic recipe: write to a temp file on the same filesystem, fsync it,
``os.replace`` it over the final name, fsync the directory (and any directory created for it),
so after a crash a key holds either its old bytes or its new bytes, never a prefix. Temp files
live in ``.keel-tmp/`` under the root, which listing never enters; ``purge_incomplete`` removes
the ones a killed process left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from keel._time import now_ms
from keel.artifacts._base import ArtifactBackend, BackendWriter, KeyInfo
from keel.artifacts._paths import safe_relpath
from keel.errors import Conflict, NotFound, StoreError, StoreUnavailable, UnsafePath

TMP_DIRNAME = ".keel-tmp"
_TRANSIENT = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT}
# Folders fsynced at once by sync_dirs: each fsync mostly waits on the disk.
_SYNC_WORKERS = 8


def _store_error(exc: OSError, what: str) -> StoreError:
    if exc.errno in _TRANSIENT:
        return StoreUnavailable(f"{what}: {exc.strerror or exc}")
    return StoreError(f"{what}: {exc.strerror or exc}")


def _fsync_dir(path: Path) -> None:
    # Directories cannot be opened for fsync on Windows; NTFS journals the rename itself.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_fsync_dir(path: Path) -> OSError | None:
    try:
        _fsync_dir(path)
    except OSError as exc:
        return exc
    return None


def _makedirs_durable(path: Path, unsynced: set[Path] | None = None) -> None:
    """``mkdir -p`` that fsyncs each parent whose entries changed, so a new object's folder
    survives a power cut along with the object; with ``unsynced``, those parents are added to
    it for the caller to fsync instead."""
    missing: list[Path] = []
    here = path
    while not here.is_dir():
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it first: fine
            folder.mkdir()
        if unsynced is None:
            _fsync_dir(folder.parent)
        else:
            unsynced.add(folder.parent)


class _LocalWriter(BackendWriter):
    """A temp file under ``.keel-tmp`` that becomes ``final`` on commit. A spool writer
    (``final`` None) learns its key only at the end, from ``publish_as``."""

    def __init__(self, key: str, tmp: Path, final: Path | None) -> None:
        super().__init__(key)
        self._tmp = tmp
        self._final = final
        self._unsynced: set[Path] | None = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            self._file = os.fdopen(os.open(tmp, flags, 0o644), "wb")
        except OSError as exc:
            raise _store_error(exc, f"cannot create a temp file for {key!r}") from exc

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise _store_error(exc, f"cannot write {self.key!r}") from exc

    @property
    def path(self) -> Path:
        """The temp file being written."""
        return self._tmp

    def fileno(self) -> int:
        return self._file.fileno()

    def publish_as(self, key: str, final: Path, *, unsynced: set[Path] | None = None) -> None:
        """Name the spool's key (its digest, now known), then commit. With ``unsynced`` the
        folders whose entries changed (``final.parent``, and the parent of any folder made for
        it) are added to that set instead of fsynced: the caller fsyncs them
        (``LocalBackend.sync_dirs``) before it relies on the object surviving a crash, and
        many objects then share one fsync per folder."""
        self.key = key
        self._final = final
        self._unsynced = unsynced
        self.commit()

    def _commit(self) -> None:
        final = self._final
        if final is None:
            raise Conflict(f"spool {self._tmp.name} has no key to publish under")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _makedirs_durable(final.parent, self._unsynced)
            os.replace(self._tmp, final)
            if self._unsynced is None:
                _fsync_dir(final.parent)
            else:
                self._unsynced.add(final.parent)
        except OSError as exc:
            raise _store_error(exc, f"cannot publish {self.key!r}") from exc

    def _abort(self) -> None:
        try:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise _store_error(exc, f"cannot discard the partial write of {self.key!r}") from exc


class LocalBackend(ArtifactBackend):
    """Keys are files under ``root``; ``root`` is created on the first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        self._tmp = self.root / TMP_DIRNAME

    def __repr__(self) -> str:
        return f"LocalBackend({self.uri!r})"

    def _path(self, key: str) -> tuple[str, Path]:
        key = safe_relpath(key, field="key")
        if key.split("/", 1)[0] == TMP_DIRNAME:
            raise UnsafePath(f"{TMP_DIRNAME!r} is reserved for incomplete writes", field="key")
        return key, self.root.joinpath(*key.split("/"))

    def open_writer(self, key: str) -> BackendWriter:
        key, final = self._path(key)
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _store_error(exc, f"cannot create {self._tmp}") from exc
        return _LocalWriter(key, self._tmp / f"{uuid.uuid4().hex}.part", final)

    def open_spool(self) -> _LocalWriter:
        """A writer whose key is given only when it is published (``publish_as``), so the
        content store can hash a file while copying it and name the object afterwards."""
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _store_error(exc, f"cannot create {self._tmp}") from exc
        return _LocalWriter("(spool)", self._tmp / f"{uuid.uuid4().hex}.part", None)

    def final_path(self, key: str) -> Path:
        return self._path(key)[1]

    def sync_dirs(self, folders: Iterable[Path]) -> None:
        """fsync each folder once, several at a time (see ``_LocalWriter.publish_as``)."""
        ordered = sorted(set(folders))
        if not ordered:
            return
        workers = min(_SYNC_WORKERS, len(ordered))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keel-sync") as pool:
            for folder, error in zip(ordered, pool.map(_try_fsync_dir, ordered), strict=True):
                if error is not None:
                    raise _store_error(error, f"cannot sync {folder}") from error

    def open_reader(self, key: str) -> BinaryIO:
        key, path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no artifact at key {key!r} in {self.uri}") from exc
        except OSError as exc:
            raise _store_error(exc, f"cannot read {key!r}") from exc

    def exists(self, key: str) -> bool:
        _, path = self._path(key)
        return path.is_file()

    def size(self, key: str) -> int:
        key, path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no artifact at key {key!r} in {self.uri}") from exc
        except OSError as exc:
            raise _store_error(exc, f"cannot stat {key!r}") from exc
        if not path.is_file():
            raise NotFound(f"no artifact at key {key!r} in {self.uri} (it is a folder)")
        return st.st_size

    def delete(self, key: str) -> None:
        key, path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError as exc:
            raise NotFound(f"no artifact at key {key!r} in {self.uri} (it is a folder)") from exc
        except OSError as exc:
            raise _store_error(exc, f"cannot delete {key!r}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[KeyInfo]:
        if prefix:
            prefix, base = self._path(prefix)
        else:
            base = self.root
        yield from self._walk(base, prefix)

    def _walk(self, folder: Path, rel: str) -> Iterator[KeyInfo]:
        # Each folder is read completely before anything is yielded, so a caller deleting
        # what it is given (garbage collection) never disturbs the scan.
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _store_error(exc, f"cannot list {folder}") from exc
        for entry in entries:
            key = f"{rel}/{entry.name}" if rel else entry.name
            if not rel and entry.name == TMP_DIRNAME:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(Path(entry.path), key)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    yield KeyInfo(key, st.st_size, st.st_mtime_ns // 1_000_000)
            except FileNotFoundError:
                continue  # deleted between the scan and the stat: it is simply gone
            except OSError as exc:
                raise _store_error(exc, f"cannot list {key!r}") from exc

    def purge_incomplete(self, *, older_than_s: float, dry_run: bool = True) -> int:
        cutoff_ns = (now_ms() - int(older_than_s * 1000)) * 1_000_000
        count = 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise _store_error(exc, f"cannot list {self._tmp}") from exc
        for entry in entries:
            try:
                # A live writer keeps touching its temp file, so only abandoned ones are old.
                if entry.stat(follow_symlinks=False).st_mtime_ns > cutoff_ns:
                    continue
                count += 1
                if not dry_run:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue  # its writer committed or aborted meanwhile
            except OSError as exc:
                raise _store_error(exc, f"cannot remove {entry.path}") from exc
        return count
