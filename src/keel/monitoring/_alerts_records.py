"""What the alert store returns: alerts (incidents), their events and deliveries; frozen
records, JSON-safe through ``to_dict``.

States of an alert (one row per incident of a (rule, deployment, quantity) key)::

    open ──ack──► acked
      │             │
      └──resolve────┴──► resolved      (a new breach afterwards opens a new alert)

Events are the history a subscriber reads in id order: ``fired`` (an alert opened),
``repeated`` (still firing after the cooldown; notified again), ``acked``, ``resolved``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel import _time

STATES = ("open", "acked", "resolved")
EVENT_KINDS = ("fired", "repeated", "acked", "resolved")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class Alert:
    """One incident: the key, the rule's condition when it opened, the latest value seen."""

    id: int
    rule: str
    deployment: str
    quantity: str
    state: str
    severity: str
    operator: str
    threshold: float
    window_ms: int
    value: float | None
    n: int
    result_id: str | None
    opened_ms: int
    updated_ms: int
    notified_ms: int
    acked_ms: int | None
    acked_by: str | None
    ack_note: str | None
    resolved_ms: int | None

    @property
    def condition(self) -> str:
        return f"{self.quantity} {self.operator} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "deployment": self.deployment,
            "quantity": self.quantity,
            "state": self.state,
            "severity": self.severity,
            "operator": self.operator,
            "threshold": self.threshold,
            "window_ms": self.window_ms,
            "value": self.value,
            "n": self.n,
            "result_id": self.result_id,
            "opened_ms": self.opened_ms,
            "opened": _time.format_ms(self.opened_ms),
            "updated_ms": self.updated_ms,
            "notified_ms": self.notified_ms,
            "acked_ms": self.acked_ms,
            "acked_by": self.acked_by,
            "ack_note": self.ack_note,
            "resolved_ms": self.resolved_ms,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One entry of the alert history; ``id`` grows in commit order."""

    id: int
    alert_id: int
    kind: str
    rule: str
    deployment: str
    quantity: str
    severity: str
    value: float | None
    n: int
    result_id: str | None
    at_ms: int
    created_ms: int
    actor: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "rule": self.rule,
            "deployment": self.deployment,
            "quantity": self.quantity,
            "severity": self.severity,
            "value": self.value,
            "n": self.n,
            "result_id": self.result_id,
            "at_ms": self.at_ms,
            "at": _time.format_ms(self.at_ms),
            "created_ms": self.created_ms,
            "actor": self.actor,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification of one event on one channel."""

    id: int
    event_id: int
    channel: str
    status: str
    attempts: int
    http_status: int | None
    error: str | None
    created_ms: int
    finished_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "error": self.error,
            "created_ms": self.created_ms,
            "finished_ms": self.finished_ms,
        }
