"""Request rate limits per principal (or per address before sign-in), shared by every server
process and machine on one metadata database.

A fixed window per wall-clock minute (epoch seconds // 60, so every host agrees on the window
as far as their clocks agree). The database row ``(key, minute)`` counts the requests handed
out so far; a process does not write it per request but reserves quota in chunks of
``chunk`` requests with one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` and spends
the chunk locally. The reservation that crosses the limit gets only the remainder, and once a
key's window is spent the process refuses it locally until the next minute.

Error bound: the requests admitted for a key in one minute never exceed ``per_minute`` across
all processes (every admission is carved out of the one counter). A client can be refused
early by at most ``(P - 1) * (chunk - 1)`` requests in a minute, P being the number of
processes that served it: each may hold up to ``chunk - 1`` reserved requests it did not spend.
The default chunk is 1% of the limit (60 of 6,000), so one database write per 60 requests of a
key per process. Login attempts are limited separately, per username and address, by
``keel.auth`` (also in the database).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table, delete

from keel.db import metadata, transaction
from keel.errors import RateLimited

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

WINDOW_S = 60
MAX_KEY = 200

rate_windows = Table(
    "server_rate_windows",
    metadata,
    Column("key", String(MAX_KEY), nullable=False),
    Column("minute", BigInteger, nullable=False),
    Column("hits", BigInteger, nullable=False),
    PrimaryKeyConstraint("key", "minute"),
    Index("ix_server_rate_windows_minute", "minute"),
)


def default_chunk(per_minute: int) -> int:
    """1% of the limit (at least 1): the error bound and the write rate both follow from it."""
    return max(1, per_minute // 100)


def _upsert(conn: Connection, key: str, minute: int, chunk: int) -> int:
    """Add ``chunk`` to the counter of ``(key, minute)``; the total after the addition."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt: Any = dialect.insert(rate_windows).values(key=key, minute=minute, hits=chunk)
    stmt = stmt.on_conflict_do_update(
        index_elements=[rate_windows.c.key, rate_windows.c.minute],
        set_={"hits": rate_windows.c.hits + stmt.excluded.hits},
    ).returning(rate_windows.c.hits)
    return int(conn.execute(stmt).scalar_one())


class RateLimiter:
    """``hit(key)`` counts one request and raises ``RateLimited`` past ``per_minute`` in the
    current minute, counted in the database ``engine`` shared by every server process."""

    def __init__(
        self,
        engine: Engine,
        *,
        per_minute: int,
        chunk: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.per_minute = per_minute
        self.chunk = chunk if chunk is not None else default_chunk(per_minute)
        self._clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._left: dict[str, int] = {}  # key -> reserved requests not yet spent
        self._spent: set[str] = set()  # keys whose window the database says is used up

    def hit(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        key = key[:MAX_KEY]
        now = self._clock()
        minute = int(now // WINDOW_S)
        with self._lock:
            if minute != self._minute:
                # A new window forgets the old one whole: memory stays bounded by the keys
                # seen in one minute.
                self._minute = minute
                self._left = {}
                self._spent = set()
            spent = key in self._spent
            if not spent:
                left = self._left.get(key, 0)
                if left > 0:
                    self._left[key] = left - 1
                    return
        if not spent:
            granted = self._reserve(key, minute)
            with self._lock:
                if granted > 0:
                    if minute == self._minute:
                        self._left[key] = self._left.get(key, 0) + granted - 1
                    return
                if minute == self._minute:
                    self._spent.add(key)
        retry = (minute + 1) * WINDOW_S - now
        raise RateLimited(
            f"more than {self.per_minute} requests a minute; slow down",
            retry_after=max(1.0, retry),
        )

    def _reserve(self, key: str, minute: int) -> int:
        """Reserve up to ``chunk`` requests of ``key``'s window; how many were granted."""
        chunk = min(self.chunk, self.per_minute)
        total = transaction(self.engine, lambda conn: _upsert(conn, key, minute, chunk))
        if random.random() < 0.01:  # spreads the clean-up over requests
            self.expire(minute)
        before = total - chunk
        return max(0, min(chunk, self.per_minute - before))

    def expire(self, minute: int) -> int:
        """Delete the counters of windows before ``minute - 1``; how many there were."""
        result = transaction(
            self.engine,
            lambda conn: conn.execute(
                delete(rate_windows).where(rate_windows.c.minute < minute - 1)
            ),
        )
        return int(result.rowcount or 0)
