"""The alert store on SQLite or PostgreSQL: rules, channels, alerts, events, deliveries.

Every transaction that appends events first takes one lock (a transaction-scoped advisory
lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already admits one writer), so event ids are
committed in increasing order and a subscriber polling ``id > last_seen`` never skips one. The
lock also makes a breach seen by two evaluators at once open one alert; the partial unique index
``uq_alerts_open`` guards the same rule in the schema, and the insert is an ``ON CONFLICT DO
NOTHING`` on it, so even a writer that skipped the lock could not open a second alert.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, select, text

from keel import _time
from keel.db import SqlStore
from keel.errors import AlreadyExists, Conflict, NotFound
from keel.monitoring._alert_tables import (
    alert_channels,
    alert_deliveries,
    alert_events,
    alert_rules,
    alerts,
)
from keel.monitoring._alerts_records import Alert, AlertEvent, Delivery
from keel.monitoring._alerts_rules import AlertRule
from keel.monitoring._channels import Channel
from keel.monitoring._quantities import Quantity

# Any fixed 64-bit number: it names the alert-event lock among PostgreSQL advisory locks.
_PG_EVENTS_LOCK = 0x6B65656C_616C7274
_R = TypeVar("_R", Alert, AlertEvent, Delivery)
MAX_LIST = 10_000


@dataclass(frozen=True, slots=True)
class Check:
    """One rule judged on one quantity of one result that had enough samples to judge."""

    rule: AlertRule
    quantity: str
    observed: Quantity
    breached: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """An event that was just recorded, its alert, and the deliveries to attempt
    ``(delivery id, channel name)``."""

    event: AlertEvent
    alert: Alert
    deliveries: tuple[tuple[int, str], ...]


def _lock_events(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_EVENTS_LOCK})


def _insert_open(conn: Connection, row: dict[str, Any]) -> int | None:
    """Insert an open alert; None if one is already open for the key."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(alerts)
        .values(row)
        .on_conflict_do_nothing(
            index_elements=["rule", "deployment", "quantity"],
            index_where=alerts.c.resolved_ms.is_(None),
        )
        .returning(alerts.c.id)
    )
    inserted = conn.execute(stmt).scalar()
    return None if inserted is None else int(inserted)


def _record(cls: type[_R], row: Any) -> _R:
    """The frozen record ``cls`` from a row whose columns carry its fields by name."""
    values = row._mapping
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


def _rule(row: Any) -> AlertRule:
    return AlertRule(
        name=row.name,
        quantity=row.quantity,
        operator=row.operator,
        threshold=row.threshold,
        deployment=row.deployment,
        window_ms=row.window_ms,
        min_samples=row.min_samples,
        severity=row.severity,
        channels=tuple(json.loads(row.channels)),
        cooldown_ms=row.cooldown_ms,
        enabled=bool(row.enabled),
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


def _channel(row: Any) -> Channel:
    return Channel(row.name, row.kind, json.loads(row.config), row.created_ms, row.updated_ms)


class SqlAlertStore(SqlStore):
    """Alerts on SQLite or PostgreSQL."""

    # -- rules -------------------------------------------------------------------------------

    def put_rule(self, rule: AlertRule, *, replace: bool = False) -> AlertRule:
        """Store ``rule``; ``AlreadyExists`` if the name is taken and not ``replace``."""
        now = _time.now_ms()
        values = {
            "deployment": rule.deployment,
            "quantity": rule.quantity,
            "operator": rule.operator,
            "threshold": rule.threshold,
            "window_ms": rule.window_ms,
            "min_samples": rule.min_samples,
            "severity": rule.severity,
            "channels": json.dumps(list(rule.channels)),
            "cooldown_ms": rule.cooldown_ms,
            "enabled": rule.enabled,
            "updated_ms": now,
        }

        def work(conn: Connection) -> AlertRule:
            found = conn.execute(
                select(alert_rules.c.name).where(alert_rules.c.name == rule.name)
            ).first()
            if found is None:
                conn.execute(alert_rules.insert().values(name=rule.name, created_ms=now, **values))
            elif replace:
                conn.execute(
                    alert_rules.update().where(alert_rules.c.name == rule.name).values(**values)
                )
            else:
                raise AlreadyExists(
                    f"alert rule {rule.name!r} exists; remove it first or pass replace"
                )
            return _rule(
                conn.execute(select(alert_rules).where(alert_rules.c.name == rule.name)).one()
            )

        return self._write(work)

    def get_rule(self, name: str) -> AlertRule:
        def work(conn: Connection) -> AlertRule:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == name)).first()
            if row is None:
                raise NotFound(f"no alert rule {name!r}; see `keel alerts rules ls`")
            return _rule(row)

        return self._read(work)

    def list_rules(self) -> list[AlertRule]:
        return self._read(
            lambda conn: [
                _rule(r) for r in conn.execute(select(alert_rules).order_by(alert_rules.c.name))
            ]
        )

    def set_rule_enabled(self, name: str, enabled: bool) -> AlertRule:
        def work(conn: Connection) -> None:
            done = conn.execute(
                alert_rules.update()
                .where(alert_rules.c.name == name)
                .values(enabled=enabled, updated_ms=_time.now_ms())
            )
            if done.rowcount == 0:
                raise NotFound(f"no alert rule {name!r}; see `keel alerts rules ls`")

        self._write(work)
        return self.get_rule(name)

    def remove_rule(self, name: str) -> int:
        """Delete the rule and resolve its unresolved alerts (event ``resolved``, note ``rule
        removed``, not notified); returns how many alerts it closed."""
        now = _time.now_ms()

        def work(conn: Connection) -> int:
            _lock_events(conn)
            done = conn.execute(alert_rules.delete().where(alert_rules.c.name == name))
            if done.rowcount == 0:
                raise NotFound(f"no alert rule {name!r}; see `keel alerts rules ls`")
            closed = conn.execute(
                alerts.update()
                .where(alerts.c.rule == name, alerts.c.resolved_ms.is_(None))
                .values(state="resolved", resolved_ms=now, updated_ms=now)
                .returning(*alerts.c)
            ).all()
            for row in closed:
                self._append_event(conn, _record(Alert, row), "resolved", now, note="rule removed")
            return len(closed)

        return self._write(work)

    # -- channels ----------------------------------------------------------------------------

    def put_channel(self, channel: Channel, *, replace: bool = False) -> Channel:
        now = _time.now_ms()
        config = json.dumps(dict(channel.config), sort_keys=True)

        def work(conn: Connection) -> Channel:
            where = alert_channels.c.name == channel.name
            found = conn.execute(select(alert_channels.c.name).where(where)).first()
            if found is None:
                conn.execute(
                    alert_channels.insert().values(
                        name=channel.name,
                        kind=channel.kind,
                        config=config,
                        created_ms=now,
                        updated_ms=now,
                    )
                )
            elif replace:
                conn.execute(
                    alert_channels.update()
                    .where(where)
                    .values(kind=channel.kind, config=config, updated_ms=now)
                )
            else:
                raise AlreadyExists(
                    f"alert channel {channel.name!r} exists; remove it first or pass replace"
                )
            return _channel(conn.execute(select(alert_channels).where(where)).one())

        return self._write(work)

    def get_channel(self, name: str) -> Channel:
        def work(conn: Connection) -> Channel:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).first()
            if row is None:
                raise NotFound(f"no alert channel {name!r}; see `keel alerts channels ls`")
            return _channel(row)

        return self._read(work)

    def list_channels(self) -> list[Channel]:
        return self._read(
            lambda conn: [
                _channel(r)
                for r in conn.execute(select(alert_channels).order_by(alert_channels.c.name))
            ]
        )

    def remove_channel(self, name: str) -> None:
        """Delete a channel no stored rule names (``Conflict`` names the rules that do)."""

        def work(conn: Connection) -> None:
            users = [
                r.name
                for r in conn.execute(select(alert_rules.c.name, alert_rules.c.channels))
                if name in json.loads(r.channels)
            ]
            if users:
                raise Conflict(
                    f"alert channel {name!r} is used by rule(s) {', '.join(sorted(users))}; "
                    "change or remove them first"
                )
            done = conn.execute(alert_channels.delete().where(alert_channels.c.name == name))
            if done.rowcount == 0:
                raise NotFound(f"no alert channel {name!r}; see `keel alerts channels ls`")

        self._write(work)

    # -- alerts ------------------------------------------------------------------------------

    def _append_event(
        self,
        conn: Connection,
        alert: Alert,
        kind: str,
        at_ms: int,
        *,
        actor: str | None = None,
        note: str | None = None,
        channels: Sequence[str] = (),
    ) -> Notice:
        now = _time.now_ms()
        row: dict[str, Any] = {
            "alert_id": alert.id,
            "kind": kind,
            "rule": alert.rule,
            "deployment": alert.deployment,
            "quantity": alert.quantity,
            "severity": alert.severity,
            "value": alert.value,
            "n": alert.n,
            "result_id": alert.result_id,
            "at_ms": at_ms,
            "created_ms": now,
            "actor": actor,
            "note": note,
        }
        event_id = conn.execute(alert_events.insert().values(row).returning(alert_events.c.id))
        event = AlertEvent(id=int(event_id.scalar_one()), **row)
        deliveries = []
        for channel in channels:
            delivery = conn.execute(
                alert_deliveries.insert()
                .values(
                    event_id=event.id,
                    channel=channel,
                    status="pending",
                    attempts=0,
                    created_ms=now,
                )
                .returning(alert_deliveries.c.id)
            ).scalar_one()
            deliveries.append((int(delivery), channel))
        return Notice(event, alert, tuple(deliveries))

    def apply(
        self, deployment: str, checks: Sequence[Check], *, result_id: str | None, at_ms: int
    ) -> list[Notice]:
        """Move the alerts of ``checks`` through their states in one transaction; returns the
        events it recorded (with the deliveries to attempt)."""

        def work(conn: Connection) -> list[Notice]:
            _lock_events(conn)
            notices: list[Notice] = []
            for check in checks:
                notice = self._apply_one(conn, deployment, check, result_id, at_ms)
                if notice is not None:
                    notices.append(notice)
            return notices

        return self._write(work) if checks else []

    def _apply_one(
        self,
        conn: Connection,
        deployment: str,
        check: Check,
        result_id: str | None,
        at_ms: int,
    ) -> Notice | None:
        rule = check.rule
        key = (
            alerts.c.rule == rule.name,
            alerts.c.deployment == deployment,
            alerts.c.quantity == check.quantity,
            alerts.c.resolved_ms.is_(None),
        )
        seen = {"value": check.observed.value, "n": check.observed.n, "result_id": result_id}
        if not check.breached:
            row = conn.execute(
                alerts.update()
                .where(*key)
                .values(state="resolved", resolved_ms=at_ms, updated_ms=at_ms, **seen)
                .returning(*alerts.c)
            ).first()
            if row is None:
                return None
            return self._append_event(
                conn, _record(Alert, row), "resolved", at_ms, channels=rule.channels
            )
        opened = _insert_open(
            conn,
            {
                "rule": rule.name,
                "deployment": deployment,
                "quantity": check.quantity,
                "state": "open",
                "severity": rule.severity,
                "operator": rule.operator,
                "threshold": rule.threshold,
                "window_ms": rule.window_ms,
                "opened_ms": at_ms,
                "updated_ms": at_ms,
                "notified_ms": at_ms,
                **seen,
            },
        )
        if opened is not None:
            row = conn.execute(select(alerts).where(alerts.c.id == opened)).one()
            return self._append_event(
                conn, _record(Alert, row), "fired", at_ms, channels=rule.channels
            )
        # Still firing: record the value; notify again only once the cooldown has passed (the
        # condition sits in the UPDATE, so two evaluators cannot both re-notify).
        conn.execute(alerts.update().where(*key).values(updated_ms=at_ms, **seen))
        row = conn.execute(
            alerts.update()
            .where(
                *key,
                alerts.c.state == "open",
                alerts.c.notified_ms + rule.cooldown_ms <= at_ms,
            )
            .values(notified_ms=at_ms)
            .returning(*alerts.c)
        ).first()
        if row is None:
            return None
        return self._append_event(
            conn, _record(Alert, row), "repeated", at_ms, channels=rule.channels
        )

    def ack(self, alert_id: int, *, actor: str, note: str | None = None) -> AlertEvent:
        """Acknowledge an open alert: it stays open, silenced, until it resolves."""
        now = _time.now_ms()

        def work(conn: Connection) -> AlertEvent:
            _lock_events(conn)
            row = conn.execute(
                alerts.update()
                .where(alerts.c.id == alert_id, alerts.c.state == "open")
                .values(state="acked", acked_ms=now, acked_by=actor, ack_note=note, updated_ms=now)
                .returning(*alerts.c)
            ).first()
            if row is None:
                current = conn.execute(
                    select(alerts.c.state).where(alerts.c.id == alert_id)
                ).first()
                if current is None:
                    raise NotFound(f"no alert {alert_id}; see `keel alerts ls`")
                raise Conflict(f"alert {alert_id} is {current.state}; only open alerts are acked")
            return self._append_event(
                conn, _record(Alert, row), "acked", now, actor=actor, note=note
            ).event

        return self._write(work)

    def get_alert(self, alert_id: int) -> Alert:
        def work(conn: Connection) -> Alert:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"no alert {alert_id}; see `keel alerts ls`")
            return _record(Alert, row)

        return self._read(work)

    def list_alerts(
        self,
        *,
        state: str | None = None,
        deployment: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts, newest first."""
        query = select(alerts).order_by(alerts.c.id.desc()).limit(min(limit, MAX_LIST))
        if state is not None:
            query = query.where(alerts.c.state == state)
        if deployment is not None:
            query = query.where(alerts.c.deployment == deployment)
        return self._read(lambda conn: [_record(Alert, r) for r in conn.execute(query)])

    def list_events(
        self,
        *,
        since_id: int = 0,
        limit: int = 100,
        deployment: str | None = None,
        alert_id: int | None = None,
    ) -> list[AlertEvent]:
        """Events with ``id > since_id``, oldest first (the order a subscriber consumes)."""
        query = (
            select(alert_events)
            .where(alert_events.c.id > since_id)
            .order_by(alert_events.c.id)
            .limit(min(limit, MAX_LIST))
        )
        if deployment is not None:
            query = query.where(alert_events.c.deployment == deployment)
        if alert_id is not None:
            query = query.where(alert_events.c.alert_id == alert_id)
        return self._read(lambda conn: [_record(AlertEvent, r) for r in conn.execute(query)])

    # -- deliveries --------------------------------------------------------------------------

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        ok: bool,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> None:
        values: dict[str, Any] = {
            "status": "delivered" if ok else "failed",
            "attempts": alert_deliveries.c.attempts + attempts,  # redeliveries add up
            "http_status": http_status,
            "error": None if error is None else error[:2000],
            "finished_ms": _time.now_ms(),
        }
        self._write(
            lambda conn: conn.execute(
                alert_deliveries.update()
                .where(alert_deliveries.c.id == delivery_id)
                .values(**values)
            )
        )

    def list_deliveries(
        self, *, event_id: int | None = None, alert_id: int | None = None
    ) -> list[Delivery]:
        query = select(alert_deliveries).order_by(alert_deliveries.c.id)
        if event_id is not None:
            query = query.where(alert_deliveries.c.event_id == event_id)
        if alert_id is not None:
            query = query.where(
                alert_deliveries.c.event_id.in_(
                    select(alert_events.c.id).where(alert_events.c.alert_id == alert_id)
                )
            )
        return self._read(lambda conn: [_record(Delivery, r) for r in conn.execute(query)])
