"""Engines and transactions: SQLite pragmas, retries of transient failures, and errors that come
out as ``keel.errors`` types, never SQLAlchemy's."""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from keel.db import connect, transaction
from keel.db._engine import is_transient
from keel.errors import Conflict, StoreError, StoreUnavailable
from keel.tracking._sql import SqlTrackingStore


def test_sqlite_pragmas_are_in_force(sqlite_url: str) -> None:
    engine = connect(sqlite_url)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": 30_000,
        "foreign_keys": 1,
    }


def test_sqlite_write_waits_out_another_writer(sqlite_url: str) -> None:
    store = SqlTrackingStore(sqlite_url)
    run = store.create_run(project="p")
    holder = sqlite3.connect(
        sqlite_url.split(":///", 1)[1], isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    release = threading.Timer(0.3, holder.execute, args=("COMMIT",))
    release.start()
    start = time.perf_counter()
    store.log_batch(run.id, params={"a": "1"})
    waited = time.perf_counter() - start
    release.join()
    holder.close()
    assert waited >= 0.25
    assert store.get_run(run.id).params == {"a": "1"}


def _locked(message: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT …", {}, sqlite3.OperationalError(message))


def test_transient_failures_are_retried_whole(db_url: str) -> None:
    engine = connect(db_url)
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(1)
        conn.execute(
            text("INSERT INTO projects (id, name, description, created_ms) VALUES (:i, :n, '', 1)"),
            {"i": f"id{len(attempts)}", "n": "p"},
        )
        if len(attempts) < 3:
            raise _locked("database is locked")  # nothing of this attempt may survive
        return conn.execute(text("SELECT count(*) FROM projects")).scalar_one()

    assert transaction(engine, work) == 1
    assert len(attempts) == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM projects")).scalars().all() == ["id3"]


def test_postgres_lock_timeout_is_retried(pg_url: str) -> None:
    store = SqlTrackingStore(pg_url)
    run = store.create_run(project="p")
    engine = connect(pg_url)
    holder = engine.connect()
    holder.execute(text("SELECT id FROM runs WHERE id = :i FOR UPDATE"), {"i": run.id})
    release = threading.Timer(0.3, holder.commit)
    release.start()
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(text("SET LOCAL lock_timeout = '50ms'"))
        conn.execute(text("UPDATE runs SET name = 'renamed' WHERE id = :i"), {"i": run.id})

    try:
        transaction(engine, work)
    finally:
        release.join()
        holder.close()
    assert len(attempts) >= 2  # the first attempt hit the lock (55P03) and was retried
    assert store.get_run(run.id).name == "renamed"


def test_transient_classification() -> None:
    class PgError(Exception):
        sqlstate = "40001"

    assert is_transient(_locked("database is locked"))
    assert is_transient(sa_exc.OperationalError("x", {}, PgError()))
    assert not is_transient(_locked("no such table: x"))
    assert not is_transient(ValueError("x"))


def test_non_transient_errors_are_store_errors(db_url: str) -> None:
    engine = connect(db_url)
    with pytest.raises(StoreError) as info:
        transaction(engine, lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    assert not isinstance(info.value, StoreUnavailable)
    assert isinstance(info.value.__cause__, sa_exc.SQLAlchemyError)
    assert "no_such_table" in str(info.value)


def test_keel_errors_from_work_pass_through_and_roll_back(db_url: str) -> None:
    engine = connect(db_url)

    def work(conn: Connection) -> None:
        conn.execute(
            text(
                "INSERT INTO projects (id, name, description, created_ms) VALUES ('x', 'x', '', 1)"
            )
        )
        raise Conflict("no")

    with pytest.raises(Conflict):
        transaction(engine, work)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM projects")).scalar() == 0


def test_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        SqlTrackingStore("postgresql://postgres@127.0.0.1:1/nowhere")
    assert isinstance(info.value.__cause__, sa_exc.SQLAlchemyError | psycopg.Error)
