"""Files up to ``_BUFFERED_MAX`` bytes go into a local store from one reused buffer per thread,
to an unnamed file linked in under the key where the filesystem has them, and leave no pages
in the page cache. Every size (a short file after a long one in the same buffer too) is
published exactly; a filesystem without unnamed files gets renamed temp files; a failed write
publishes nothing."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from keel.artifacts import ContentStore, LocalBackend, _cas, _local, object_key
from keel.artifacts._local import TMP_DIRNAME
from keel.errors import StoreError

SIZES = [0, 1, 4095, 4096, 4097, (1 << 20) + 3, _cas._BUFFERED_MAX, _cas._BUFFERED_MAX + 1]


def _files(root: Path, sizes: list[int]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = root / f"{i}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def _assert_stored_exactly(backend: LocalBackend, path: Path, digest: str) -> None:
    data = path.read_bytes()
    assert digest == blake3(data).hexdigest()
    stored = backend.root / object_key(digest)
    assert stored.stat().st_size == len(data)
    assert stored.read_bytes() == data


@pytest.mark.parametrize("workers", [1, 4])
def test_every_size_is_published_exactly(tmp_path: Path, workers: int) -> None:
    # Longest first: with one worker each file reuses a buffer that held a longer one, so
    # stale bytes past its end would show.
    paths = _files(tmp_path / "src", sorted(SIZES, reverse=True))
    backend = LocalBackend(tmp_path / "store")
    refs = ContentStore(backend).put_files(paths, workers=workers)
    for path, ref in zip(paths, refs, strict=True):
        assert ref.size == path.stat().st_size
        _assert_stored_exactly(backend, path, ref.digest)
    assert list((backend.root / TMP_DIRNAME).iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="no O_TMPFILE on this platform")
def test_a_filesystem_without_unnamed_files_gets_named_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    refused: list[int] = []
    created: list[str] = []

    def no_tmpfile(path: str | Path, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(flags)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        if flags & os.O_CREAT:
            created.append(Path(path).parent.name)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", no_tmpfile)
    backend = LocalBackend(tmp_path / "store")
    paths = _files(tmp_path / "src", [10, 70_000, 3])
    refs = ContentStore(backend).put_files(paths, workers=1)
    for path, ref in zip(paths, refs, strict=True):
        _assert_stored_exactly(backend, path, ref.digest)
    assert backend._unnamed is False
    assert len(refused) == 1  # asked once, then never again
    assert created == [TMP_DIRNAME] * 3
    assert list((backend.root / TMP_DIRNAME).iterdir()) == []


def test_a_damaged_object_in_the_way_is_replaced(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "store")
    store = ContentStore(backend)
    (path,) = _files(tmp_path / "src", [50_000])
    ref = store.put_file(path)
    stored = backend.root / object_key(ref.digest)
    stored.write_bytes(path.read_bytes()[:1000])  # a truncated object: the wrong size
    assert store.put_file(path) == ref
    _assert_stored_exactly(backend, path, ref.digest)
    assert list((backend.root / TMP_DIRNAME).iterdir()) == []


def test_a_failed_write_publishes_nothing_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    backend = LocalBackend(tmp_path / "store")
    store = ContentStore(backend)
    kept = store.put_bytes(b"stored before")
    monkeypatch.setattr(_local, "_write_all", disk_full)
    (path,) = _files(tmp_path / "src", [70_000])
    with pytest.raises(StoreError, match="No space left"):
        store.put_file(path)
    assert [r.digest for r in store.iter_objects()] == [kept.digest]
    assert list((backend.root / TMP_DIRNAME).iterdir()) == []
    assert store.get_bytes(kept.digest) == b"stored before"


def test_an_object_already_stored_is_not_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(tmp_path / "store")
    store = ContentStore(backend)
    (path,) = _files(tmp_path / "src", [9000])
    first = store.put_file(path)
    published: list[str] = []
    real = backend.publish_buffer

    def counting(key: str, *args: Any, **kwargs: Any) -> None:
        published.append(key)
        real(key, *args, **kwargs)

    monkeypatch.setattr(backend, "publish_buffer", counting)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(path.read_bytes())
    assert store.put_file(copy) == first
    assert published == []


def _resident_pages(path: Path) -> int:
    """How many of ``path``'s pages are in the page cache (``mincore`` on a mapping of it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr is not None and addr != ctypes.c_void_p(-1).value, ctypes.get_errno()
        try:
            vec = ctypes.create_string_buffer(-(-size // mmap.PAGESIZE))
            assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
            return sum(b & 1 for b in vec.raw)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def _drop_pages(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore, posix_fadvise: Linux")
def test_a_stored_object_leaves_no_pages_in_the_page_cache(tmp_path: Path) -> None:
    (path,) = _files(tmp_path / "src", [1 << 20])
    control = tmp_path / "control.bin"
    control.write_bytes(path.read_bytes())
    assert _resident_pages(control) > 0  # the check sees what a plain write leaves cached
    _drop_pages(control)
    if _resident_pages(control) > 0:
        pytest.skip("this filesystem keeps file pages in memory (tmpfs)")
    backend = LocalBackend(tmp_path / "store")
    ref = ContentStore(backend).put_file(path)
    assert _resident_pages(backend.root / object_key(ref.digest)) == 0
    _assert_stored_exactly(backend, path, ref.digest)  # reading it back caches it: fine
