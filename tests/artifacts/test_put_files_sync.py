"""``put_files`` leaves every new object durable when it returns: each folder whose entries
changed (the objects' folders, and the folder holding the folders it made) is fsynced, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.artifacts import ContentStore, LocalBackend, _local, object_key


def test_each_changed_folder_is_fsynced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = _local._fsync_dir

    def recording(path: Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(_local, "_fsync_dir", recording)
    sources = []
    for i in range(40):
        source = tmp_path / "src" / f"{i}.bin"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(f"file {i}".encode() * 100)
        sources.append(source)
    backend = LocalBackend(tmp_path / "store")
    refs = ContentStore(backend).put_files(sources, workers=4)

    finals = [backend.root / object_key(r.digest) for r in refs]
    assert all(f.is_file() for f in finals)
    folders = {f.parent for f in finals}
    # Object folders, the folder that holds them, and each folder created above that.
    assert folders <= set(synced)
    assert {f.parent for f in folders} <= set(synced)
    assert len(synced) == len(set(synced))
