"""The content-addressed store: objects named by the BLAKE3 digest of their bytes.

This is the only artifact API the rest of Keel uses. Its promises:

- **Hash on write.** The digest is computed from the bytes as they go to the backend, in
  constant memory, and the object is published under ``objects/ab/cdef…`` only if they match.
- **Dedup.** An object that is already stored (same digest, same size) is not uploaded again.
- **Atomic publish.** Backends show an object only once it is complete (see ``_base``).
- **Verify on read.** Every read path checks the digest and raises ``IntegrityError`` on a
  mismatch; ``get_file`` downloads to a temp file and renames only after the check.
- **Garbage collection** deletes unreferenced objects, dry-run by default, with a grace period
  for objects written moments ago (their references may not be recorded yet).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from keel._hashing import CHUNK, Hasher, hash_bytes, hash_file
from keel._time import now_ms
from keel.artifacts._base import (
    DEFAULT_GRACE_S,
    ArtifactBackend,
    GcReport,
    ObjectRef,
    ProgressCallback,
)
from keel.artifacts._local import LocalBackend
from keel.artifacts._paths import check_digest, digest_from_key, object_key, safe_relpath
from keel.artifacts._reader import VerifyingReader
from keel.errors import Conflict, IntegrityError, InvalidInput, NotFound, StoreError

# Files copied into a local store are read in pieces of this size (one piece for most files).
_COPY_CHUNK = 4 << 20
# Files up to this size are stored in a local store from one buffer per thread: read once,
# hashed, written (``LocalBackend.publish_buffer``). Larger ones are copied in the kernel, then
# hashed on all cores.
_BUFFERED_MAX = 8 << 20
_buffers = threading.local()
# Files stored at once by put_files: enough to keep the disk busy through fsyncs on few cores.
_PUT_WORKERS = 8
# copy_file_range errors that mean "not here" (old kernel, other filesystem): copy by hand.
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def _copy_fd(src: int, dst: int, size: int, progress: ProgressCallback | None) -> int:
    """Copy ``src`` to ``dst`` from their current offsets; the bytes copied. The kernel copies
    (``copy_file_range``) where it can; elsewhere a plain read/write loop."""
    copied = 0
    fast = hasattr(os, "copy_file_range")
    while True:
        want = max(_COPY_CHUNK, size - copied) if progress is None else _COPY_CHUNK
        if fast:
            try:
                n = os.copy_file_range(src, dst, want)
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE or copied:
                    raise
                fast = False
                continue
        else:
            data = os.read(src, min(want, _COPY_CHUNK))
            n = len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view) :]
        if n == 0:
            return copied
        copied += n
        if progress is not None:
            progress(n)


def _thread_buffer() -> mmap.mmap:
    """This thread's buffer for files up to ``_BUFFERED_MAX`` bytes (and one more, to see a
    file that grew). It is reused: a fresh buffer per file would fault in its pages each time.
    Only the pages used take memory, and the buffer goes with its thread."""
    buf: mmap.mmap | None = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = mmap.mmap(-1, _BUFFERED_MAX + 1)
    return buf


def _check_unchanged(source: Path, f: BinaryIO, before: os.stat_result, read: int) -> None:
    """Raise ``Conflict`` if ``source`` (open as ``f``) changed while ``read`` bytes of it
    were stored."""
    after = os.fstat(f.fileno())
    if read != before.st_size or (after.st_size, after.st_mtime_ns) != (
        before.st_size,
        before.st_mtime_ns,
    ):
        raise Conflict(
            f"the source changed while it was stored: {str(source)!r} had "
            f"{before.st_size} bytes when opened, {read} were read"
        )


def _local_error(exc: OSError, what: str) -> StoreError | NotFound:
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{what}: no such file")
    return StoreError(f"{what}: {exc.strerror or exc}")


class ContentStore:
    """Content-addressed objects on any ``ArtifactBackend``."""

    def __init__(self, backend: ArtifactBackend, *, spool_dir: str | Path | None = None) -> None:
        self.backend = backend
        # Where put_stream spools a stream of unknown digest; anonymous files vanish on exit.
        self._spool_dir = spool_dir

    @property
    def uri(self) -> str:
        return self.backend.uri

    def __repr__(self) -> str:
        return f"ContentStore({self.backend!r})"

    # -- writing ---------------------------------------------------------------------------

    def _present(self, key: str, size: int) -> bool:
        """Dedup check. A stored object of the wrong size is damaged, so it is rewritten."""
        try:
            return self.backend.size(key) == size
        except NotFound:
            return False

    def _upload(
        self,
        source: BinaryIO,
        ref: ObjectRef,
        *,
        progress: ProgressCallback | None,
    ) -> None:
        """Copy ``source`` to the object's key, hashing what is sent; publish only if the
        bytes are ``ref``'s, else abort (the source changed under us)."""
        hasher = Hasher()
        writer = self.backend.open_writer(object_key(ref.digest))
        try:
            while chunk := source.read(CHUNK):
                hasher.update(chunk)
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            if hasher.hexdigest() != ref.digest or hasher.size != ref.size:
                raise Conflict(
                    f"the source changed while it was stored: expected {ref.size} bytes "
                    f"hashing to {ref.digest}, read {hasher.size} bytes hashing to "
                    f"{hasher.hexdigest()}"
                )
            writer.commit()
        finally:
            writer.abort()  # no-op after a commit

    def put_bytes(self, data: bytes, *, progress: ProgressCallback | None = None) -> ObjectRef:
        """Store ``data``."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"expected bytes, got {type(data).__name__}", field="data")
        data = bytes(data)
        ref = ObjectRef(hash_bytes(data), len(data))
        key = object_key(ref.digest)
        if self._present(key, ref.size):
            if progress is not None:
                progress(ref.size)
            return ref
        writer = self.backend.open_writer(key)
        try:
            view = memoryview(data)
            for start in range(0, len(data), CHUNK):
                part = view[start : start + CHUNK]
                writer.write(part)
                if progress is not None:
                    progress(len(part))
            writer.commit()
        finally:
            writer.abort()
        return ref

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        unsynced_dirs: set[Path] | None = None,
    ) -> ObjectRef:
        """Store the file at ``path``.

        On a local store the file is read once: each chunk is hashed and written to a temp
        file, which is fsynced and renamed to the digest's key (or discarded if that object is
        already stored). Elsewhere (S3) it is hashed first, on all cores, so a stored object is
        never uploaded, then hashed again as it is sent. Either way the published bytes are
        the hashed bytes, and a file that changes while it is read publishes nothing.

        ``unsynced_dirs`` (local stores, for ``put_files``): instead of fsyncing the folder of
        a new object after its rename (and the parent of a folder made for it), add them to
        this set; the caller fsyncs them all before it returns.
        """
        source = Path(path)
        if not source.is_file():
            raise NotFound(f"path: no such file {str(source)!r}")
        try:
            if isinstance(self.backend, LocalBackend):
                return self._put_local_file(
                    self.backend, source, progress=progress, unsynced_dirs=unsynced_dirs
                )
            ref = ObjectRef(*hash_file(source))
            if self._present(object_key(ref.digest), ref.size):
                if progress is not None:
                    progress(ref.size)
                return ref
            with source.open("rb") as f:
                self._upload(f, ref, progress=progress)
        except OSError as exc:
            raise _local_error(exc, f"cannot read {str(source)!r}") from exc
        return ref

    def _put_local_file(
        self,
        backend: LocalBackend,
        source: Path,
        *,
        progress: ProgressCallback | None,
        unsynced_dirs: set[Path] | None,
    ) -> ObjectRef:
        """Store ``source`` in a local store, hashing exactly the bytes that are published.

        Up to ``_BUFFERED_MAX`` bytes it is read into this thread's buffer, hashed there and,
        unless that object is already stored, written from the same buffer
        (``publish_buffer``). Larger files are copied into a spool file in the kernel
        (``copy_file_range``), which is hashed on all cores, then published under its digest
        (fsync, rename) unless that object is already stored."""
        with source.open("rb", buffering=0) as f:
            before = os.fstat(f.fileno())
            if before.st_size <= _BUFFERED_MAX:
                buf = _thread_buffer()
                view = memoryview(buf)
                size = 0
                while size <= before.st_size and (got := f.readinto(view[size:])):
                    size += got
                if progress is not None:
                    progress(size)
                _check_unchanged(source, f, before, size)
                ref = ObjectRef(str(blake3(view[:size]).hexdigest()), size)
                key = object_key(ref.digest)
                if not self._present(key, size):
                    backend.publish_buffer(key, view[:size], unsynced=unsynced_dirs)
                return ref
            writer = backend.open_spool()
            try:
                size = _copy_fd(f.fileno(), writer.fileno(), before.st_size, progress)
                _check_unchanged(source, f, before, size)
                digest, hashed = hash_file(writer.path)
                if hashed != size:
                    raise StoreError(f"the copy of {str(source)!r} is {hashed} bytes, not {size}")
                ref = ObjectRef(digest, size)
                key = object_key(digest)
                if not self._present(key, size):
                    writer.publish_as(key, backend.final_path(key), unsynced=unsynced_dirs)
            finally:
                writer.abort()  # no-op after a publish
        return ref

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        progress: ProgressCallback | None = None,
        workers: int | None = None,
    ) -> list[ObjectRef]:
        """Store many files, several at a time (hashing, file I/O and fsync release the GIL),
        each exactly as ``put_file`` does; refs in the order of ``paths``. ``progress`` is told
        of each file's size once it is stored, always from the calling thread. The first
        failure stops the rest and is raised; objects already published stay (they are valid,
        and ``gc`` removes them if nothing refers to them)."""
        files = [Path(p) for p in paths]
        if workers is None:
            workers = min(_PUT_WORKERS, len(files))
        if workers <= 1 or len(files) <= 1:
            return [self.put_file(p, progress=progress) for p in files]
        refs: list[ObjectRef | None] = [None] * len(files)
        # New objects' folders are fsynced once each at the end, not once per object; set.add
        # is atomic under the GIL.
        unsynced: set[Path] = set()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keel-put") as pool:
            futures = {
                pool.submit(self.put_file, p, unsynced_dirs=unsynced): i
                for i, p in enumerate(files)
            }
            try:
                for future in as_completed(futures):
                    ref = future.result()
                    refs[futures[future]] = ref
                    if progress is not None:
                        progress(ref.size)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        if isinstance(self.backend, LocalBackend):
            self.backend.sync_dirs(unsynced)
        return [r for r in refs if r is not None]

    def put_stream(
        self,
        stream: BinaryIO,
        *,
        digest: str | None = None,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectRef:
        """Store everything ``stream`` yields, in constant memory.

        With the ``digest`` (and ``size``) announced by the sender (e.g. a client uploading to
        the server), the bytes go straight to the object's key and are published only if they
        hash to it; an already stored object is not read at all. Without it the stream is
        spooled to an anonymous temp file while hashed, then stored like a file. ``progress``
        is told of bytes as they are read from ``stream``.
        """
        if digest is None:
            return self._put_spooled(stream, progress=progress)
        check_digest(digest)
        if size is not None and (not isinstance(size, int) or size < 0):
            raise InvalidInput(f"expected a byte count >= 0, got {size!r}", field="size")
        key = object_key(digest)
        with contextlib.suppress(NotFound):
            stored = self.backend.size(key)
            if size is None or stored == size:
                if progress is not None:
                    progress(stored)
                return ObjectRef(digest, stored)
        hasher = Hasher()
        writer = self.backend.open_writer(key)
        try:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            if hasher.hexdigest() != digest or (size is not None and hasher.size != size):
                raise InvalidInput(
                    f"the stream ({hasher.size} bytes) hashes to {hasher.hexdigest()}, "
                    f"not to the announced {digest}",
                    field="digest",
                )
            writer.commit()
        finally:
            writer.abort()
        return ObjectRef(digest, hasher.size)

    def _put_spooled(self, stream: BinaryIO, *, progress: ProgressCallback | None) -> ObjectRef:
        hasher = Hasher()
        try:
            spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _local_error(exc, "cannot create a spool file") from exc
        with spool:
            try:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    spool.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
                spool.flush()
                spool.seek(0)
            except OSError as exc:
                raise _local_error(exc, "cannot spool the stream") from exc
            ref = ObjectRef(hasher.hexdigest(), hasher.size)
            if not self._present(object_key(ref.digest), ref.size):
                self._upload(spool, ref, progress=None)
        return ref

    def put_tree(
        self, folder: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> list[tuple[str, ObjectRef]]:
        """Store every file under ``folder``; returns ``(relative posix name, ref)`` pairs by
        name. Names are checked with ``safe_relpath``; file symlinks are stored as the file
        they point to, directory symlinks are refused (they can loop or leave the tree)."""
        root = Path(folder)
        if not root.is_dir():
            raise NotFound(f"folder: no such folder {str(root)!r}")
        files: list[tuple[str, Path]] = []
        for here, dirs, names in os.walk(root, followlinks=False):
            for d in dirs:
                if Path(here, d).is_symlink():
                    raise InvalidInput(
                        f"{Path(here, d)} is a symlink to a folder; copy it in or store its target",
                        field="folder",
                    )
            for n in names:
                path = Path(here, n)
                rel = path.relative_to(root).as_posix()
                files.append((safe_relpath(rel, field="name"), path))
        files.sort()
        refs = self.put_files([path for _, path in files], progress=progress)
        return [(name, ref) for (name, _), ref in zip(files, refs, strict=True)]

    # -- reading ---------------------------------------------------------------------------

    def stat(self, digest: str) -> ObjectRef:
        """The stored object's ref; ``NotFound`` if absent."""
        return ObjectRef(digest, self.backend.size(object_key(digest)))

    def exists(self, digest: str) -> bool:
        return self.backend.exists(object_key(digest))

    def open(self, digest: str) -> VerifyingReader:
        """A stream over the object that raises ``IntegrityError`` at the end if it is corrupt."""
        key = object_key(digest)
        size = self.backend.size(key)
        return VerifyingReader(self.backend.open_reader(key), digest=digest, size=size)

    def get_bytes(self, digest: str, *, progress: ProgressCallback | None = None) -> bytes:
        """The object's bytes, verified."""
        parts: list[bytes] = []
        with self.open(digest) as reader:
            while chunk := reader.read(CHUNK):
                parts.append(chunk)
                if progress is not None:
                    progress(len(chunk))
        return b"".join(parts)

    def get_file(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectRef:
        """Download the object to ``dest`` (parents created): into a temp file beside it,
        verified, fsynced, then renamed, so ``dest`` is never left holding bad or partial bytes."""
        target = Path(dest)
        with self.open(digest) as reader:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
                with tmp.open("xb") as out:
                    try:
                        while chunk := reader.read(CHUNK):
                            out.write(chunk)
                            if progress is not None:
                                progress(len(chunk))
                        out.flush()
                        os.fsync(out.fileno())
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
                os.replace(tmp, target)
            except OSError as exc:
                raise _local_error(exc, f"cannot write {str(target)!r}") from exc
        return ObjectRef(digest, reader.size)

    def get_tree(
        self,
        files: Iterable[tuple[str, str]],
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[Path]:
        """Download ``(relative name, digest)`` pairs under ``dest``. Every name is checked with
        ``safe_relpath`` before anything is written, so a hostile listing cannot write outside
        ``dest``."""
        root = Path(dest)
        planned = [
            (root.joinpath(*safe_relpath(name, field="name").split("/")), check_digest(d))
            for name, d in files
        ]
        for path, digest in planned:
            self.get_file(digest, path, progress=progress)
        return [path for path, _ in planned]

    def verify(self, digest: str) -> ObjectRef:
        """Read the whole object and check it; ``IntegrityError`` if it is corrupt."""
        with self.open(digest) as reader:
            while reader.read(CHUNK):
                pass
            if not reader.verified:
                raise IntegrityError(f"object {digest} could not be verified")
            return ObjectRef(digest, reader.size)

    def iter_objects(self) -> Iterator[ObjectRef]:
        """Every stored object, in no particular order. Incomplete writes are never listed."""
        for info in self.backend.iter_keys("objects"):
            digest = digest_from_key(info.key)
            if digest is not None:
                yield ObjectRef(digest, info.size)

    # -- garbage collection ----------------------------------------------------------------

    def gc(
        self,
        keep: Iterable[str],
        *,
        dry_run: bool = True,
        older_than_s: float = DEFAULT_GRACE_S,
    ) -> GcReport:
        """Delete objects whose digest is not in ``keep`` and that are older than
        ``older_than_s``, and purge abandoned incomplete writes older than that too.

        Dry-run by default: the report says what would go. Keys under ``objects/`` that are not
        objects (foreign files) are never touched.
        """
        if not isinstance(older_than_s, int | float) or older_than_s < 0:
            raise InvalidInput(f"expected seconds >= 0, got {older_than_s!r}", field="older_than_s")
        keep_set = {check_digest(d, field="keep") for d in keep}
        cutoff_ms = now_ms() - int(older_than_s * 1000)
        deleted: list[ObjectRef] = []
        kept = recent = 0
        for info in self.backend.iter_keys("objects"):
            digest = digest_from_key(info.key)
            if digest is None:
                continue
            if digest in keep_set:
                kept += 1
            elif info.modified_ms > cutoff_ms:
                recent += 1
            else:
                deleted.append(ObjectRef(digest, info.size))
                if not dry_run:
                    self.backend.delete(info.key)
        incomplete = self.backend.purge_incomplete(older_than_s=older_than_s, dry_run=dry_run)
        return GcReport(
            dry_run=dry_run,
            deleted=tuple(deleted),
            kept_count=kept,
            recent_count=recent,
            incomplete_count=incomplete,
        )


def open_backend(uri: str | None = None) -> ArtifactBackend:
    """The backend for ``uri`` (a local path, ``file://…``, ``s3://bucket/prefix``, or a team
    server's ``http(s)://host:port``); None means the configured ``artifacts_uri``. s3fs is
    imported only for ``s3://``, httpx only for a server."""
    from keel.config import get_settings, normalize_artifacts_uri

    if uri is not None and not (isinstance(uri, str) and uri.strip()):
        # An empty string would resolve to the working directory: never a store by accident.
        raise InvalidInput(f"expected a path or s3://bucket/prefix, got {uri!r}", field="uri")
    if uri is not None and uri.lower().startswith(("http://", "https://")):
        from keel.artifacts._http import HttpBackend  # a team server's store, through it

        return HttpBackend(uri)
    resolved = get_settings().artifacts_uri if uri is None else normalize_artifacts_uri(uri)
    if resolved.startswith("s3://"):
        from keel.artifacts._s3 import S3Backend

        return S3Backend(resolved)
    from keel.artifacts._local import LocalBackend

    return LocalBackend(resolved)


def open_content_store(uri: str | None = None) -> ContentStore:
    """The content store at ``uri`` (see ``open_backend``)."""
    return ContentStore(open_backend(uri))
