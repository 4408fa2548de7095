"""The one safe way Keel unpacks a tar or zip archive (model bundles, packaged models).

Every member is checked before a byte is written: names pass ``safe_relpath`` (no ``..``, no
absolute paths, no NUL or backslashes), only regular files and folders are allowed (symlinks,
hard links, devices and FIFOs are refused), names may not repeat or nest under a file, and the
member count and total size are capped. Files are written with exclusive create into a fresh
temp folder next to ``dest``, counted as they are written (a zip that lies about its sizes is
caught), and the folder is renamed to ``dest`` only when everything is out: a refused or
failed archive leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from keel.artifacts._paths import safe_relpath
from keel.errors import AlreadyExists, InvalidInput, LimitExceeded, StoreError, UnsafePath

MAX_MEMBERS = 100_000
MAX_BYTES = 20 << 30
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class _Member:
    name: str  # checked relative posix name
    is_dir: bool
    size: int
    source: object  # the TarInfo or ZipInfo


def _tar_members(tar: tarfile.TarFile) -> list[_Member]:
    out = []
    for info in tar.getmembers():
        if info.issym() or info.islnk():
            raise UnsafePath(f"link member {info.name!r} -> {info.linkname!r}", field="archive")
        if not (info.isfile() or info.isdir()):
            raise UnsafePath(f"{info.name!r} is not a regular file or folder", field="archive")
        name = safe_relpath(info.name, field="archive")
        out.append(_Member(name, info.isdir(), 0 if info.isdir() else info.size, info))
    return out


def _zip_members(archive: zipfile.ZipFile) -> list[_Member]:
    out = []
    for info in archive.infolist():
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a file)
        if kind == stat.S_IFLNK:
            raise UnsafePath(f"link member {info.filename!r}", field="archive")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafePath(f"{info.filename!r} is not a regular file or folder", field="archive")
        name = safe_relpath(info.filename, field="archive")
        out.append(_Member(name, info.is_dir(), 0 if info.is_dir() else info.file_size, info))
    return out


def _check(members: list[_Member], *, max_members: int, max_bytes: int) -> None:
    if len(members) > max_members:
        raise LimitExceeded(f"more than {max_members} members", field="archive")
    total = sum(m.size for m in members)
    if total > max_bytes:
        raise LimitExceeded(f"unpacks to {total} bytes, over {max_bytes}", field="archive")
    files = {m.name for m in members if not m.is_dir}
    dirs = {m.name for m in members if m.is_dir}
    seen: set[str] = set()
    for m in members:
        if not m.is_dir and m.name in seen:
            raise UnsafePath(f"{m.name!r} appears twice", field="archive")
        seen.add(m.name)
        parts = m.name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise UnsafePath(f"{m.name!r} is inside the file {parts[0]!r}", field="archive")
        if m.name in files and m.name in dirs:
            raise UnsafePath(f"{m.name!r} is both a file and a folder", field="archive")


@contextmanager
def _opened(path: Path) -> Iterator[tuple[list[_Member], object]]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            yield _zip_members(zf), zf
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tf:
            yield _tar_members(tf), tf
    else:
        raise InvalidInput(f"{str(path)!r} is not a tar or zip archive", field="archive")


def _reader(handle: object, member: _Member) -> IO[bytes]:
    if isinstance(handle, zipfile.ZipFile):
        assert isinstance(member.source, zipfile.ZipInfo)
        return handle.open(member.source)
    assert isinstance(handle, tarfile.TarFile) and isinstance(member.source, tarfile.TarInfo)
    stream = handle.extractfile(member.source)
    if stream is None:  # pragma: no cover - regular files always have a stream
        raise InvalidInput(f"cannot read {member.name!r}", field="archive")
    return stream


def _write(reader: IO[bytes], target: Path, budget: int) -> int:
    written = 0
    with target.open("xb") as out:
        while chunk := reader.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise LimitExceeded("the archive unpacks to more than it declares", field="archive")
            out.write(chunk)
    return written


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_BYTES,
) -> list[str]:
    """Unpack ``archive`` (tar, tar.gz/bz2/xz, or zip) into the new folder ``dest``; returns
    the relative names of the files written. ``UnsafePath`` / ``LimitExceeded`` /
    ``InvalidInput`` name the problem; on any error ``dest`` does not exist afterwards."""
    source, target = Path(archive), Path(dest)
    if not source.is_file():
        raise InvalidInput(f"{str(source)!r} is not a file", field="archive")
    if target.exists():
        raise AlreadyExists(f"{str(target)!r} already exists; extract into a new folder")
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with _opened(source) as (members, handle):
            _check(members, max_members=max_members, max_bytes=max_bytes)
            staging.mkdir(parents=True)
            root = staging.resolve()
            budget = max_bytes
            names = []
            for m in members:
                path = staging.joinpath(*m.name.split("/"))
                if not path.resolve().is_relative_to(root):  # defence in depth
                    raise UnsafePath(f"{m.name!r} escapes the folder", field="archive")
                if m.is_dir:
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with _reader(handle, m) as reader:
                    budget -= _write(reader, path, budget)
                names.append(m.name)
        staging.rename(target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput(f"damaged archive: {exc}", field="archive") from exc
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError(f"cannot extract into {str(target)!r}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(names)


def pack_tree(folder: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write the files under ``folder`` into a new ``.tar.gz`` at ``archive`` (atomically:
    a temp file renamed into place). Symlinks are refused, as ``extract_archive`` would."""
    root, target = Path(folder), Path(archive)
    if not root.is_dir():
        raise InvalidInput(f"{str(root)!r} is not a folder", field="folder")
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with tarfile.open(tmp, "w:gz") as tf:
            for path in sorted(root.rglob("*")):
                rel = safe_relpath(path.relative_to(root).as_posix(), field="folder")
                if path.is_symlink():
                    raise UnsafePath(f"{rel!r} is a symlink", field="folder")
                if path.is_file():
                    tf.add(path, arcname=rel, recursive=False)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
