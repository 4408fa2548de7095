"""Heartbeats: while a run is active, a daemon thread refreshes its ``heartbeat_ms`` so that
``fail_stale_runs`` can tell a live run from one whose process died (SIGKILL, OOM, power loss).
One thread per ``Client``; it stops when no run is left to beat and restarts on the next one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from keel._time import now_ms
from keel.errors import KeelError, StoreUnavailable

if TYPE_CHECKING:
    from keel.tracking._client import Client


class Heartbeat:
    """One daemon thread per client refreshing ``heartbeat_ms`` of its live runs."""

    def __init__(self, client: Client, interval_s: float) -> None:
        self._client = client
        self._interval = interval_s
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def after_fork(self) -> None:
        self._runs = set()
        self._lock = threading.Lock()
        self._thread = None

    def add(self, run_id: str) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="keel-heartbeat", daemon=True
                )
                self._thread.start()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def _loop(self) -> None:
        while not self._wake.wait(self._interval):
            with self._lock:
                runs = sorted(self._runs)
                if not runs:
                    self._thread = None
                    return
            for run_id in runs:
                self._beat(run_id)

    def _beat(self, run_id: str) -> None:
        dirty = self._client.probes.flag(run_id, wait=False)
        try:
            self._client.store.update_run(run_id, heartbeat_ms=now_ms(), git_dirty=dirty)
            if dirty is not None:
                self._client.probes.recorded(run_id)
        except StoreUnavailable:
            return  # the next beat retries; a lapse only matters after heartbeat_timeout_s
        except KeelError as exc:
            # e.g. the run was hard-deleted: stop beating it and report at its next flush.
            self.remove(run_id)
            self._client.writer.keep(run_id, exc)
