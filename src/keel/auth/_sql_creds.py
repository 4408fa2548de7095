"""Login sessions and API tokens: units of work run inside one ``AuthStore`` transaction.

Both secrets are 256 random bits and are stored only as their SHA-256. A slow password hash
(argon2) buys nothing here: it protects low-entropy secrets people choose, and guessing a
256-bit random value is infeasible at any hashing speed, while a fast hash keeps checking a
token on every request cheap. Tokens are found by a short random lookup id that is not secret
(it is also the token's visible prefix) and their digests compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel.auth._records import Principal, Role, SessionSecret, TokenInfo, User
from keel.auth._tables import sessions, tokens, users
from keel.errors import NotFound, Unauthenticated

TOKEN_PREFIX = "keel_"  # noqa: S105 - a visible marker, not a secret
_LOOKUP_HEX = 12  # 48 random bits: unique in practice; a collision draws again
LAST_USED_EVERY_MS = 60_000
_TOKEN_SHAPE = re.compile(rf"{TOKEN_PREFIX}([0-9a-f]{{{_LOOKUP_HEX}}})_[A-Za-z0-9_-]{{20,100}}")
_SESSION_BAD = "session expired or unknown; log in again"
_TOKEN_BAD = "invalid, expired or revoked API token"  # noqa: S105 - a message


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# -- sessions ---------------------------------------------------------------------------------


def new_session(conn: Connection, user_id: int, *, now_ms: int, ttl_ms: int) -> SessionSecret:
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    # Expired sessions of every user go here, so the table holds only live ones.
    conn.execute(delete(sessions).where(sessions.c.expires_ms <= now_ms))
    conn.execute(
        insert(sessions).values(
            secret_hash=digest(cookie),
            user_id=user_id,
            csrf_token=csrf,
            created_ms=now_ms,
            expires_ms=now_ms + ttl_ms,
        )
    )
    return SessionSecret(cookie_value=cookie, csrf_token=csrf, expires_ms=now_ms + ttl_ms)


def find_session(conn: Connection, cookie: str, *, now_ms: int) -> tuple[Principal, str]:
    row = conn.execute(
        select(
            sessions.c.csrf_token,
            sessions.c.expires_ms,
            users.c.id,
            users.c.username,
            users.c.is_admin,
            users.c.disabled,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.secret_hash == digest(cookie))
    ).first()
    if row is None or row.disabled or row.expires_ms <= now_ms:
        raise Unauthenticated(_SESSION_BAD)
    principal = Principal(
        user_id=row.id, username=row.username, is_admin=bool(row.is_admin), via="session"
    )
    return principal, row.csrf_token


def drop_session(conn: Connection, cookie: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.secret_hash == digest(cookie)))


# -- tokens -----------------------------------------------------------------------------------

_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.lookup,
    tokens.c.name,
    tokens.c.role,
    tokens.c.projects,
    tokens.c.created_ms,
    tokens.c.expires_ms,
    tokens.c.last_used_ms,
    tokens.c.revoked_ms,
    users.c.username,
)


def token_record(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        username=row.username,
        name=row.name,
        prefix=TOKEN_PREFIX + row.lookup,
        role=Role(row.role),
        projects=None if row.projects is None else tuple(json.loads(row.projects)),
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        last_used_ms=row.last_used_ms,
        revoked_ms=row.revoked_ms,
    )


def new_token(
    conn: Connection,
    user: User,
    *,
    name: str,
    role: Role,
    projects: tuple[str, ...] | None,
    now_ms: int,
    expires_ms: int | None,
) -> tuple[str, TokenInfo]:
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    while True:
        lookup = secrets.token_hex(_LOOKUP_HEX // 2)
        plaintext = f"{TOKEN_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
        token_id = conn.execute(
            dialect_insert(tokens)
            .values(
                lookup=lookup,
                secret_hash=digest(plaintext),
                user_id=user.id,
                name=name,
                role=int(role),
                projects=None if projects is None else json.dumps(list(projects)),
                created_ms=now_ms,
                expires_ms=expires_ms,
            )
            .on_conflict_do_nothing(index_elements=["lookup"])
            .returning(tokens.c.id)
        ).scalar()
        if token_id is not None:
            break
    return plaintext, find_token(conn, token_id)


def find_token(conn: Connection, token_id: int) -> TokenInfo:
    row = conn.execute(
        select(*_TOKEN_COLUMNS)
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.id == token_id)
    ).first()
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    return token_record(row)


def list_tokens(conn: Connection, user_key: str | None) -> list[TokenInfo]:
    query = select(*_TOKEN_COLUMNS).join(users, users.c.id == tokens.c.user_id)
    if user_key is not None:
        query = query.where(users.c.username_key == user_key)
    return [token_record(row) for row in conn.execute(query.order_by(tokens.c.id)).all()]


def parse_lookup(plaintext: object) -> str:
    """The lookup id inside ``keel_<lookup>_<secret>``; ``Unauthenticated`` if malformed."""
    if not isinstance(plaintext, str) or len(plaintext) > 200:
        raise Unauthenticated(_TOKEN_BAD)
    match = _TOKEN_SHAPE.fullmatch(plaintext)
    if match is None:
        raise Unauthenticated(_TOKEN_BAD)
    return match[1]


def check_token(conn: Connection, plaintext: str, *, now_ms: int) -> tuple[Principal, bool]:
    """The token's principal, and whether its last-used time is due for an update."""
    lookup = parse_lookup(plaintext)
    row = conn.execute(
        select(
            *_TOKEN_COLUMNS,
            tokens.c.secret_hash,
            users.c.id.label("user_id"),
            users.c.is_admin,
            users.c.disabled,
        )
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.lookup == lookup)
    ).first()
    if row is None or not hmac.compare_digest(digest(plaintext), row.secret_hash):
        raise Unauthenticated(_TOKEN_BAD)
    info = token_record(row)
    if row.disabled or not info.active(now_ms):
        raise Unauthenticated(_TOKEN_BAD)
    principal = Principal(
        user_id=row.user_id,
        username=row.username,
        # A token acts as a global admin only when nothing narrows it.
        is_admin=bool(row.is_admin) and info.role is Role.ADMIN and info.projects is None,
        via="token",
        token_id=info.id,
        token_role=info.role,
        token_projects=info.projects,
    )
    due = info.last_used_ms is None or now_ms - info.last_used_ms >= LAST_USED_EVERY_MS
    return principal, due


def touch_token(conn: Connection, token_id: int, *, now_ms: int) -> None:
    # The condition makes concurrent requests of one token write at most once a minute.
    conn.execute(
        update(tokens)
        .where(
            tokens.c.id == token_id,
            or_(
                tokens.c.last_used_ms.is_(None),
                tokens.c.last_used_ms <= now_ms - LAST_USED_EVERY_MS,
            ),
        )
        .values(last_used_ms=now_ms)
    )


def set_revoked(conn: Connection, token_id: int, *, now_ms: int) -> TokenInfo:
    find_token(conn, token_id)
    conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
    return find_token(conn, token_id)
