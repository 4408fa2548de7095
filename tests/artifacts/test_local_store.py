"""The local-folder backend: the conformance suite, plus what only a filesystem can show."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel.artifacts import (
    ContentStore,
    LocalBackend,
    object_key,
    open_backend,
    open_content_store,
)
from keel.artifacts._local import TMP_DIRNAME
from keel.errors import ConfigError, IntegrityError, InvalidInput, UnsafePath
from keel.testing.artifact_conformance import ArtifactStoreConformance


class TestLocalConformance(ArtifactStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ContentStore:
        return ContentStore(LocalBackend(tmp_path / "store"))


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(LocalBackend(tmp_path / "store"))


def _object_path(store: ContentStore, digest: str) -> Path:
    backend = store.backend
    assert isinstance(backend, LocalBackend)
    return backend.root / object_key(digest)


def test_flipped_byte_in_the_raw_file_is_detected(store: ContentStore) -> None:
    ref = store.put_bytes(b"model weights " * 1000)
    path = _object_path(store, ref.digest)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        store.get_bytes(ref.digest)


def test_layout_is_objects_ab_cdef(store: ContentStore) -> None:
    ref = store.put_bytes(b"layout")
    path = _object_path(store, ref.digest)
    assert path.parent.name == ref.digest[:2]
    assert path.name == ref.digest[2:]
    assert path.read_bytes() == b"layout"


def test_temp_files_are_not_listed_and_gc_purges_stale_ones(store: ContentStore) -> None:
    backend = store.backend
    assert isinstance(backend, LocalBackend)
    store.put_bytes(b"x")
    dead = backend.root / TMP_DIRNAME / "0123abcd.part"  # what a killed writer leaves
    dead.write_bytes(b"left behind by a crash")
    tmp_files = list((backend.root / TMP_DIRNAME).iterdir())
    assert tmp_files == [dead]
    assert all(not info.key.startswith(TMP_DIRNAME) for info in backend.iter_keys())
    # Fresh temp files belong to live writers: the grace period protects them.
    assert store.gc(set(), dry_run=False).incomplete_count == 0
    assert tmp_files[0].exists()
    old = time.time() - 7200
    os.utime(tmp_files[0], (old, old))
    dry = store.gc(set(), older_than_s=3600)
    assert dry.incomplete_count == 1 and tmp_files[0].exists()
    assert store.gc(set(), dry_run=False, older_than_s=3600).incomplete_count == 1
    assert not tmp_files[0].exists()


def test_the_temp_folder_is_not_a_key(store: ContentStore) -> None:
    with pytest.raises(UnsafePath):
        store.backend.open_writer(f"{TMP_DIRNAME}/sneaky")
    with pytest.raises(UnsafePath):
        store.backend.exists(f"{TMP_DIRNAME}/sneaky")


def test_put_tree_refuses_folder_symlinks_and_follows_file_symlinks(
    store: ContentStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.txt").symlink_to(outside / "secret.txt")
    assert [n for n, _ in store.put_tree(tree)] == ["link.txt"]
    (tree / "dirlink").symlink_to(outside, target_is_directory=True)
    with pytest.raises(Exception, match="symlink to a folder"):
        store.put_tree(tree)


def test_open_content_store_defaults_to_the_configured_home(keel_home: Path) -> None:
    store = open_content_store()
    assert store.uri == str(keel_home / "artifacts")
    ref = store.put_bytes(b"configured")
    assert (keel_home / "artifacts" / object_key(ref.digest)).is_file()


def test_uris_are_normalised(tmp_path: Path) -> None:
    assert open_backend(f"file://{tmp_path}/a/").uri == str(tmp_path / "a")
    assert open_backend(str(tmp_path / "b")).uri == str(tmp_path / "b")
    for bad in ("", "   "):
        with pytest.raises(InvalidInput) as err:
            open_backend(bad)
        assert err.value.field == "uri"
    with pytest.raises(ConfigError):
        open_backend("gs://bucket/x")


def test_importing_keel_artifacts_loads_no_storage_client() -> None:
    heavy = ("fsspec", "s3fs", "boto3", "botocore", "pydantic")
    code = f"import sys, keel.artifacts\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
