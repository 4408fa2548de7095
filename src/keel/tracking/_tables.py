"""Tracking tables, declared on the shared metadata (created by the Alembic migrations)."""

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
)

from keel.db import metadata

ID = String(32)
NAME = String(250)
KEY = String(250)
VALUE = String(8000)

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("parent_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Column("heartbeat_ms", BigInteger, nullable=False),
    Column("user", NAME, nullable=False, default=""),
    Column("host", NAME, nullable=False, default=""),
    Column("pid", Integer, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("python_version", String(32), nullable=False, default=""),
    Column("packages", Text, nullable=False, default="{}"),  # JSON {name: version}
    Column("note", Text, nullable=False, default=""),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ix_runs_project_start", "project_id", "start_ms"),
    Index("ix_runs_status_heartbeat", "status", "heartbeat_ms"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", VALUE, nullable=False),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", VALUE, nullable=False),
    Index("ix_tags_key_value", "key", "value"),
)

# Every logged point; nothing is deduplicated, so the count is exactly what was logged. On
# PostgreSQL migration 0008 drops the run_id foreign key (its per-row check doubled the cost of
# a COPY; log_batch checks the run under a share lock and a hard delete removes the metrics), so
# the declaration below holds for SQLite only.
metrics = Table(
    "metrics",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("value", Float, nullable=True),  # NULL is NaN (SQLite cannot store NaN)
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

# One row per (run, key): the point with the greatest (step, timestamp), kept for search.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float, nullable=True),  # NULL is NaN (SQLite cannot store NaN)
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# Datasets (and later other things) a run read or wrote; ``ref`` is e.g. ``churn@v3``.
run_io = Table(
    "run_io",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("direction", String(8), primary_key=True),  # "input" | "output"
    Column("kind", String(32), primary_key=True),  # "dataset", ...
    Column("ref", VALUE, primary_key=True),
    Column("digest", String(80), nullable=True),
    Index("ix_run_io_kind_ref", "kind", "ref"),
)

# Files a run stored; bytes live in the content-addressed artifact store under ``digest``.
run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_run_artifacts_digest", "digest"),
)
