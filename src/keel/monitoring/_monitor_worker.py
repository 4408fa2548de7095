"""Recurring monitors: ``schedule_monitor`` registers one per deployment, and a
``MonitorWorker`` runs the due ones. Several workers may share one database: each claims a run
with an atomic lease (``SqlMonitorStore.claim_due``), so a due run happens once. A run that
fails is stored as an ``error`` result with its message, and the schedule moves on to its next
due time; the worker itself keeps going. ``stop()`` (Ctrl-C / SIGTERM in the CLI) ends the
loop after the current run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel import _time
from keel.errors import InvalidInput
from keel.monitoring._monitor_sql import ERROR, Schedule, SqlMonitorStore, open_monitor_store
from keel.monitoring._predlog import check_name
from keel.monitoring._windows import parse_duration

logger = logging.getLogger("keel.monitoring.worker")

MIN_EVERY_MS = 60_000
DEFAULT_LEASE_MS = 30 * 60_000
_OPTIONS = (
    *("window", "last_rows", "reference", "columns", "tests", "thresholds", "multivariate"),
    *("drift_share", "task", "positive_label", "slices", "business"),
)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The run options a schedule stores (JSON): the keyword arguments of ``run_monitor``
    that make sense on a schedule. Relative windows only: a fixed range would repeat."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise InvalidInput(
            f"unknown monitor option(s) {unknown}; use {list(_OPTIONS)}", field="options"
        )
    out = {k: v for k, v in options.items() if v is not None}
    if "window" in out:
        if not isinstance(out["window"], str) or ".." in out["window"]:
            raise InvalidInput(
                "a schedule needs a window relative to each run, e.g. '24h'", field="window"
            )
        parse_duration(out["window"])
    if "window" in out and "last_rows" in out:
        raise InvalidInput("give either a window or last_rows, not both", field="window")
    reference = out.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise InvalidInput("must be text, e.g. churn@v3 or log:7d..1d", field="reference")
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"options must be plain JSON values ({exc})", field="options") from None
    return out


def schedule_monitor(
    deployment: str,
    *,
    every: str | int,
    first_due_ms: int | None = None,
    uri: str | None = None,
    **options: Any,
) -> Schedule:
    """Run the monitor of ``deployment`` every ``every`` (``1h``, ``15m``, or ms, at least a
    minute) with ``options`` (``window``, ``reference``, ... as for ``run_monitor``). The
    first run is due at ``first_due_ms`` (default: now). Replaces an existing schedule."""
    check_name(deployment, "deployment")
    every_ms = parse_duration(every, field="every") if isinstance(every, str) else int(every)
    if every_ms < MIN_EVERY_MS:
        raise InvalidInput("must be at least 1m", field="every")
    stored = check_options(options)
    store = open_monitor_store(uri)
    try:
        return store.set_schedule(
            deployment,
            every_ms=every_ms,
            options=stored,
            first_due_ms=_time.now_ms() if first_due_ms is None else int(first_due_ms),
        )
    finally:
        store.close()


def list_schedules(*, uri: str | None = None) -> list[Schedule]:
    store = open_monitor_store(uri)
    try:
        return store.list_schedules()
    finally:
        store.close()


def unschedule(deployment: str, *, uri: str | None = None) -> None:
    """Stop monitoring ``deployment`` on a schedule (its stored results stay)."""
    store = open_monitor_store(uri)
    try:
        store.delete_schedule(deployment)
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One run a worker did: the stored result's id, or the error it recorded."""

    deployment: str
    result_id: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "result_id": self.result_id, "error": self.error}


Runner = Callable[..., Any]


class MonitorWorker:
    """Runs due monitors from ``store``. ``run`` is ``run_monitor`` (or any function with its
    signature returning an object with ``id``); ``owner`` names this worker in leases."""

    def __init__(
        self,
        store: SqlMonitorStore,
        *,
        run: Runner | None = None,
        owner: str | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        uri: str | None = None,
        on_run: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        if run is None:
            from keel.monitoring._monitor import run_monitor

            run = run_monitor
        self.store = store
        self.run = run
        self.owner = owner or f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease_ms = lease_ms
        self.uri = uri
        self.on_run = on_run
        self._stop = threading.Event()

    def stop(self) -> None:
        """End ``run_forever`` after the current run."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_due(self, *, now_ms: int | None = None) -> list[RunOutcome]:
        """Run every monitor due at ``now_ms`` (default: the clock) that this worker can
        claim, one after another; stops early once ``stop()`` was called."""
        done: list[RunOutcome] = []
        while not self._stop.is_set():
            now = _time.now_ms() if now_ms is None else now_ms
            claimed = self.store.claim_due(self.owner, now_ms=now, lease_ms=self.lease_ms)
            if claimed is None:
                break
            done.append(self._run_one(claimed, now, fixed=now_ms is not None))
        return done

    def _run_one(self, schedule: Schedule, now: int, *, fixed: bool) -> RunOutcome:
        result_id: str | None = None
        error: str | None = None
        options = dict(schedule.options)
        try:
            result = self.run(
                schedule.deployment, now_ms=now, uri=self.uri, store=self.store, **options
            )
            result_id = str(result.id)
        except Exception as exc:  # noqa: BLE001 - recorded below; retried at the next due time
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("monitor run of %r failed: %s", schedule.deployment, error)
            result_id = uuid.uuid4().hex
            self.store.add_result(
                id=result_id,
                deployment=schedule.deployment,
                created_ms=now,
                window=None,
                status=ERROR,
                summary={"deployment": schedule.deployment, "error": error},
                quantities={},
                result={"deployment": schedule.deployment, "options": options, "error": error},
                error=error,
            )
        # The next due time counts from when the run ended (from ``now`` on a fixed clock).
        finish_ms = now if fixed else _time.now_ms()
        if not self.store.finish(
            schedule.deployment, self.owner, now_ms=finish_ms, result_id=result_id, error=error
        ):
            logger.warning(
                "monitor run of %r outlived its lease; another worker took the schedule",
                schedule.deployment,
            )
        outcome = RunOutcome(schedule.deployment, None if error else result_id, error)
        if self.on_run is not None:
            self.on_run(outcome)
        return outcome

    def run_forever(self, *, poll_s: float = 10.0) -> None:
        """Run due monitors, then sleep ``poll_s`` seconds, until ``stop()``."""
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(poll_s)


def describe(schedules: Sequence[Schedule]) -> list[dict[str, Any]]:
    """Schedules as JSON-ready rows with readable times."""
    return [
        s.to_dict()
        | {
            "next_due": _time.format_ms(s.next_due_ms),
            "last_run": _time.format_ms(s.last_run_ms),
        }
        for s in schedules
    ]
