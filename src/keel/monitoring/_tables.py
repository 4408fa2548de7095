"""Monitoring's tables, declared on the shared metadata.

``serving_feedback`` (created by migration 0007) holds the true labels of past predictions,
written by the serving layer and read here. It refers to predictions by (deployment,
request_id) only, because the predictions themselves live in Parquet files, not in this
database.

``monitor_results`` and ``monitor_schedules`` (migration 0009) hold the stored monitoring
results and the recurring monitors (``keel.monitoring._monitor_sql``).
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

# Stored monitoring results (migration 0009): one row per run of ``run_monitor``, kept as
# history. ``quantities`` is the flat ``name -> {value, n}`` map (charted over time and read by
# the Prometheus export without parsing the whole result); ``result`` the full JSON document.
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),  # the run's "now"
    Column("window_start_ms", BigInteger, nullable=True),
    Column("window_end_ms", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),  # "ok" | "error"
    Column("summary", Text, nullable=False),  # JSON
    Column("quantities", Text, nullable=False),  # JSON
    Column("result", Text, nullable=False),  # JSON
    Column("error", Text, nullable=True),
    Index("ix_monitor_results_deployment_created_ms", "deployment", "created_ms"),
)

# Recurring monitors (migration 0009): one per deployment. A worker claims a due row by an
# UPDATE that sets its lease only if ``next_due_ms`` and the lease are still what it read.
monitor_schedules = Table(
    "monitor_schedules",
    metadata,
    Column("deployment", String(128), primary_key=True),
    Column("every_ms", BigInteger, nullable=False),
    Column("options", Text, nullable=False),  # JSON: window, reference, thresholds, ...
    Column("next_due_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("runs", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_run_ms", BigInteger, nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_result_id", String(32), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_monitor_schedules_next_due_ms", "next_due_ms"),
)
