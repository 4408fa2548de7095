"""Model registry tables, declared on the shared metadata (created by migration 0003)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
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
ID = BigInteger().with_variant(Integer, "sqlite")

# ``last_version`` is the counter: bumping it with an UPDATE locks the model's row until
# commit, so concurrent registrations of one model get consecutive numbers on both dialects.
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("signature", Text, nullable=True),  # JSON
    Column("input_example", Text, nullable=True),
    Column("environment", Text, nullable=False, default="{}"),  # JSON
    Column("size", BigInteger, nullable=False, default=0),
    Column("latency_ms", Float, nullable=True),
    Column("options", Text, nullable=False, default="{}"),  # JSON
    Column("requires_trust", Boolean, nullable=False, default=False),
    Column("trusted", Boolean, nullable=False, default=False),
    Column("trust_reason", Text, nullable=False, default=""),
    Column("run_id", String(64), nullable=True),
    Column("source", Text, nullable=False, default=""),
    Column("datasets", Text, nullable=False, default="[]"),  # JSON
    Column("git_commit", String(64), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_id", ID, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value", Text, nullable=False),
)

model_files = Table(
    "model_files",
    metadata,
    Column("version_id", ID, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    # Migration 0011: the server's object read check looks versions up by digest.
    Index("ix_model_files_digest", "digest"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "name", NAME, ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("alias", NAME, primary_key=True),
    Column("version", Integer, nullable=False),
)
