"""Alerting's tables, declared on the shared metadata (created by migration 0010).

* ``alert_channels``: where notifications go (webhook, Slack, email); the configuration is JSON
  and never holds a secret, only the names of the environment variables that do.
* ``alert_rules``: a threshold on a monitored quantity (``keel.monitoring._quantities``).
* ``alerts``: one row per incident of (rule, deployment, quantity). The partial unique index
  ``uq_alerts_open`` allows one unresolved row per key, so two evaluators racing on the same
  breach cannot open two alerts: the loser's insert conflicts and it updates the winner's row.
* ``alert_events``: the append-only history (fired, repeated, acked, resolved). Its ids grow in
  commit order (writers take one lock, see ``_alert_sql``), which is what lets a subscriber poll
  ``id > last seen`` without missing an event.
* ``alert_deliveries``: one row per (event, channel): attempts, status and the error.
"""

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
    text,
)

from keel.db import metadata

NAME = 128  # rule and channel names, and deployments (a log path segment)
QUANTITY = 250

alert_channels = Table(
    "alert_channels",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("kind", String(16), nullable=False),  # webhook | slack | email
    Column("config", Text, nullable=False),  # JSON; secrets are env var names only
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("deployment", String(NAME), nullable=False),  # or "*"
    Column("quantity", String(QUANTITY), nullable=False),  # exact name or glob
    Column("operator", String(2), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("min_samples", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("channels", Text, nullable=False),  # JSON list of channel names
    Column("cooldown_ms", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(NAME), nullable=False),
    Column("deployment", String(NAME), nullable=False),
    Column("quantity", String(QUANTITY), nullable=False),
    Column("state", String(16), nullable=False),  # open | acked | resolved
    Column("severity", String(16), nullable=False),
    Column("operator", String(2), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("window_ms", BigInteger, nullable=False),
    Column("value", Float, nullable=True),  # the latest value seen
    Column("n", Integer, nullable=False),
    Column("result_id", String(128), nullable=True),  # the monitoring result seen last
    Column("opened_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("notified_ms", BigInteger, nullable=False),  # last (re-)notification, for cooldown
    Column("acked_ms", BigInteger, nullable=True),
    Column("acked_by", String(250), nullable=True),
    Column("ack_note", Text, nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Index(
        "uq_alerts_open",
        "rule",
        "deployment",
        "quantity",
        unique=True,
        sqlite_where=text("resolved_ms IS NULL"),
        postgresql_where=text("resolved_ms IS NULL"),
    ),
    Index("ix_alerts_state_opened_ms", "state", "opened_ms"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # fired | repeated | acked | resolved
    Column("rule", String(NAME), nullable=False),
    Column("deployment", String(NAME), nullable=False),
    Column("quantity", String(QUANTITY), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("n", Integer, nullable=False),
    Column("result_id", String(128), nullable=True),
    Column("at_ms", BigInteger, nullable=False),  # the result's time (acks: wall clock)
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(250), nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_alert_events_alert_id", "alert_id"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("alert_events.id"), nullable=False),
    Column("channel", String(NAME), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=True),
    Index("ix_alert_deliveries_event_id", "event_id"),
)
