"""Monitoring's tables, declared on the shared metadata.

``serving_feedback`` (created by migration 0007) holds the true labels of past predictions,
written by the serving layer and read here. It refers to predictions by (deployment,
request_id) only, because the predictions themselves live in Parquet files, not in this
database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from keel.db import metadata

serving_feedback = Table(
    "serving_feedback",
    metadata,
    Column("deployment", String(128), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("label", Text, nullable=False),  # JSON scalar
    Column("label_ms", BigInteger, nullable=False),  # when the label was true (``at``)
    Column("received_ms", BigInteger, nullable=False),
    Column("updates", Integer, nullable=False),  # how many labels arrived for this request
    Index("ix_serving_feedback_deployment_label_ms", "deployment", "label_ms"),
)
