"""Stored monitoring results and recurring monitors on SQLite or PostgreSQL.

Results are history, listed newest first per deployment; once stored only the alerts they
raised are attached (``attach_alerts``). Schedules are claimed
by workers with a compare-and-set ``UPDATE``: a worker reads a due row, then sets its lease
only ``WHERE next_due_ms`` is still the value it read and no live lease exists. On PostgreSQL
the second of two concurrent updates waits for the first's row lock, re-checks the condition
and changes nothing; on SQLite writers are serialised (``BEGIN IMMEDIATE``). Either way exactly
one worker gets ``rowcount == 1``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from keel.db import SqlStore
from keel.errors import NotFound
from keel.monitoring._quantities import Quantity
from keel.monitoring._tables import monitor_results, monitor_schedules

OK = "ok"
ERROR = "error"
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class StoredResult:
    """One stored run. ``result`` is the whole document (``MonitorResult.to_dict()``) when
    read with ``get`` or ``full=True``, else None."""

    id: str
    deployment: str
    created_ms: int
    window_start_ms: int | None
    window_end_ms: int | None
    status: str
    summary: dict[str, Any]
    quantities: dict[str, Quantity]
    error: str | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "deployment": self.deployment,
            "created_ms": self.created_ms,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "status": self.status,
            "summary": self.summary,
            "quantities": {k: q.to_dict() for k, q in self.quantities.items()},
            "error": self.error,
        }
        if self.result is not None:
            out["result"] = self.result
        return out


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring monitor: run every ``every_ms`` with ``options`` (window, reference, ...)."""

    deployment: str
    every_ms: int
    options: dict[str, Any]
    next_due_ms: int
    lease_owner: str | None
    lease_until_ms: int | None
    runs: int
    failures: int
    last_run_ms: int | None
    last_status: str | None
    last_error: str | None
    last_result_id: str | None
    created_ms: int
    updated_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "every_ms": self.every_ms,
            "options": self.options,
            "next_due_ms": self.next_due_ms,
            "lease_owner": self.lease_owner,
            "lease_until_ms": self.lease_until_ms,
            "runs": self.runs,
            "failures": self.failures,
            "last_run_ms": self.last_run_ms,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_result_id": self.last_result_id,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _result(row: Any, *, full: bool) -> StoredResult:
    quantities = {k: Quantity.from_dict(v) for k, v in json.loads(row.quantities).items()}
    return StoredResult(
        id=row.id,
        deployment=row.deployment,
        created_ms=row.created_ms,
        window_start_ms=row.window_start_ms,
        window_end_ms=row.window_end_ms,
        status=row.status,
        summary=json.loads(row.summary),
        quantities=quantities,
        error=row.error,
        result=json.loads(row.result) if full else None,
    )


def _schedule(row: Any) -> Schedule:
    return Schedule(
        deployment=row.deployment,
        every_ms=row.every_ms,
        options=json.loads(row.options),
        next_due_ms=row.next_due_ms,
        lease_owner=row.lease_owner,
        lease_until_ms=row.lease_until_ms,
        runs=row.runs,
        failures=row.failures,
        last_run_ms=row.last_run_ms,
        last_status=row.last_status,
        last_error=row.last_error,
        last_result_id=row.last_result_id,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


_LIGHT = [c for c in monitor_results.c if c.name != "result"]


def _free(now_ms: int) -> Any:
    """No lease, or an expired one (its worker died or overran)."""
    return or_(
        monitor_schedules.c.lease_until_ms.is_(None),
        monitor_schedules.c.lease_until_ms <= now_ms,
    )


class SqlMonitorStore(SqlStore):
    """Monitoring results and schedules in the metadata database."""

    # -- results ---------------------------------------------------------------------------

    def add_result(
        self,
        *,
        id: str,
        deployment: str,
        created_ms: int,
        window: tuple[int, int] | None,
        status: str,
        summary: Mapping[str, Any],
        quantities: Mapping[str, Quantity],
        result: Mapping[str, Any],
        error: str | None = None,
    ) -> StoredResult:
        """Store one run (JSON documents must be JSON-safe: no NaN)."""
        row = {
            "id": id,
            "deployment": deployment,
            "created_ms": created_ms,
            "window_start_ms": None if window is None else window[0],
            "window_end_ms": None if window is None else window[1],
            "status": status,
            "summary": _dumps(dict(summary)),
            "quantities": _dumps({k: q.to_dict() for k, q in quantities.items()}),
            "result": _dumps(dict(result)),
            "error": None if error is None else error[:MAX_ERROR_CHARS],
        }
        self._write(lambda conn: conn.execute(monitor_results.insert().values(row)))
        return self.get_result(id)

    def attach_alerts(self, id: str, alerts: list[dict[str, Any]]) -> None:
        """Record the alert events a stored run raised (evaluated after it was stored) in its
        document and summary; nothing else of a stored run ever changes."""

        def work(conn: Connection) -> None:
            row = conn.execute(
                select(monitor_results.c.summary, monitor_results.c.result).where(
                    monitor_results.c.id == id
                )
            ).first()
            if row is None:
                raise NotFound(f"no monitoring result {id!r}")
            summary, result = json.loads(row.summary), json.loads(row.result)
            summary["alerts"] = len(alerts)
            result["alerts"] = alerts
            conn.execute(
                monitor_results.update()
                .where(monitor_results.c.id == id)
                .values(summary=_dumps(summary), result=_dumps(result))
            )

        self._write(work)

    def get_result(self, id: str) -> StoredResult:
        """The whole stored run; ``NotFound`` if there is none with this id."""

        def work(conn: Connection) -> StoredResult:
            row = conn.execute(select(monitor_results).where(monitor_results.c.id == id)).first()
            if row is None:
                raise NotFound(f"no monitoring result {id!r}; list them with keel monitor history")
            return _result(row, full=True)

        return self._read(work)

    def list_results(
        self,
        deployment: str,
        *,
        limit: int = 50,
        since_ms: int | None = None,
        status: str | None = None,
        full: bool = False,
    ) -> list[StoredResult]:
        """Runs of ``deployment``, newest first (``full`` adds each whole document)."""
        columns = list(monitor_results.c) if full else _LIGHT
        query = select(*columns).where(monitor_results.c.deployment == deployment)
        if since_ms is not None:
            query = query.where(monitor_results.c.created_ms >= since_ms)
        if status is not None:
            query = query.where(monitor_results.c.status == status)
        query = query.order_by(
            monitor_results.c.created_ms.desc(), monitor_results.c.id.desc()
        ).limit(limit)
        return self._read(lambda conn: [_result(r, full=full) for r in conn.execute(query)])

    def latest_results(self, *, status: str = OK) -> list[StoredResult]:
        """The newest run with ``status`` of every deployment, by deployment name."""
        newest = (
            select(
                monitor_results.c.deployment,
                func.max(monitor_results.c.created_ms).label("created_ms"),
            )
            .where(monitor_results.c.status == status)
            .group_by(monitor_results.c.deployment)
            .subquery()
        )
        query = (
            select(*_LIGHT)
            .join(
                newest,
                and_(
                    monitor_results.c.deployment == newest.c.deployment,
                    monitor_results.c.created_ms == newest.c.created_ms,
                ),
            )
            .where(monitor_results.c.status == status)
            .order_by(monitor_results.c.deployment, monitor_results.c.id.desc())
        )

        def work(conn: Connection) -> list[StoredResult]:
            found: dict[str, StoredResult] = {}
            for row in conn.execute(query):
                found.setdefault(row.deployment, _result(row, full=False))
            return list(found.values())

        return self._read(work)

    # -- schedules -------------------------------------------------------------------------

    def set_schedule(
        self, deployment: str, *, every_ms: int, options: Mapping[str, Any], first_due_ms: int
    ) -> Schedule:
        """Create or replace the schedule of ``deployment`` (its counters are kept)."""
        from keel import _time

        now = _time.now_ms()
        text = _dumps(dict(options))

        def work(conn: Connection) -> None:
            changed = conn.execute(
                monitor_schedules.update()
                .where(monitor_schedules.c.deployment == deployment)
                .values(every_ms=every_ms, options=text, next_due_ms=first_due_ms, updated_ms=now)
            ).rowcount
            if not changed:
                conn.execute(
                    monitor_schedules.insert().values(
                        deployment=deployment,
                        every_ms=every_ms,
                        options=text,
                        next_due_ms=first_due_ms,
                        runs=0,
                        failures=0,
                        created_ms=now,
                        updated_ms=now,
                    )
                )

        self._write(work)
        return self.get_schedule(deployment)

    def get_schedule(self, deployment: str) -> Schedule:
        def work(conn: Connection) -> Schedule:
            row = conn.execute(
                select(monitor_schedules).where(monitor_schedules.c.deployment == deployment)
            ).first()
            if row is None:
                raise NotFound(
                    f"no monitor schedule for {deployment!r}; add one with "
                    f"keel monitor schedule {deployment} --every 1h"
                )
            return _schedule(row)

        return self._read(work)

    def list_schedules(self) -> list[Schedule]:
        query = select(monitor_schedules).order_by(monitor_schedules.c.deployment)
        return self._read(lambda conn: [_schedule(r) for r in conn.execute(query)])

    def delete_schedule(self, deployment: str) -> None:
        """Remove the schedule; ``NotFound`` if there was none."""

        def work(conn: Connection) -> int:
            return int(
                conn.execute(
                    monitor_schedules.delete().where(monitor_schedules.c.deployment == deployment)
                ).rowcount
            )

        if not self._write(work):
            raise NotFound(f"no monitor schedule for {deployment!r}; see keel monitor schedules")

    def claim_due(self, owner: str, *, now_ms: int, lease_ms: int) -> Schedule | None:
        """Lease the most overdue schedule to ``owner`` until ``now_ms + lease_ms``; None when
        nothing is due (or every due row is leased)."""
        due = (
            select(monitor_schedules.c.deployment, monitor_schedules.c.next_due_ms)
            .where(monitor_schedules.c.next_due_ms <= now_ms, _free(now_ms))
            .order_by(monitor_schedules.c.next_due_ms, monitor_schedules.c.deployment)
            .limit(10)
        )
        while True:
            # Losing every candidate means other workers took them: read the due rows again.
            candidates = self._read(lambda conn: list(conn.execute(due)))
            if not candidates:
                return None
            for deployment, next_due in candidates:
                if self._take(owner, deployment, next_due, now_ms=now_ms, lease_ms=lease_ms):
                    return self.get_schedule(deployment)

    def _take(
        self, owner: str, deployment: str, next_due: int, *, now_ms: int, lease_ms: int
    ) -> bool:
        """The compare-and-set: lease the row only if it is as we read it and still free."""
        claim = (
            monitor_schedules.update()
            .where(
                monitor_schedules.c.deployment == deployment,
                monitor_schedules.c.next_due_ms == next_due,
                _free(now_ms),
            )
            .values(lease_owner=owner, lease_until_ms=now_ms + lease_ms)
        )
        return bool(self._write(lambda conn: conn.execute(claim).rowcount) == 1)

    def finish(
        self,
        deployment: str,
        owner: str,
        *,
        now_ms: int,
        result_id: str | None,
        error: str | None,
    ) -> bool:
        """Record a claimed run's outcome, release the lease and move ``next_due_ms`` to the
        first due time after now (missed periods are skipped, not run in a burst). False if
        ``owner`` no longer held the lease (it expired and another worker took the row)."""

        def work(conn: Connection) -> int:
            row = conn.execute(
                select(monitor_schedules.c.every_ms, monitor_schedules.c.next_due_ms).where(
                    monitor_schedules.c.deployment == deployment,
                    monitor_schedules.c.lease_owner == owner,
                )
            ).first()
            if row is None:
                return 0
            every, due = int(row.every_ms), int(row.next_due_ms)
            skipped = max(0, (now_ms - due) // every + 1)
            values: dict[str, Any] = {
                "next_due_ms": due + skipped * every,
                "lease_owner": None,
                "lease_until_ms": None,
                "runs": monitor_schedules.c.runs + 1,
                "last_run_ms": now_ms,
                "last_status": ERROR if error is not None else OK,
                "last_error": None if error is None else error[:MAX_ERROR_CHARS],
                "last_result_id": result_id,
                "updated_ms": now_ms,
            }
            if error is not None:
                values["failures"] = monitor_schedules.c.failures + 1
            return int(
                conn.execute(
                    monitor_schedules.update()
                    .where(
                        monitor_schedules.c.deployment == deployment,
                        monitor_schedules.c.lease_owner == owner,
                    )
                    .values(**values)
                ).rowcount
            )

        return bool(self._write(work))


def open_monitor_store(uri: str | None = None) -> SqlMonitorStore:
    """The monitor store at ``uri`` (default: the ``tracking_uri`` setting)."""
    from keel.config import get_settings, normalize_tracking_uri

    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    return SqlMonitorStore(normal)
