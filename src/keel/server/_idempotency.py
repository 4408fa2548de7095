"""Idempotency keys: a create or batch call sent again (a client retry after a lost answer)
gets the first answer back instead of being applied twice.

A request carrying ``Idempotency-Key`` claims the pair (principal, key) by inserting a row
marked in progress, runs, and stores its answer (status and body) in the row. The same key
again with the same request (method, path and body hash) replays the stored answer; with a
different request it is refused (422, field ``Idempotency-Key``); while the first is still
running it is answered 503 with ``Retry-After``, which the client waits out and retries. A
request that failed for a transient reason (5xx) releases its claim, so the retry really runs.
Rows live in the database, so every server process and replica sees the same keys; they expire
after ``TTL_MS`` and are deleted opportunistically.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blake3 import blake3
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    select,
    update,
)
from starlette.concurrency import run_in_threadpool

from keel._time import now_ms
from keel.db import metadata, transaction
from keel.errors import InvalidInput, KeelError, StoreUnavailable
from keel.server._errors import keel_error_response, status_of
from keel.server._state import get_state

if TYPE_CHECKING:
    from keel.auth import Principal

HEADER = "Idempotency-Key"
TTL_MS = 24 * 3600 * 1000  # a day: longer than any client's retries
# A claim whose request died with its process is taken over after this long.
STALE_CLAIM_MS = 5 * 60 * 1000
IN_PROGRESS = 0
_KEY_RE = re.compile(r"[A-Za-z0-9_.:-]{8,128}")

idempotency_keys = Table(
    "server_idempotency",
    metadata,
    Column("principal", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", LargeBinary, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("principal", "key"),
    Index("ix_server_idempotency_expires_ms", "expires_ms"),
)


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer first given to a key."""

    status: int
    body: bytes


def _insert_ignore(conn: Connection) -> Any:
    """An INSERT that skips a row whose key exists (both dialects spell it ON CONFLICT)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(idempotency_keys).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(idempotency_keys).on_conflict_do_nothing()


def check_key(value: str) -> str:
    if not _KEY_RE.fullmatch(value):
        raise InvalidInput(
            "must be 8-128 characters of [A-Za-z0-9_.:-] (e.g. a UUID)", field=HEADER
        )
    return value


def request_hash(method: str, path: str, body: bytes) -> str:
    h = blake3(method.encode())
    h.update(b"\0")
    h.update(path.encode())
    h.update(b"\0")
    h.update(body)
    return str(h.hexdigest())


def claim_in(
    conn: Connection,
    principal: str,
    key: str,
    req_hash: str,
    *,
    now: int,
    answer: Stored | None = None,
) -> Stored | None:
    """Claim ``key`` inside the caller's transaction: None means go ahead; a ``Stored`` answer
    means replay it. With ``answer``, the key is recorded with that answer at once: a caller
    whose whole write is this one transaction then commits the write and its key together (or
    neither), and no claim in progress is ever visible."""
    values = {
        "request_hash": req_hash,
        "status": IN_PROGRESS if answer is None else answer.status,
        "body": None if answer is None else answer.body,
        "created_ms": now,
        "expires_ms": now + TTL_MS,
    }
    this_key = (idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
    # The common case, a new key, is one statement; a used key is then read locked.
    claimed = conn.execute(
        _insert_ignore(conn)
        .values(principal=principal, key=key, **values)
        .returning(idempotency_keys.c.key)
    ).first()
    if claimed is not None:
        return None
    row = conn.execute(
        select(
            idempotency_keys.c.request_hash,
            idempotency_keys.c.status,
            idempotency_keys.c.body,
            idempotency_keys.c.created_ms,
            idempotency_keys.c.expires_ms,
        )
        .where(*this_key)
        .with_for_update()
    ).first()
    if row is None:  # expired and deleted in between: the retry claims it afresh
        raise StoreUnavailable("the Idempotency-Key changed hands; try again")
    if row.expires_ms > now:
        if row.request_hash != req_hash:
            raise InvalidInput(
                "this key was already used for a different request; send a new key",
                field=HEADER,
            )
        if row.status != IN_PROGRESS:
            return Stored(row.status, bytes(row.body or b""))
        if now - row.created_ms < STALE_CLAIM_MS:
            raise StoreUnavailable("a request with this Idempotency-Key is still being processed")
    # Expired, or a claim abandoned by a dead process: take it over.
    conn.execute(update(idempotency_keys).where(*this_key).values(**values))
    return None


class IdempotencyStore:
    """The key table of the server's metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, principal: str, key: str, req_hash: str) -> Stored | None:
        """Claim ``key`` for this request: None means go ahead (then ``finish`` or
        ``release``); a ``Stored`` answer means replay it."""
        result = transaction(
            self._engine, lambda conn: claim_in(conn, principal, key, req_hash, now=now_ms())
        )
        if random.random() < 0.01:
            self.expire()
        return result

    def finish(self, principal: str, key: str, status: int, body: bytes) -> None:
        """Record the answer of a claimed key."""
        transaction(
            self._engine,
            lambda conn: conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
                .values(status=status, body=body)
            ),
        )

    def release(self, principal: str, key: str) -> None:
        """Give a claim up (the request failed transiently; its retry should run)."""
        transaction(
            self._engine,
            lambda conn: conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.principal == principal,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.status == IN_PROGRESS,
                )
            ),
        )

    def expire(self) -> int:
        """Delete expired keys; how many there were."""
        now = now_ms()
        result = transaction(
            self._engine,
            lambda conn: conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.expires_ms <= now)
            ),
        )
        return int(result.rowcount or 0)


_open_lock = threading.Lock()


def _store_of(request: Request) -> IdempotencyStore:
    app_state = request.app.state
    store: IdempotencyStore | None = getattr(app_state, "keel_idempotency", None)
    if store is None:
        with _open_lock:
            store = getattr(app_state, "keel_idempotency", None)
            if store is None:
                from keel.db import connect

                store = IdempotencyStore(connect(get_state(request).tracking_uri))
                app_state.keel_idempotency = store
    return store


def replay(stored: Stored) -> Response:
    """The answer first given to a key, sent again."""
    return Response(
        stored.body,
        status_code=stored.status,
        media_type="application/json" if stored.body else None,
        headers={"Idempotent-Replayed": "true"},
    )


def claim_with_answer(
    request: Request, principal: Principal, raw: bytes, answer: Stored
) -> Callable[[Connection], Stored | None] | None:
    """For a write done in ONE transaction of the server's database (a metric batch): the
    claim of the request's ``Idempotency-Key`` to run first in that transaction, recording
    ``answer`` (the write's success) with it, so a retry finds the key exactly when the write
    committed; it returns the stored answer of an earlier identical request (``replay`` it,
    write nothing). None when the request has no key. Call from a worker thread; if the write
    fails with a client error, answer through ``idempotent`` instead, which records errors."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    check_key(key)
    store = _store_of(request)
    if random.random() < 0.01:
        store.expire()
    who = f"user:{principal.user_id}"
    digest = request_hash(request.method, request.url.path, raw)
    return lambda conn: claim_in(conn, who, key, digest, now=now_ms(), answer=answer)


async def idempotent(
    request: Request, principal: Principal, raw: bytes, call: Callable[[], Response]
) -> Response:
    """Answer ``call()`` (run in a worker thread) once per ``Idempotency-Key``: a repeat of the
    request gets the recorded answer, errors included, except transient (5xx) ones."""
    key = request.headers.get(HEADER)
    if key is None:
        return await run_in_threadpool(call)
    check_key(key)
    store = _store_of(request)
    who = f"user:{principal.user_id}"
    digest = request_hash(request.method, request.url.path, raw)

    def work() -> Response:
        stored = store.claim(who, key, digest)
        if stored is not None:
            return replay(stored)
        try:
            response = call()
        except KeelError as exc:
            if status_of(exc) >= 500:
                store.release(who, key)
                raise
            response = keel_error_response(exc)
        except BaseException:
            store.release(who, key)
            raise
        store.finish(who, key, response.status_code, bytes(response.body))
        return response

    return await run_in_threadpool(work)
