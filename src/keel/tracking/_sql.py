"""``SqlTrackingStore``: the tracking contract on SQLite and PostgreSQL.

Every method is one ``keel.db.transaction`` (retried whole on transient failures), so each unit
of work below is written to be repeatable. Inputs are checked before a transaction starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from keel import _time
from keel.db import SqlStore
from keel.errors import InvalidInput
from keel.tracking import _sql_log, _sql_runs
from keel.tracking import _sql_validate as check
from keel.tracking._base import TrackingStore
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
from keel.tracking._sql_load import load_runs, metric_record
from keel.tracking._tables import metrics, run_artifacts, run_io, runs

_DIGEST_PAGE = 10_000
T = TypeVar("T")


class SqlTrackingStore(SqlStore, TrackingStore):
    """Tracking metadata in a SQL database given by URL (``sqlite:///…``, ``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._projects: dict[str, Project] = {}  # by name; projects are never deleted

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, *, description: str = "") -> Project:
        check.name(name, "name")
        check.text(description, "description", limit=100_000)
        project: Project = self._write(
            lambda conn: _sql_runs.create_project(conn, name, description, _time.now_ms())
        )
        return project

    def get_project(self, name: str, *, create: bool = False) -> Project:
        check.name(name, "name")
        if create:
            project: Project = self._write(
                lambda conn: _sql_runs.ensure_project(conn, name, _time.now_ms())
            )
        else:
            project = self._read(lambda conn: _sql_runs.find_project(conn, name))
        return project

    def list_projects(self) -> list[Project]:
        found: list[Project] = self._read(_sql_runs.all_projects)
        return sorted(found, key=lambda p: p.name)

    # -- runs -------------------------------------------------------------------------------

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
        check.name(project, "project")
        new_id = uuid.uuid4().hex if run_id is None else check.run_id(run_id)
        run_name = f"run-{new_id[:8]}" if name is None else check.name(name, "name")
        if parent_id is not None:
            check.run_id(parent_id, "parent_id")
        if env is not None and not isinstance(env, RunEnv):
            raise InvalidInput("must be a RunEnv", field="env")
        tag_values = check.mapping(tags, "tags")
        start = (
            _time.now_ms() if start_ms is None else check.integer(start_ms, "start_ms", minimum=0)
        )
        spec = _sql_runs.NewRun(
            id=new_id,
            project=project,
            name=run_name,
            parent_id=parent_id,
            env=env or RunEnv(),
            tags=tag_values,
            start_ms=start,
            fresh_id=run_id is None,
            known_project=self._projects.get(project),
        )
        made: tuple[Run, Project | None] = self._write(
            lambda conn: _sql_runs.create_run(conn, spec)
        )
        if made[1] is not None:
            self._projects[made[1].name] = made[1]
        return made[0]

    def get_run(self, run_id: str) -> Run:
        check.run_id(run_id)
        run: Run = self._read(lambda conn: _sql_runs.get_run(conn, run_id))
        return run

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
        check.run_id(run_id)
        rows = check.metrics(metrics)
        changes: dict[str, Any] = {}
        if status is not None:
            try:
                changes["status"] = RunStatus(status)
            except ValueError as exc:
                raise InvalidInput(f"unknown status {status!r}", field="status") from exc
        if end_ms is not None:
            changes["end_ms"] = check.integer(end_ms, "end_ms", minimum=0)
        if name is not None:
            changes["name"] = check.name(name, "name")
        if note is not None:
            changes["note"] = check.text(note, "note", limit=100_000)
        if heartbeat_ms is not None:
            changes["heartbeat_ms"] = check.integer(heartbeat_ms, "heartbeat_ms", minimum=0)
        if git_dirty is not None:
            if not isinstance(git_dirty, bool):
                raise InvalidInput("must be true or false", field="git_dirty")
            changes["git_dirty"] = git_dirty
        now = _time.now_ms()
        self._write(lambda conn: _sql_runs.update_run(conn, run_id, changes, now, metric_rows=rows))

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        check.run_id(run_id)
        self._write(lambda conn: _sql_runs.delete_run(conn, run_id, hard=hard))

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
        from keel.tracking._search_sql import select_run_ids

        if isinstance(projects, str):
            raise InvalidInput("must be a list of project names, not one string", field="projects")
        names = None if projects is None else [check.name(p, "projects") for p in projects]
        if not isinstance(filter, str):
            raise InvalidInput("must be a string", field="filter")
        if isinstance(order_by, str):
            raise InvalidInput("must be a list of keys, not one string", field="order_by")
        limit = check.max_results(max_results)

        def work(conn: Connection) -> Page[Run]:
            project_ids = None if names is None else _sql_runs.project_ids(conn, names)
            ids, token = select_run_ids(
                conn,
                filter=filter,
                order_by=list(order_by),
                project_ids=project_ids,
                include_deleted=include_deleted,
                max_results=limit,
                page_token=page_token,
            )
            return Page(items=tuple(load_runs(conn, ids)), next_token=token)

        page: Page[Run] = self._read(work)
        return page

    def fail_stale_runs(self, *, now_ms: int, timeout_ms: int) -> list[str]:
        check.integer(now_ms, "now_ms", minimum=0)
        check.integer(timeout_ms, "timeout_ms", minimum=0)
        failed: list[str] = self._write(
            lambda conn: _sql_runs.fail_stale(conn, cutoff_ms=now_ms - timeout_ms, now_ms=now_ms)
        )
        return failed

    # -- what is logged to runs -------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.log_batch_guarded(run_id, metrics=metrics, params=params, tags=tags)

    def log_batch_guarded(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        guard: Callable[[Connection], T | None] | None = None,
    ) -> T | None:
        """``log_batch`` whose transaction first runs ``guard(conn)``: if that returns an
        answer, nothing is written and the answer is returned. The team server passes the
        claim of the request's idempotency key, so the key's record commits with the batch or
        not at all, in one transaction instead of three."""
        check.run_id(run_id)
        rows = check.metrics(metrics)
        param_values = check.mapping(params, "params")
        tag_values = check.mapping(tags, "tags")

        def work(conn: Connection) -> T | None:
            if guard is not None:
                answer = guard(conn)
                if answer is not None:
                    return answer
            _sql_log.log_batch(
                conn, run_id, metric_rows=rows, param_values=param_values, tag_values=tag_values
            )
            return None

        done: T | None = self._write(work)
        return done

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        check.run_id(run_id)
        check.name(key, "key")

        def work(conn: Connection) -> list[Metric]:
            _sql_log.run_status(conn, run_id)
            query = (
                select(metrics.c.key, metrics.c.value, metrics.c.step, metrics.c.timestamp_ms)
                .where(metrics.c.run_id == run_id, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp_ms, metrics.c.id)
            )
            return [metric_record(row) for row in conn.execute(query)]

        history: list[Metric] = self._read(work)
        return history

    def log_io(self, run_id: str, items: Iterable[RunIO]) -> None:
        check.run_id(run_id)
        checked = check.io_items(items)
        self._write(lambda conn: _sql_log.log_io(conn, run_id, checked))

    def runs_using(self, ref: str, *, kind: str = "dataset", direction: str = "input") -> list[str]:
        check.text(ref, "ref")
        check.name(kind, "kind")
        check.direction(direction)
        query = (
            select(runs.c.id)
            .select_from(run_io.join(runs, run_io.c.run_id == runs.c.id))
            .where(
                run_io.c.ref == ref,
                run_io.c.kind == kind,
                run_io.c.direction == direction,
                runs.c.deleted.is_(False),
            )
            .order_by(runs.c.start_ms, runs.c.id)
        )
        ids: list[str] = self._read(lambda conn: list(conn.execute(query).scalars()))
        return ids

    def record_artifacts(self, run_id: str, files: Iterable[ArtifactFile]) -> None:
        check.run_id(run_id)
        checked = check.artifacts(files)
        now = _time.now_ms()
        self._write(lambda conn: _sql_log.record_artifacts(conn, run_id, checked, now_ms=now))

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactFile]:
        check.run_id(run_id)
        under = check.artifact_path(prefix, "prefix") if prefix not in ("", ".", "/") else ""

        def work(conn: Connection) -> list[ArtifactFile]:
            _sql_log.run_status(conn, run_id)
            query = select(run_artifacts.c.path, run_artifacts.c.digest, run_artifacts.c.size)
            query = query.where(run_artifacts.c.run_id == run_id)
            if under:
                query = query.where(
                    (run_artifacts.c.path == under)
                    | run_artifacts.c.path.startswith(under + "/", autoescape=True)
                )
            return [
                ArtifactFile(path=r.path, digest=r.digest, size=r.size) for r in conn.execute(query)
            ]

        found: list[ArtifactFile] = self._read(work)
        return sorted(found, key=lambda f: f.path)

    def referenced_digests(self) -> Iterator[str]:
        last: str | None = None
        while True:
            page = self._read(partial(_sql_runs.digest_page, after=last, limit=_DIGEST_PAGE))
            yield from page
            if len(page) < _DIGEST_PAGE:
                return
            last = page[-1]
