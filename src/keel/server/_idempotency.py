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
from dataclasses import dataclass

from blake3 import blake3
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
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from keel._time import now_ms
from keel.db import metadata, transaction
from keel.errors import InvalidInput, StoreUnavailable

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


class IdempotencyStore:
    """The key table of the server's metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, principal: str, key: str, req_hash: str) -> Stored | None:
        """Claim ``key`` for this request: None means go ahead (then ``finish`` or
        ``release``); a ``Stored`` answer means replay it."""
        now = now_ms()

        def work(conn: Connection) -> Stored | None:
            row = conn.execute(
                select(
                    idempotency_keys.c.request_hash,
                    idempotency_keys.c.status,
                    idempotency_keys.c.body,
                    idempotency_keys.c.created_ms,
                    idempotency_keys.c.expires_ms,
                )
                .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
                .with_for_update()
            ).first()
            if row is not None and row.expires_ms > now:
                if row.request_hash != req_hash:
                    raise InvalidInput(
                        "this key was already used for a different request; send a new key",
                        field=HEADER,
                    )
                if row.status != IN_PROGRESS:
                    return Stored(row.status, bytes(row.body or b""))
                if now - row.created_ms < STALE_CLAIM_MS:
                    raise StoreUnavailable(
                        "a request with this Idempotency-Key is still being processed"
                    )
            values = {
                "request_hash": req_hash,
                "status": IN_PROGRESS,
                "body": None,
                "created_ms": now,
                "expires_ms": now + TTL_MS,
            }
            if row is None:
                conn.execute(
                    insert(idempotency_keys).values(principal=principal, key=key, **values)
                )
            else:  # expired, or a claim abandoned by a dead process
                conn.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
                    .values(**values)
                )
            return None

        try:
            result = transaction(self._engine, work)
        except StoreUnavailable:
            raise
        except sa_exc.IntegrityError as exc:  # pragma: no cover - translated below normally
            raise StoreUnavailable("a concurrent request claimed this key") from exc
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
