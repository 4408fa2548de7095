"""The state cache: ``(path, size, mtime_ns, inode) -> digest``, like DVC's state, so re-adding
an unchanged file or folder costs one ``stat`` per file instead of reading its bytes.

It lives in ``state.db`` (SQLite, standard library) in the Keel home: it describes this
machine's files, so it never belongs in a shared metadata database. A row is used only when all
four stat fields match; anything else is hashed again. Losing the file loses only speed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from keel._hashing import hash_file

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, digest TEXT NOT NULL)"
)
_BATCH = 500


class Cached(NamedTuple):
    path: Path
    stat: os.stat_result
    digest: str | None


class StateCache:
    """Digests of local files, keyed by their absolute path and stat."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # Consistent after a crash, not durable: a lost row costs one file's hashing again.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        return conn

    def lookup(self, files: Iterable[Path]) -> list[Cached]:
        """Each file's absolute path (its folder resolved), its stat now, and its digest if
        the cache has one for exactly that stat (a hit) or None (a miss, to hash and then
        ``record``). A file that is a symlink keeps its own name: the stat is its target's, so
        a retargeted link misses."""
        folders: dict[Path, Path] = {}
        paths: list[Path] = []
        for name in files:
            file = Path(name)
            folder = folders.get(file.parent)
            if folder is None:
                folder = folders[file.parent] = file.parent.resolve()
            paths.append(folder / file.name)
        stats = [p.stat() for p in paths]
        known: dict[str, tuple[int, int, int, str]] = {}
        conn: sqlite3.Connection | None = None
        if self.path.exists():  # else nothing is known yet: record() creates the file
            try:
                conn = self._connect()
            except sqlite3.Error:
                conn = None  # an unusable cache costs speed, never correctness
        if conn is not None:
            try:
                with conn:
                    for start in range(0, len(paths), _BATCH):
                        chunk = [str(p) for p in paths[start : start + _BATCH]]
                        marks = ",".join("?" * len(chunk))
                        query = f"SELECT * FROM state WHERE path IN ({marks})"
                        for row in conn.execute(query, chunk):
                            known[row[0]] = (row[1], row[2], row[3], row[4])
            except sqlite3.Error:
                known = {}
            finally:
                conn.close()
        out: list[Cached] = []
        for p, st in zip(paths, stats, strict=True):
            hit = known.get(str(p))
            if hit is not None and hit[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
                self.hits += 1
                out.append(Cached(p, st, hit[3]))
            else:
                self.misses += 1
                out.append(Cached(p, st, None))
        return out

    def record(self, entries: Iterable[tuple[Cached, str]]) -> None:
        """Remember ``(file, digest)`` pairs, in one transaction, for the files whose stat is
        still the one ``lookup`` saw (a file changed meanwhile is left to be hashed again)."""
        fresh: list[tuple[str, int, int, int, str]] = []
        for cached, digest in entries:
            st = cached.stat
            try:
                after = cached.path.stat()
            except OSError:
                continue
            if (after.st_size, after.st_mtime_ns, after.st_ino) == (
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            ):
                fresh.append((str(cached.path), st.st_size, st.st_mtime_ns, st.st_ino, digest))
        if not fresh:
            return
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", fresh)
        except sqlite3.Error:
            pass  # the digests are right; only the next add will hash again
        finally:
            conn.close()

    def digests(self, files: Iterable[Path]) -> list[tuple[str, int]]:
        """``(digest, size)`` of each file, from the cache when its stat is unchanged."""
        looked = self.lookup(files)
        out: list[tuple[str, int]] = []
        hashed: list[tuple[Cached, str]] = []
        for cached in looked:
            if cached.digest is not None:
                out.append((cached.digest, cached.stat.st_size))
                continue
            digest, size = hash_file(cached.path)
            out.append((digest, size))
            hashed.append((cached, digest))
        self.record(hashed)
        return out
