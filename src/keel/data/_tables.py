"""Data tables, declared on the shared metadata (created by migration 0002)."""

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
    UniqueConstraint,
)

from keel.db import metadata

NAME = String(250)
DIGEST = String(80)

# One row per (scope, name): the last number handed out. Bumping it with an UPDATE locks the
# row, so concurrent adds of one dataset (or saves of one contract) get consecutive numbers.
data_counters = Table(
    "data_counters",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("value", Integer, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("name", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=True),
    Column("files", Integer, nullable=True),
    Column("schema", Text, nullable=False, default="[]"),  # JSON [[column, type], ...]
    Column("profile", Text, nullable=False, default="{}"),  # JSON
    Column("description", Text, nullable=False, default=""),
    Column("key", Text, nullable=False, default="[]"),  # JSON [column, ...]
    Column("source_uri", Text, nullable=True),
    Column("produced_by", String(250), nullable=True),
    Column("source_digest", DIGEST, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    UniqueConstraint("name", "version", name="uq_dataset_versions_name_version"),
    Index("ix_dataset_versions_digest", "digest"),
)

dataset_objects = Table(
    "dataset_objects",
    metadata,
    Column(
        "version_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", DIGEST, primary_key=True),
    # Migration 0011: the server's object read check looks versions up by digest.
    Index("ix_dataset_objects_digest", "digest"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("tag", NAME, primary_key=True),
    Column("version", Integer, nullable=False),
)

contracts = Table(
    "contracts",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
