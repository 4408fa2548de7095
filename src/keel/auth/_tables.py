"""Auth tables, declared on the shared metadata (created by migration 0004).

Secrets never reach these tables: passwords as argon2id hashes, session cookies and API tokens
as SHA-256 digests. The audit log's chain head lives in its own one-row table, so a truncated
tail is detectable (the head still counts the removed records).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from keel.db import metadata

# BIGINT on PostgreSQL; INTEGER on SQLite, the one spelling that aliases the autoincrementing
# rowid.
ID = BigInteger().with_variant(Integer(), "sqlite")
USERNAME = String(64)
PROJECT = String(250)
DIGEST = String(64)  # SHA-256 as hex

users = Table(
    "auth_users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("username", USERNAME, nullable=False),
    Column("username_key", USERNAME, nullable=False, unique=True),  # NFC + casefold
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("password_changed_ms", BigInteger, nullable=False),
    Column("last_login_ms", BigInteger, nullable=True),
)

sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("secret_hash", DIGEST, nullable=False, unique=True),
    Column("user_id", ID, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    # Stored as is: a CSRF token is worthless without the session cookie it belongs to.
    Column("csrf_token", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_auth_sessions_user_id", "user_id"),
)

tokens = Table(
    "auth_tokens",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("lookup", String(16), nullable=False, unique=True),
    Column("secret_hash", DIGEST, nullable=False),
    Column("user_id", ID, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", Integer, nullable=False),
    Column("projects", Text, nullable=True),  # JSON list of project names; NULL = unscoped
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("last_used_ms", BigInteger, nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
    Index("ix_auth_tokens_user_id", "user_id"),
)

grants = Table(
    "auth_grants",
    metadata,
    Column("project", PROJECT, primary_key=True),
    Column(
        "user_id",
        ID,
        ForeignKey("auth_users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_auth_grants_user_id", "user_id"),
)

# Failed-login counters, one row per (scope, key): scope "user" keys by the username's
# canonical form, "addr" by the client address. In the database so every server process
# shares them.
login_failures = Table(
    "auth_login_failures",
    metadata,
    Column("scope", String(8), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("window_start_ms", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Ids are handed out by the chain head (1, 2, 3 ...), so a gap is itself evidence.
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("actor", USERNAME, nullable=True),
    Column("action", String(100), nullable=False),
    Column("resource", String(1000), nullable=False),
    Column("address", String(100), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON object
    Column("hash", DIGEST, nullable=False),
    Index("ix_audit_log_ts_ms", "ts_ms"),
    Index("ix_audit_log_actor", "actor", "ts_ms"),
    Index("ix_audit_log_action", "action", "ts_ms"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("last_id", BigInteger, nullable=False),
    Column("last_hash", DIGEST, nullable=False),
    Column("count", BigInteger, nullable=False),
)
