"""Files up to ``_BUFFERED_MAX`` bytes go into a local store from one reused buffer per thread,
written with O_DIRECT where the filesystem takes it. Every size (whole blocks or not, a short
file after a long one in the same buffer) is published exactly; a filesystem that refuses
O_DIRECT gets the same bytes through the page cache; a failed write publishes nothing."""

from __future__ import annotations

import errno
import os
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


def _direct_io_works(folder: Path) -> bool:
    """Whether this filesystem takes an O_DIRECT write of one page, asked independently of
    Keel."""
    if not hasattr(os, "O_DIRECT"):
        return False
    probe = folder / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    try:
        buf = _local.aligned_buffer(_local.DIRECT_ALIGN)
        os.write(fd, memoryview(buf))
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()
    return True


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


def test_direct_io_stays_on_where_the_filesystem_takes_it(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "store")
    (path,) = _files(tmp_path / "src", [(1 << 20) + 3])
    ref = ContentStore(backend).put_file(path)
    _assert_stored_exactly(backend, path, ref.digest)
    assert backend._direct is _direct_io_works(tmp_path)


def test_a_filesystem_refusing_o_direct_at_open_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    refused: list[str] = []

    def refusing(path: str | Path, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & getattr(os, "O_DIRECT", 0):
            refused.append(str(path))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", refusing)
    backend = LocalBackend(tmp_path / "store")
    backend._direct = True
    paths = _files(tmp_path / "src", [4097, 12_345])
    refs = ContentStore(backend).put_files(paths, workers=1)
    for path, ref in zip(paths, refs, strict=True):
        _assert_stored_exactly(backend, path, ref.digest)
    assert len(refused) == 1  # asked once, then never again
    assert backend._direct is False


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
    direct = backend._direct
    paths = _files(tmp_path / "src", [10, 70_000, 3])
    refs = ContentStore(backend).put_files(paths, workers=1)
    for path, ref in zip(paths, refs, strict=True):
        _assert_stored_exactly(backend, path, ref.digest)
    assert backend._unnamed is False
    assert backend._direct is direct  # O_DIRECT is a separate question
    assert len(refused) == (2 if direct else 1)  # asked once (with and without O_DIRECT)
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


def test_a_refused_direct_write_is_redone_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_all = _local._write_all
    calls: list[int] = []

    def refuse_first(fd: int, data: memoryview) -> None:
        calls.append(len(data))
        if len(calls) == 1:  # a device whose blocks are larger than a page
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write_all(fd, data)

    monkeypatch.setattr(_local, "_write_all", refuse_first)
    backend = LocalBackend(tmp_path / "store")
    backend._direct = True
    (path,) = _files(tmp_path / "src", [5000])
    ref = ContentStore(backend).put_file(path)
    _assert_stored_exactly(backend, path, ref.digest)
    assert calls == [2 * _local.DIRECT_ALIGN, 5000]  # whole blocks, then the exact bytes
    assert backend._direct is False
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
