"""Engines and transactions with the dialect care both backends need.

SQLite runs in WAL mode with ``synchronous=FULL`` and a busy timeout; write transactions start
with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade. PostgreSQL runs on
psycopg 3. Both retry transient failures (locked database, serialization failure, deadlock,
dropped connection) with jittered backoff; every other database error becomes a ``StoreError``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc

from keel.errors import StoreError, StoreUnavailable

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 30_000
_RETRIES = 12
_PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "08006", "08003", "08001"}

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_engine(url: str) -> Engine:
    database = url.split(":///", 1)[1]
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Pooled: closing the last connection to a WAL database forces a checkpoint, which made
    # every short transaction ~2.5 ms slower. After fork() the child drops inherited connections.
    engine = create_engine(url, pool_size=5, max_overflow=10, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("keel_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def engine_for(url: str) -> Engine:
    """The process-wide engine for ``url`` (without migrating; see ``connect``)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = _sqlite_engine(url)
            elif url.startswith("postgresql"):
                engine = _postgres_engine(url)
            else:
                raise StoreError(f"no SQL backend for {url!r}")
            _engines[url] = engine
        return engine


def connect(url: str, *, migrate: bool = True) -> Engine:
    """An engine for ``url`` whose schema is at the newest migration (applied if needed)."""
    from keel.db._migrate import ensure_current

    engine = engine_for(url)
    if migrate:
        ensure_current(engine)
    return engine


def _after_fork_in_child() -> None:
    # Connections inherited from the parent belong to the parent: never use or close them here.
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def dispose_all() -> None:
    """Close every pooled connection (after fork, at exit, between tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def is_transient(exc: BaseException) -> bool:
    """True for failures that a retry of the whole transaction may cure."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code in _PG_TRANSIENT:
            return True
        text = str(orig).lower()
        return "database is locked" in text or "database is busy" in text
    return False


def translate(exc: sa_exc.SQLAlchemyError) -> StoreError:
    """A Keel error for a database error, keeping the driver's message but not its type."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    cls = StoreUnavailable if is_transient(exc) else StoreError
    return cls(f"metadata store: {message}")


@contextmanager
def _begin(engine: Engine, write: bool) -> Iterator[Connection]:
    eng = engine.execution_options(keel_write=True) if write else engine
    with eng.begin() as conn:
        yield conn


def transaction(engine: Engine, work: Callable[[Connection], T], *, write: bool = True) -> T:
    """Run ``work(conn)`` in one transaction, retrying it whole on transient failures.

    ``work`` must be safe to repeat: it sees a fresh transaction on every attempt, and nothing of
    a failed attempt is committed. Non-transient errors are raised as ``StoreError`` at once.
    """
    delay = 0.005
    for attempt in range(_RETRIES):
        try:
            with _begin(engine, write) as conn:
                return work(conn)
        except sa_exc.SQLAlchemyError as exc:
            if not is_transient(exc) or attempt == _RETRIES - 1:
                raise translate(exc) from exc
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover
