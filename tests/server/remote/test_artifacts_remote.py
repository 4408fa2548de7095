"""The artifact conformance suite, unchanged, against a live server, plus what only the
server's verified object routes promise (hash checked on upload and on download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from keel.artifacts import ContentStore, LocalBackend, object_key
from keel.artifacts._http import HttpBackend
from keel.errors import IntegrityError
from keel.testing.artifact_conformance import ArtifactStoreConformance, _chunks

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote

MiB = 1 << 20


def _empty(root: Path) -> None:
    import shutil

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)


@pytest.fixture
def server_disk(remote: Remote) -> LocalBackend:
    """The server's own artifact folder (emptied), for corrupting bytes behind its back."""
    _empty(remote.artifacts_root)
    return LocalBackend(str(remote.artifacts_root))


class TestRawHttpBackend(ArtifactStoreConformance):
    """Every key through the raw (admin) routes: the backend contract, bytes by key."""

    @pytest.fixture
    def store(self, remote: Remote, server_disk: LocalBackend) -> Iterator[ContentStore]:
        backend = HttpBackend(remote.url, token=remote.token, verified=False)
        yield ContentStore(backend)
        backend.close()


class TestVerifiedHttpBackend(ArtifactStoreConformance):
    """Objects through the verified routes (what clients use). The server refuses corrupt
    uploads, so the two corruption tests corrupt its disk directly instead."""

    @pytest.fixture
    def store(self, remote: Remote, server_disk: LocalBackend) -> Iterator[ContentStore]:
        backend = HttpBackend(remote.url, token=remote.token)
        yield ContentStore(backend)
        backend.close()

    def test_flipped_byte_is_detected_on_every_read_path(  # type: ignore[override]
        self, store: ContentStore, server_disk: LocalBackend, tmp_path: Path
    ) -> None:
        data = b"".join(_chunks(3 * MiB, seed=3))
        ref = store.put_bytes(data)
        _flip_on_disk(server_disk, ref.digest, at=len(data) // 2)
        with pytest.raises(IntegrityError):
            store.get_bytes(ref.digest)
        dest = tmp_path / "downloads" / "dest.bin"
        with pytest.raises(IntegrityError):
            store.get_file(ref.digest, dest)
        assert not dest.exists()  # refused before a byte was sent: no temp file either
        assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
        with pytest.raises(IntegrityError):
            store.verify(ref.digest)

    def test_truncated_object_is_detected_and_repaired_by_put(  # type: ignore[override]
        self, store: ContentStore, server_disk: LocalBackend
    ) -> None:
        ref = store.put_bytes(b"0123456789")
        with server_disk.open_writer(object_key(ref.digest)) as w:
            w.write(b"01234")
        with pytest.raises(IntegrityError):
            store.get_bytes(ref.digest)
        assert store.put_bytes(b"0123456789") == ref  # wrong size: not a dedup hit
        assert store.get_bytes(ref.digest) == b"0123456789"


def _flip_on_disk(disk: LocalBackend, digest: str, *, at: int) -> None:
    key = object_key(digest)
    with disk.open_reader(key) as f:
        data = bytearray(f.read())
    data[at] ^= 0x01
    with disk.open_writer(key) as w:
        w.write(bytes(data))
