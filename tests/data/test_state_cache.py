"""The state cache's keys: absolute paths with their folder resolved once, the file's own name
kept; a lookup before anything was recorded creates nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keel.data._state import StateCache


def test_a_lookup_with_nothing_recorded_creates_no_file(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a")
    state = StateCache(tmp_path / "home" / "state.db")
    [miss] = state.lookup([tmp_path / "a.bin"])
    assert miss.digest is None and not (tmp_path / "home").exists()
    state.record([(miss, "blake3:" + "0" * 64)])
    assert (tmp_path / "home" / "state.db").exists()


def test_a_file_is_known_by_any_path_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.bin").write_bytes(b"a")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    state = StateCache(tmp_path / "state.db")
    state.digests([real / "a.bin"])  # hashed and recorded
    [first] = state.lookup([real / "a.bin"])
    assert first.digest is not None and first.path == real / "a.bin"
    monkeypatch.chdir(tmp_path)
    for other in (tmp_path / "alias" / "a.bin", Path("alias/a.bin"), Path("real/../real/a.bin")):
        [hit] = state.lookup([other])
        assert hit.path == real / "a.bin" and hit.digest == first.digest


def test_a_retargeted_file_link_misses(tmp_path: Path) -> None:
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(b"1")
    two.write_bytes(b"2")
    link = tmp_path / "link.bin"
    link.symlink_to(one)
    state = StateCache(tmp_path / "state.db")
    assert state.digests([link]) == state.digests([one])
    link.unlink()
    link.symlink_to(two)
    [looked] = state.lookup([link])
    assert looked.digest is None  # another inode behind the same name: hashed again
    assert state.digests([link]) == state.digests([two])
    os.utime(two)  # touching the target is seen through the link too
    assert state.lookup([link])[0].digest is None
