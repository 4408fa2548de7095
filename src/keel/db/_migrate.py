"""Alembic migrations, applied once per process on first use and by ``keel db upgrade``.

When several processes start on an empty database at once, one migrates and the others wait on
a lock (an advisory lock on PostgreSQL, a lock file beside the database on SQLite), then find the
schema current and go on.
"""

from __future__ import annotations

import fcntl
import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from keel.errors import StoreError

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number; it names Keel's migration lock among PostgreSQL advisory locks.
_PG_LOCK_KEY = 0x6B65656C_6D696772
_current: set[str] = set()
_local_lock = threading.Lock()


def _alembic_config(conn: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


_REVISION_LINE = re.compile(r'^(revision|down_revision) = "(\w+)"$', re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration shipped with this version of Keel.

    Read from the migration files' ``revision`` / ``down_revision`` lines rather than through
    Alembic's script directory: importing Alembic to answer "is the database current?" cost
    every CLI command ~70 ms. A test checks this agrees with Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("[0-9]*.py"):
        for kind, rev in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(rev)
    heads = revisions - parents
    if len(heads) != 1:
        raise StoreError(f"Keel's migrations have {len(heads)} heads ({sorted(heads)}); expected 1")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except sa_exc.ProgrammingError:
        return None
    except sa_exc.OperationalError as exc:
        if "no such table" in str(exc.orig):
            return None
        raise StoreError(f"metadata store: {exc.orig}") from exc


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    assert database is not None
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` under the migration lock; returns the new revision."""
    from alembic import command

    try:
        with _migration_lock(engine), engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"metadata store migration failed: {getattr(exc, 'orig', exc)}") from exc
    rev = current_revision(engine)
    assert rev is not None
    return rev


def ensure_current(engine: Engine) -> None:
    """Migrate to head once per process and engine; cheap after the first call."""
    key = str(engine.url)
    if key in _current:
        return
    with _local_lock:
        if key in _current:
            return
        if current_revision(engine) != head_revision():
            upgrade(engine)
        _current.add(key)
