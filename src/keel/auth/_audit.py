"""The audit log: append-only and hash-chained.

Record ``n`` stores ``hash_n = SHA-256(hash_{n-1} || canonical_json(record_n))`` with
``hash_0`` = 64 zeros. Canonical JSON is the record's fields (id, ts_ms, actor, action,
resource, address, outcome, detail) with sorted keys, no spaces, UTF-8. Editing a record changes
its hash; deleting one leaves a gap in the ids and breaks the next hash; removing the tail leaves
the separate head row (last id, last hash, count) pointing past the end.

Appends lock the head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transactions
begin with ``BEGIN IMMEDIATE`` and so already hold the database's one write lock), then insert
the next id and move the head, all in the caller's transaction: concurrent appenders from any
number of threads and processes form one chain. Whoever can rewrite the whole database can
rewrite the whole chain; the head hash printed by ``keel audit verify``, kept elsewhere, anchors
it against that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from keel.auth._records import AuditRecord, AuditVerification
from keel.auth._tables import audit_head, audit_log
from keel.errors import InvalidInput, StoreError

GENESIS = "0" * 64
MAX_DETAIL = 16_384
_PAGE = 1_000
_NO_HEAD = "the audit log's head row is missing (deleted, or migration 0004 never ran)"
_LIMITS = {"action": 100, "resource": 1000, "address": 100, "outcome": 32, "actor": 64}


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def chain_hash(previous: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(previous.encode("ascii") + canonical(fields)).hexdigest()


def _text(value: object, field: str, *, optional: bool = False) -> str | None:
    """A text field of a record. ``action`` and ``outcome`` are chosen by code and must fit;
    the others may carry what a client sent (a request path, an address), so they are kept
    rather than refused: control characters become ``?`` (PostgreSQL text cannot hold NUL, a
    log should not carry terminal escapes) and an overlong value is cut, marked with ``…``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and field in ("action", "outcome")):
        raise InvalidInput("must be a non-empty string", field=field)
    limit = _LIMITS[field]
    if field in ("action", "outcome") and len(value) > limit:
        raise InvalidInput(f"longer than {limit} characters", field=field)
    value = "".join(c if c.isprintable() else "?" for c in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _detail(detail: Mapping[str, object] | None) -> tuple[dict[str, Any], str]:
    if detail is None:
        return {}, "{}"
    if not isinstance(detail, Mapping):
        raise InvalidInput("must be a mapping", field="detail")
    try:
        text = canonical(dict(detail)).decode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"must be JSON-serialisable: {exc}", field="detail") from exc
    if len(text) > MAX_DETAIL:
        raise InvalidInput(f"longer than {MAX_DETAIL} characters as JSON", field="detail")
    parsed: dict[str, Any] = json.loads(text)
    return parsed, text


def append(
    conn: Connection,
    *,
    ts_ms: int,
    actor: str | None,
    action: str,
    resource: str,
    address: str | None,
    outcome: str,
    detail: Mapping[str, object] | None,
) -> AuditRecord:
    """Append one record in ``conn``'s (write) transaction; it commits with the caller's work."""
    fields: dict[str, Any] = {
        "ts_ms": ts_ms,
        "actor": _text(actor, "actor", optional=True),
        "action": _text(action, "action"),
        "resource": _text(resource, "resource"),
        "address": _text(address, "address", optional=True),
        "outcome": _text(outcome, "outcome"),
    }
    fields["detail"], detail_text = _detail(detail)
    head = conn.execute(
        select(audit_head.c.last_id, audit_head.c.last_hash, audit_head.c.count.label("n"))
        .where(audit_head.c.id == 1)
        .with_for_update()
    ).first()
    if head is None:
        raise StoreError(_NO_HEAD)
    fields["id"] = head.last_id + 1
    digest = chain_hash(head.last_hash, fields)
    conn.execute(insert(audit_log).values({**fields, "detail": detail_text, "hash": digest}))
    conn.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(last_id=fields["id"], last_hash=digest, count=head.n + 1)
    )
    return AuditRecord(hash=digest, **fields)


def _fields(row: Any) -> dict[str, Any]:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = {"unparseable": row.detail}
    return {
        "id": row.id,
        "ts_ms": row.ts_ms,
        "actor": row.actor,
        "action": row.action,
        "resource": row.resource,
        "address": row.address,
        "outcome": row.outcome,
        "detail": detail,
    }


def record(row: Any) -> AuditRecord:
    return AuditRecord(hash=row.hash, **_fields(row))


def get(conn: Connection, record_id: int) -> AuditRecord | None:
    row = conn.execute(select(audit_log).where(audit_log.c.id == record_id)).first()
    return None if row is None else record(row)


def verify(conn: Connection) -> AuditVerification:
    """Walk the chain up to the head read at the start (later appends are not judged)."""
    head = conn.execute(
        select(audit_head.c.last_id, audit_head.c.last_hash, audit_head.c.count.label("n")).where(
            audit_head.c.id == 1
        )
    ).first()
    if head is None:
        return AuditVerification(ok=False, checked=0, first_bad_id=1, reason=_NO_HEAD)
    previous, expected, checked = GENESIS, 1, 0
    while True:
        rows = conn.execute(
            select(audit_log)
            .where(audit_log.c.id >= expected, audit_log.c.id <= head.last_id)
            .order_by(audit_log.c.id)
            .limit(_PAGE)
        ).all()
        for row in rows:
            if row.id != expected:
                return AuditVerification(
                    ok=False,
                    checked=checked,
                    first_bad_id=expected,
                    reason=f"record {expected} is missing (deleted); the next one is {row.id}",
                )
            if chain_hash(previous, _fields(row)) != row.hash:
                return AuditVerification(
                    ok=False,
                    checked=checked,
                    first_bad_id=row.id,
                    reason=f"record {row.id} does not match its hash (edited, or an earlier "
                    "record was replaced)",
                )
            previous, expected, checked = row.hash, expected + 1, checked + 1
        if len(rows) < _PAGE:
            break
    if checked != head.n or expected - 1 != head.last_id or previous != head.last_hash:
        return AuditVerification(
            ok=False,
            checked=checked,
            first_bad_id=expected,
            reason=f"the log ends at record {expected - 1} but its head records "
            f"{head.n} records up to {head.last_id} (records removed from the end)",
        )
    return AuditVerification(ok=True, checked=checked, head_hash=head.last_hash)


def search(
    conn: Connection,
    *,
    user: str | None,
    resource: str | None,
    action: str | None,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
) -> list[AuditRecord]:
    """Newest first. ``user`` matches the actor ignoring case; ``resource`` and ``action``
    match exactly, or as a prefix when they end with ``*``."""
    query = select(audit_log)
    if user is not None:
        query = query.where(func.lower(audit_log.c.actor) == user.lower())
    for column, value in ((audit_log.c.resource, resource), (audit_log.c.action, action)):
        if value is None:
            continue
        if value.endswith("*"):
            stem = value[:-1]
            query = query.where(func.substr(column, 1, len(stem)) == stem)
        else:
            query = query.where(column == value)
    if since_ms is not None:
        query = query.where(audit_log.c.ts_ms >= since_ms)
    if until_ms is not None:
        query = query.where(audit_log.c.ts_ms < until_ms)
    rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)).all()
    return [record(row) for row in rows]
