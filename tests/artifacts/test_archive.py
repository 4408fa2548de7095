"""The one archive extractor: good tar and zip files unpack; hostile members are refused before
anything is written, and nothing is left behind."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from keel.artifacts._archive import extract_archive, pack_tree
from keel.errors import AlreadyExists, InvalidInput, LimitExceeded, UnsafePath


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in ("a.tgz", "a.zip", ".keel"))


def test_tar_and_zip_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"\x00\x01" * 1000)
    (src / "sub" / "meta.json").write_text("{}")
    archive = pack_tree(src, tmp_path / "m.tar.gz")
    assert extract_archive(archive, tmp_path / "out") == ["model.bin", "sub/meta.json"]
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"\x00\x01" * 1000
    with zipfile.ZipFile(tmp_path / "m.zip", "w") as zf:
        zf.writestr("dir/", "")
        zf.writestr("dir/x.txt", "hello")
    assert extract_archive(tmp_path / "m.zip", tmp_path / "zout") == ["dir/x.txt"]
    assert (tmp_path / "zout" / "dir" / "x.txt").read_text() == "hello"


@pytest.mark.parametrize(
    "member",
    [
        (_file("../escape.txt"), b"x"),
        (_file("ok/../../escape.txt"), b"x"),
        (_file("/etc/evil"), b"x"),
        (_link("link", "/etc/passwd", tarfile.SYMTYPE), None),
        (_link("hard", "/etc/passwd", tarfile.LNKTYPE), None),
        (_link("dev", "", tarfile.CHRTYPE), None),
        (_link("fifo", "", tarfile.FIFOTYPE), None),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_hostile_tar_members_are_refused_and_nothing_is_written(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None]
) -> None:
    # a harmless member first: it must not be written either
    archive = _tar(tmp_path / "a.tgz", [(_file("fine.txt"), b"fine"), member])
    with pytest.raises(UnsafePath):
        extract_archive(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == []
    assert not (tmp_path.parent / "escape.txt").exists()


def test_hostile_zip_members_are_refused(tmp_path: Path) -> None:
    for name in ("../evil.txt", "/abs.txt", "a\\..\\b.txt"):
        with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
            zf.writestr("fine.txt", "fine")
            zf.writestr(name, "x")
        with pytest.raises(UnsafePath):
            extract_archive(tmp_path / "a.zip", tmp_path / "out")
        assert _leftovers(tmp_path) == []
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafePath, match="link"):
        extract_archive(tmp_path / "a.zip", tmp_path / "out")
    assert _leftovers(tmp_path) == []


def test_duplicates_file_parents_and_limits(tmp_path: Path) -> None:
    dup = _tar(tmp_path / "a.tgz", [(_file("x"), b"1"), (_file("x"), b"2")])
    with pytest.raises(UnsafePath, match="twice"):
        extract_archive(dup, tmp_path / "out")
    nested = _tar(tmp_path / "a.tgz", [(_file("x"), b"1"), (_file("x/y"), b"2")])
    with pytest.raises(UnsafePath, match="inside the file"):
        extract_archive(nested, tmp_path / "out")
    big = _tar(tmp_path / "a.tgz", [(_file("x"), b"1" * 100)])
    with pytest.raises(LimitExceeded):
        extract_archive(big, tmp_path / "out", max_bytes=99)
    many = _tar(tmp_path / "a.tgz", [(_file(f"f{i}"), b"") for i in range(5)])
    with pytest.raises(LimitExceeded):
        extract_archive(many, tmp_path / "out", max_members=4)
    assert _leftovers(tmp_path) == []


def test_not_an_archive_and_existing_destination(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(InvalidInput, match="not a tar or zip"):
        extract_archive(junk, tmp_path / "out")
    good = _tar(tmp_path / "a.tgz", [(_file("x"), b"1")])
    (tmp_path / "taken").mkdir()
    with pytest.raises(AlreadyExists):
        extract_archive(good, tmp_path / "taken")


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafePath):
        pack_tree(src, tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()
