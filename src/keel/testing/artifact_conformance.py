"""The one conformance suite every artifact backend passes, through the content store.

Use it by subclassing and providing a ``store`` fixture that returns a fresh, empty
``ContentStore`` on the backend under test::

    class TestMyBackend(ArtifactStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            return ContentStore(MyBackend(...))

Corruption is injected through the backend itself (read the stored bytes, flip one, publish
them again), so the suite needs nothing backend-specific; backend tests add raw-file and
raw-API variants of their own.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel._hashing import hash_bytes, hash_chunks
from keel.artifacts import (
    ArtifactBackend,
    BackendWriter,
    ContentStore,
    ObjectRef,
    object_key,
)
from keel.errors import Conflict, IntegrityError, InvalidInput, NotFound, UnsafePath

MiB = 1 << 20


def _chunks(total: int, chunk: int = MiB, seed: int = 0) -> Iterator[bytes]:
    """Deterministic, incompressible-looking chunks without holding ``total`` bytes at once."""
    block = hashlib.sha256(str(seed).encode()).digest() * (chunk // 32)
    for i in range((total + chunk - 1) // chunk):
        n = min(chunk, total - i * chunk)
        yield i.to_bytes(8, "big") + block[8:n] if n >= 8 else block[:n]


class ChunkStream:
    """A readable binary stream over ``_chunks``: a large upload without a large buffer."""

    def __init__(self, total: int, *, seed: int = 0) -> None:
        self._it = _chunks(total, seed=seed)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            nxt = next(self._it, None)
            if nxt is None:
                break
            self._pending += nxt
        cut = len(self._pending) if size < 0 else size
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out


def stream_digest(total: int, *, seed: int = 0) -> str:
    return hash_chunks(_chunks(total, seed=seed))[0]


def publish_raw(backend: ArtifactBackend, key: str, data: bytes) -> None:
    with backend.open_writer(key) as w:
        w.write(data)


def flip_byte(store: ContentStore, digest: str, *, at: int = 0) -> None:
    """Corrupt a stored object in place (through its backend), keeping its size."""
    key = object_key(digest)
    with store.backend.open_reader(key) as f:
        data = bytearray(f.read())
    data[at] ^= 0x01
    publish_raw(store.backend, key, bytes(data))


class ArtifactStoreConformance:
    """Behaviour every ``ContentStore`` + backend pair must show."""

    #: Size of the streamed object, and the peak Python allocation allowed while moving it.
    large_size = 20 * MiB
    memory_bound = 12 * MiB

    @pytest.fixture
    def store(self) -> ContentStore:
        raise NotImplementedError("subclasses provide a fresh, empty store")

    # -- roundtrip -------------------------------------------------------------------------

    def test_bytes_roundtrip(self, store: ContentStore) -> None:
        ref = store.put_bytes(b"hello keel")
        assert ref == ObjectRef(hash_bytes(b"hello keel"), 10)
        assert store.get_bytes(ref.digest) == b"hello keel"
        assert store.exists(ref.digest)
        assert store.stat(ref.digest) == ref
        assert store.backend.exists(f"objects/{ref.digest[:2]}/{ref.digest[2:]}")

    def test_empty_object(self, store: ContentStore) -> None:
        ref = store.put_bytes(b"")
        assert ref.size == 0
        assert store.get_bytes(ref.digest) == b""
        assert store.verify(ref.digest) == ref

    def test_file_roundtrip_and_progress(self, store: ContentStore, tmp_path: Path) -> None:
        src = tmp_path / "model.bin"
        src.write_bytes(b"x" * (3 * MiB + 17))
        seen: list[int] = []
        ref = store.put_file(src, progress=seen.append)
        assert sum(seen) == ref.size == 3 * MiB + 17
        dest = tmp_path / "out" / "deep" / "model.bin"
        got: list[int] = []
        assert store.get_file(ref.digest, dest, progress=got.append) == ref
        assert dest.read_bytes() == src.read_bytes()
        assert sum(got) == ref.size
        assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]  # no temp left

    def test_stream_with_and_without_digest(self, store: ContentStore) -> None:
        size = 2 * MiB + 5
        expected = stream_digest(size, seed=1)
        seen: list[int] = []
        a = store.put_stream(ChunkStream(size, seed=1), progress=seen.append)  # type: ignore[arg-type]
        assert a == ObjectRef(expected, size)
        assert sum(seen) == size
        store.gc(set(), dry_run=False, older_than_s=0)
        assert not store.exists(expected)
        b = store.put_stream(ChunkStream(size, seed=1), digest=expected, size=size)  # type: ignore[arg-type]
        assert b == a
        assert store.verify(expected) == a

    def test_stream_with_wrong_digest_stores_nothing(self, store: ContentStore) -> None:
        wrong = hash_bytes(b"something else")
        with pytest.raises(InvalidInput) as err:
            store.put_stream(ChunkStream(MiB), digest=wrong)  # type: ignore[arg-type]
        assert err.value.field == "digest"
        assert not store.exists(wrong)
        assert list(store.iter_objects()) == []
        assert list(store.backend.iter_keys()) == []

    def test_tree_roundtrip(self, store: ContentStore, tmp_path: Path) -> None:
        src = tmp_path / "src"
        (src / "sub" / "deeper").mkdir(parents=True)
        (src / "a.txt").write_text("a")
        (src / "sub" / "b.txt").write_text("b")
        (src / "sub" / "deeper" / "c.txt").write_text("a")  # same bytes as a.txt
        seen: list[int] = []
        tree = store.put_tree(src, progress=seen.append)
        assert [name for name, _ in tree] == ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]
        assert tree[0][1] == tree[2][1]
        assert sum(seen) == 3
        assert len(list(store.iter_objects())) == 2
        dest = tmp_path / "dest"
        store.get_tree([(n, r.digest) for n, r in tree], dest)
        assert (dest / "sub" / "deeper" / "c.txt").read_text() == "a"
        assert (dest / "sub" / "b.txt").read_text() == "b"

    # -- dedup -----------------------------------------------------------------------------

    def test_dedup_skips_the_upload(
        self, store: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        opened: list[str] = []
        open_writer = store.backend.open_writer

        def counting(key: str) -> BackendWriter:
            opened.append(key)
            return open_writer(key)

        monkeypatch.setattr(store.backend, "open_writer", counting)
        first = store.put_bytes(b"same bytes")
        src = tmp_path / "same.bin"
        src.write_bytes(b"same bytes")
        assert store.put_bytes(b"same bytes") == first
        assert store.put_file(src) == first
        digest = first.digest
        assert store.put_stream(ChunkStream(0)) != first  # type: ignore[arg-type]
        assert opened == [object_key(digest), object_key(hash_bytes(b""))]  # uploads of new only
        assert sorted(r.digest for r in store.iter_objects()) == sorted([digest, hash_bytes(b"")])

    # -- large objects, constant memory ----------------------------------------------------

    def test_large_stream_in_constant_memory(self, store: ContentStore) -> None:
        size = self.large_size
        expected = stream_digest(size, seed=7)
        assert not store.exists(expected)  # connect first: client set-up is not streaming
        tracemalloc.start()
        try:
            ref = store.put_stream(ChunkStream(size, seed=7), digest=expected)  # type: ignore[arg-type]
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            with store.open(ref.digest) as reader:
                total = 0
                while chunk := reader.read(MiB):
                    total += len(chunk)
                assert reader.verified
            _, get_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert ref == ObjectRef(expected, size)
        assert total == size
        assert put_peak < self.memory_bound, f"upload peaked at {put_peak / MiB:.1f} MiB"
        assert get_peak < self.memory_bound, f"download peaked at {get_peak / MiB:.1f} MiB"

    # -- backend contract ------------------------------------------------------------------

    def test_exists_size_delete(self, store: ContentStore) -> None:
        b = store.backend
        assert not b.exists("dir/file.txt")
        publish_raw(b, "dir/file.txt", b"12345")
        assert b.exists("dir/file.txt")
        assert b.size("dir/file.txt") == 5
        with b.open_reader("dir/file.txt") as f:
            assert f.read() == b"12345"
        publish_raw(b, "dir/file.txt", b"replaced")  # publishing again replaces
        assert b.size("dir/file.txt") == 8
        b.delete("dir/file.txt")
        assert not b.exists("dir/file.txt")
        b.delete("dir/file.txt")  # idempotent
        with pytest.raises(NotFound):
            b.size("dir/file.txt")
        with pytest.raises(NotFound):
            b.open_reader("dir/file.txt")
        with pytest.raises(NotFound):
            store.get_bytes(hash_bytes(b"never stored"))

    def test_listing(self, store: ContentStore) -> None:
        b = store.backend
        for key in ("x/1", "x/2", "x/y/3", "z/4"):
            publish_raw(b, key, key.encode())
        listed = {info.key: info.size for info in b.iter_keys()}
        assert listed == {"x/1": 3, "x/2": 3, "x/y/3": 5, "z/4": 3}
        assert sorted(i.key for i in b.iter_keys("x")) == ["x/1", "x/2", "x/y/3"]
        assert [i.key for i in b.iter_keys("x/y")] == ["x/y/3"]
        assert list(b.iter_keys("nothing-here")) == []
        assert all(i.modified_ms > 0 for i in b.iter_keys())
        refs = {store.put_bytes(b"one"), store.put_bytes(b"two")}
        assert set(store.iter_objects()) == refs  # foreign keys are not objects

    # -- atomicity -------------------------------------------------------------------------

    def test_nothing_visible_before_commit(self, store: ContentStore) -> None:
        w = store.backend.open_writer("pending/obj")
        w.write(b"a" * MiB)
        assert not store.backend.exists("pending/obj")
        assert list(store.backend.iter_keys()) == []
        w.commit()
        assert store.backend.size("pending/obj") == MiB

    def test_abort_leaves_nothing(self, store: ContentStore) -> None:
        b = store.backend
        w = b.open_writer("aborted/big")
        for chunk in _chunks(9 * MiB):  # past one multipart part
            w.write(chunk)
        w.abort()
        w.abort()  # idempotent
        with pytest.raises(Conflict):
            w.write(b"more")
        with pytest.raises(Conflict):
            w.commit()
        with pytest.raises(RuntimeError), b.open_writer("aborted/with") as w2:
            w2.write(b"partial")
            raise RuntimeError("the producer failed")
        assert not b.exists("aborted/big")
        assert not b.exists("aborted/with")
        assert list(b.iter_keys()) == []
        assert b.purge_incomplete(older_than_s=0) == 0  # abort cleaned up after itself

    def test_failing_source_publishes_nothing(self, store: ContentStore) -> None:
        class Broken:
            def __init__(self) -> None:
                self.calls = 0

            def read(self, size: int = -1) -> bytes:
                self.calls += 1
                if self.calls > 3:
                    raise OSError("the network went away")
                return b"z" * MiB

        digest = hash_bytes(b"z" * 10 * MiB)
        with pytest.raises(OSError, match="network"):
            store.put_stream(Broken(), digest=digest)  # type: ignore[arg-type]
        assert not store.exists(digest)
        assert list(store.backend.iter_keys()) == []

    def test_file_changed_during_upload_publishes_nothing(
        self, store: ContentStore, tmp_path: Path
    ) -> None:
        src = tmp_path / "growing.log"
        src.write_bytes(b"a" * (3 * MiB))

        def meddle(_: int) -> None:  # another process rewrites the file mid-upload
            with src.open("r+b") as f:
                f.seek(2 * MiB)
                f.write(b"b" * 16)

        with pytest.raises(Conflict, match="changed"):
            store.put_file(src, progress=meddle)
        assert list(store.backend.iter_keys()) == []
        assert store.backend.purge_incomplete(older_than_s=0) == 0

    # -- verification ----------------------------------------------------------------------

    def test_flipped_byte_is_detected_on_every_read_path(
        self, store: ContentStore, tmp_path: Path
    ) -> None:
        data = b"".join(_chunks(3 * MiB, seed=3))
        ref = store.put_bytes(data)
        flip_byte(store, ref.digest, at=len(data) // 2)
        with pytest.raises(IntegrityError):
            store.get_bytes(ref.digest)
        with pytest.raises(IntegrityError), store.open(ref.digest) as reader:
            while reader.read(MiB):
                pass
        dest = tmp_path / "downloads" / "dest.bin"
        with pytest.raises(IntegrityError):
            store.get_file(ref.digest, dest)
        assert not dest.exists()
        assert list(dest.parent.iterdir()) == []  # the temp download was removed too
        with pytest.raises(IntegrityError):
            store.verify(ref.digest)

    def test_truncated_object_is_detected_and_repaired_by_put(self, store: ContentStore) -> None:
        ref = store.put_bytes(b"0123456789")
        publish_raw(store.backend, object_key(ref.digest), b"01234")
        with pytest.raises(IntegrityError):
            store.get_bytes(ref.digest)
        assert store.put_bytes(b"0123456789") == ref  # wrong size: not a dedup hit
        assert store.get_bytes(ref.digest) == b"0123456789"

    # -- garbage collection ----------------------------------------------------------------

    def test_gc_dry_run_then_real(self, store: ContentStore) -> None:
        keep = store.put_bytes(b"referenced")
        drop = store.put_bytes(b"orphan")
        young = store.gc({keep.digest})  # default grace: both are too young to collect
        assert young.deleted == () and young.recent_count == 1 and young.kept_count == 1
        dry = store.gc({keep.digest}, older_than_s=0)
        assert dry.dry_run and dry.deleted == (drop,)
        assert dry.deleted_bytes == len(b"orphan")
        assert store.exists(drop.digest)
        real = store.gc({keep.digest}, dry_run=False, older_than_s=0)
        assert real.deleted == (drop,) and not real.dry_run
        assert not store.exists(drop.digest)
        assert store.get_bytes(keep.digest) == b"referenced"
        assert store.gc({keep.digest}, dry_run=False, older_than_s=0).deleted == ()
        assert real.to_dict()["deleted"] == [{"digest": drop.digest, "size": drop.size}]

    def test_gc_rejects_bad_input(self, store: ContentStore) -> None:
        with pytest.raises(InvalidInput) as err:
            store.gc({"not-a-digest"})
        assert err.value.field == "keep"
        with pytest.raises(InvalidInput) as err:
            store.gc(set(), older_than_s=-1)
        assert err.value.field == "older_than_s"

    # -- bad input -------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "digest",
        [
            "",
            "abc",
            "../../etc/passwd",
            "A" * 64,
            "g" * 64,
            "a" * 63,
            "a" * 65,
            "blake3:" + "a" * 64,
        ],
    )
    def test_bad_digest_is_rejected(self, store: ContentStore, digest: str) -> None:
        for call in (store.get_bytes, store.exists, store.open, store.verify, store.stat):
            with pytest.raises(InvalidInput) as err:
                call(digest)
            assert err.value.field == "digest"

    @pytest.mark.parametrize(
        "name",
        ["../escape", "/abs/path", "a/../../b", "nul\x00byte", "back\\slash", "", "%2e%2e/x"],
    )
    def test_unsafe_names_are_rejected(
        self, store: ContentStore, tmp_path: Path, name: str
    ) -> None:
        with pytest.raises(UnsafePath) as err:
            store.backend.open_writer(name)
        assert err.value.field == "key"
        ref = store.put_bytes(b"payload")
        dest = tmp_path / "dest"
        with pytest.raises(UnsafePath) as err:
            store.get_tree([("fine.txt", ref.digest), (name, ref.digest)], dest)
        assert err.value.field == "name"
        assert not dest.exists()  # checked before anything was written
        assert list(store.backend.iter_keys()) == [
            info for info in store.backend.iter_keys() if info.key.startswith("objects/")
        ]
