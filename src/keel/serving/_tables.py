"""Serving tables, declared on the shared metadata (created by migration 0007; the feedback
table it also creates is declared by ``keel.monitoring._tables``, which reads it).

Deployments refer to model versions by (model, version) rather than by a foreign key to the
registry's tables: the history must outlive a deleted version as evidence of what was served.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, String, Table, Text

from keel.db import metadata

NAME = String(250)

serving_deployments = Table(
    "serving_deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("model", NAME, nullable=False),
    Column("champion", Integer, nullable=False),
    Column("challenger", Integer, nullable=True),
    Column("mode", String(16), nullable=False),
    Column("percent", Float, nullable=False),
    Column("sticky_key", NAME, nullable=True),
    Column("settings", Text, nullable=False),  # JSON DeploymentSettings.to_dict()
    Column("revision", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", NAME, nullable=False),
)

serving_deployment_history = Table(
    "serving_deployment_history",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("actor", NAME, nullable=False),
    Column("action", String(16), nullable=False),  # create | set
    Column("changes", Text, nullable=False),  # JSON {field: [old, new]}
    Column("config", Text, nullable=False),  # JSON snapshot after the change
    Column("created_ms", BigInteger, nullable=False),
)
