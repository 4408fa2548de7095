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

from keel._hashing import hash_file

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS state (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, digest TEXT NOT NULL)"
)
_BATCH = 500


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
        conn.execute(_SCHEMA)
        return conn

    def digests(self, files: Iterable[Path]) -> list[tuple[str, int]]:
        """``(digest, size)`` of each file, from the cache when its stat is unchanged."""
        paths = [Path(f).resolve() for f in files]
        stats = [p.stat() for p in paths]
        out: list[tuple[str, int] | None] = [None] * len(paths)
        try:
            conn = self._connect()
        except sqlite3.Error:
            conn = None  # an unusable cache costs speed, never correctness
        known: dict[str, tuple[int, int, int, str]] = {}
        if conn is not None:
            with conn:
                for start in range(0, len(paths), _BATCH):
                    chunk = [str(p) for p in paths[start : start + _BATCH]]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT * FROM state WHERE path IN ({marks})"
                    for row in conn.execute(query, chunk):
                        known[row[0]] = (row[1], row[2], row[3], row[4])
        fresh: list[tuple[str, int, int, int, str]] = []
        for i, (p, st) in enumerate(zip(paths, stats, strict=True)):
            hit = known.get(str(p))
            if hit is not None and hit[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
                out[i] = (hit[3], st.st_size)
                self.hits += 1
                continue
            digest, size = hash_file(p)
            self.misses += 1
            out[i] = (digest, size)
            after = p.stat()
            if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
                fresh.append((str(p), st.st_size, st.st_mtime_ns, st.st_ino, digest))
        if conn is not None:
            try:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", fresh)
            except sqlite3.Error:
                pass  # the digests are right; only the next add will hash again
            finally:
                conn.close()
        return [o for o in out if o is not None]
