"""A folder on the local filesystem as an artifact backend.

Durability follows the classic recipe: write to a temp file on the same filesystem, fsync it,
``os.replace`` it over the final name, fsync the directory (and any directory created for it),
so after a crash a key holds either its old bytes or its new bytes, never a prefix. Temp files
live in ``.keel-tmp/`` under the root, which listing never enters; ``purge_incomplete`` removes
the ones a killed process left behind.

Whole objects handed over in a buffer (``publish_buffer``, the content store's path for files
up to a few MiB) go to an unnamed file (``O_TMPFILE``, Linux) in the key's own folder, which is
fsynced and then linked in under the key: no temp name, no rename across folders. Once fsynced,
their pages are dropped from the page cache (``POSIX_FADV_DONTNEED``): storing a gigabyte then
neither evicts what other programs had cached nor leaves the kernel a gigabyte of pages to
reclaim before the next write, which on few cores is what bounds a bulk add.
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
_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_TMPFILE: int = getattr(os, "O_TMPFILE", 0)
_DROP = getattr(os, "posix_fadvise", None)
# What open(O_TMPFILE) says where the filesystem has no unnamed files.
_NO_UNNAMED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _fill(fd: int, data: memoryview) -> None:
    """Write ``data`` to the empty file ``fd``, fsync it, then drop its pages from the page
    cache (they are clean now; nobody is about to read them)."""
    _write_all(fd, data)
    os.fsync(fd)
    if _DROP is not None:
        with contextlib.suppress(OSError):  # advice only: a filesystem may not take it
            _DROP(fd, 0, 0, os.POSIX_FADV_DONTNEED)


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


def _publish(tmp: Path, final: Path, unsynced: set[Path] | None) -> None:
    """Rename the fsynced ``tmp`` to ``final`` and make the rename durable: the folders whose
    entries changed are fsynced, or added to ``unsynced`` for the caller to fsync."""
    _makedirs_durable(final.parent, unsynced)
    os.replace(tmp, final)
    _changed(final.parent, unsynced)


def _changed(folder: Path, unsynced: set[Path] | None) -> None:
    """Make a change to ``folder``'s entries durable now, or leave it to the caller."""
    if unsynced is None:
        _fsync_dir(folder)
    else:
        unsynced.add(folder)


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
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
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
            _publish(self._tmp, final, self._unsynced)
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
        # Unnamed files (O_TMPFILE) are named by linking /proc/self/fd/N; cleared the first time
        # the filesystem refuses them, then temp files are renamed instead.
        self._unnamed = bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")

    def __repr__(self) -> str:
        return f"LocalBackend({self.uri!r})"

    def _path(self, key: str) -> tuple[str, Path]:
        key = safe_relpath(key, field="key")
        if key.split("/", 1)[0] == TMP_DIRNAME:
            raise UnsafePath(f"{TMP_DIRNAME!r} is reserved for incomplete writes", field="key")
        return key, self.root.joinpath(*key.split("/"))

    def _new_tmp(self) -> Path:
        """A fresh temp file name under ``.keel-tmp`` (created on first use)."""
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _store_error(exc, f"cannot create {self._tmp}") from exc
        return self._tmp / f"{uuid.uuid4().hex}.part"

    def open_writer(self, key: str) -> BackendWriter:
        key, final = self._path(key)
        return _LocalWriter(key, self._new_tmp(), final)

    def open_spool(self) -> _LocalWriter:
        """A writer whose key is given only when it is published (``publish_as``), so the
        content store can hash a file while copying it and name the object afterwards."""
        return _LocalWriter("(spool)", self._new_tmp(), None)

    def publish_buffer(
        self, key: str, data: memoryview, *, unsynced: set[Path] | None = None
    ) -> None:
        """Publish ``data`` under ``key``, as durably and atomically as any write. Where the
        filesystem has ``O_TMPFILE`` (Linux) the bytes go to an unnamed file in the key's own
        folder, which is fsynced and then linked in under the key: no temp name to create,
        rename across folders or, after a crash, purge. Elsewhere a temp file is written,
        fsynced and renamed. ``unsynced`` as in ``_LocalWriter.publish_as``."""
        key, final = self._path(key)
        try:
            if self._unnamed:
                _makedirs_durable(final.parent, unsynced)
                if self._publish_unnamed(final, data):
                    _changed(final.parent, unsynced)
                    return
            tmp = self._new_tmp()
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o644)
                try:
                    _fill(fd, data)
                finally:
                    os.close(fd)
                _publish(tmp, final, unsynced)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise _store_error(exc, f"cannot publish {key!r}") from exc

    def _publish_unnamed(self, final: Path, data: memoryview) -> bool:
        """Write ``data`` to an unnamed file in ``final``'s folder, fsync it and link it in as
        ``final``. False, with nothing written and no more tries, where the filesystem has no
        unnamed files."""
        folder = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            try:
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | _CLOEXEC, 0o644, dir_fd=folder)
            except OSError as exc:
                if exc.errno not in _NO_UNNAMED:
                    raise
                self._unnamed = False
                return False
            try:
                _fill(fd, data)
                # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names an O_TMPFILE file.
                this = f"/proc/self/fd/{fd}"
                try:
                    os.link(this, final.name, dst_dir_fd=folder, follow_symlinks=True)
                except FileExistsError:
                    # A damaged object (the wrong size) is in the way, or another writer of
                    # these very bytes was first: replace it, as any write does.
                    tmp = self._new_tmp()
                    os.link(this, tmp, dst_dir_fd=folder, follow_symlinks=True)
                    try:
                        os.replace(tmp, final)
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
                return True
            finally:
                os.close(fd)
        finally:
            os.close(folder)

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
