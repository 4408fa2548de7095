"""Model release tables, declared on the shared metadata (created by migration 0006).

They refer to model versions by (name, version) rather than by a foreign key to the registry's
tables, so a release record outlives a deleted version as evidence of what was decided.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from keel.db import metadata

NAME = String(250)
ID = String(32)

model_evaluations = Table(
    "model_evaluations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("dataset", NAME, nullable=False),
    Column("dataset_digest", String(80), nullable=True),
    Column("target", NAME, nullable=False),
    Column("task", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("metrics", Text, nullable=False),  # JSON {metric: value}
    Column("details", Text, nullable=False),  # JSON: classes, confusion, calibration, slices …
    Column("run_id", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_model_evaluations_name_version", "name", "version"),
)

model_decisions = Table(
    "model_decisions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", NAME, nullable=False),
    Column("action", String(16), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("moved", Boolean, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("override_reason", Text, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("dataset", NAME, nullable=True),
    Column("evaluation_id", ID, nullable=True),
    Column("source", Text, nullable=False),
    Column("gates", Text, nullable=False),  # JSON [GateResult.to_dict(), ...]
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_model_decisions_name_version", "name", "version"),
)

model_approvals = Table(
    "model_approvals",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("user", NAME, primary_key=True),
    Column("comment", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

model_card_fields = Table(
    "model_card_fields",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
