"""The tracking store contract. ``SqlTrackingStore`` implements it on SQLite and PostgreSQL,
the HTTP client (team server) will implement it too, and ``keel.testing`` holds the one
conformance suite every implementation passes.

Three small contracts make up a store: projects, runs, and what is logged to runs.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence

from keel.tracking._records import (
    ArtifactFile,
    Metric,
    Page,
    Project,
    Run,
    RunEnv,
    RunIO,
    RunStatus,
)


class ProjectStore(abc.ABC):
    @abc.abstractmethod
    def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project; ``AlreadyExists`` if the name is taken, ``InvalidInput`` if bad."""

    @abc.abstractmethod
    def get_project(self, name: str, *, create: bool = False) -> Project:
        """The project called ``name``; ``NotFound`` unless ``create`` (then made, race-free)."""

    @abc.abstractmethod
    def list_projects(self) -> list[Project]:
        """Every project, by name."""


class RunStore(abc.ABC):
    @abc.abstractmethod
    def create_run(
        self,
        *,
        project: str,
        name: str | None = None,
        parent_id: str | None = None,
        env: RunEnv | None = None,
        tags: Mapping[str, str] | None = None,
        start_ms: int | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run (project created on demand). A given ``run_id`` makes the call
        idempotent: creating an existing id returns that run unchanged."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its params, latest metrics, tags and inputs/outputs; ``NotFound``."""

    @abc.abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_ms: int | None = None,
        name: str | None = None,
        note: str | None = None,
        heartbeat_ms: int | None = None,
        git_dirty: bool | None = None,
        metrics: Sequence[Metric] = (),
    ) -> None:
        """Change what is given. A terminal status is final: moving a finished run back to
        RUNNING is a ``Conflict``; ending it needs ``end_ms`` (default now).

        ``metrics`` are stored as ``log_batch`` would store them (same checks; a ``Conflict``
        if the run has already ended), in the same transaction as the change: a run ends
        together with its last points, in one commit, or not at all. ``git_dirty`` records
        ``env.git_dirty`` when the state of the working tree is known only after the start."""

    @abc.abstractmethod
    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        """Soft-delete (hidden from search, restorable) or, with ``hard``, remove for good."""

    @abc.abstractmethod
    def search_runs(
        self,
        *,
        projects: Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """Runs matching ``filter`` (the search language, compiled to SQL), ordered by
        ``order_by`` (e.g. ``-metrics.auc``), one page at a time (cursor in ``next_token``)."""

    @abc.abstractmethod
    def fail_stale_runs(self, *, now_ms: int, timeout_ms: int) -> list[str]:
        """Mark FAILED every RUNNING run whose heartbeat is older than ``timeout_ms``."""


class RunLogStore(abc.ABC):
    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Store all of it or none of it. Params are write-once: the same value again is fine,
        another value raises ``ParamConflict`` and stores nothing of the batch. Logging to a run
        that has ended is a ``Conflict``, except tags."""

    @abc.abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point logged for ``key``, by (step, timestamp)."""

    @abc.abstractmethod
    def log_io(self, run_id: str, items: Iterable[RunIO]) -> None:
        """Record what a run read or wrote (idempotent)."""

    @abc.abstractmethod
    def runs_using(self, ref: str, *, kind: str = "dataset", direction: str = "input") -> list[str]:
        """Ids of runs that recorded ``ref`` (lineage: which runs used churn@v3)."""

    @abc.abstractmethod
    def record_artifacts(self, run_id: str, files: Iterable[ArtifactFile]) -> None:
        """Attach stored files to a run under their relative paths (replacing same paths)."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactFile]:
        """Files of a run under ``prefix``, by path."""

    @abc.abstractmethod
    def referenced_digests(self) -> Iterator[str]:
        """Every artifact digest this store refers to (garbage collection keeps these)."""


class TrackingStore(ProjectStore, RunStore, RunLogStore, abc.ABC):
    """Everything tracking persists. Implementations raise only ``keel.errors`` types."""

    def close(self) -> None:
        """Release connections."""
