"""Projects and runs: the units of work behind ``SqlTrackingStore``'s project and run methods.

Each function is the body of one ``keel.db.transaction`` and is safe to repeat. Creation is
race-free without catching unique violations (which would abort a PostgreSQL transaction):
``INSERT … ON CONFLICT DO NOTHING`` and then read what is there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select, union, update

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import Project, Run, RunEnv, RunStatus
from keel.tracking._sql_load import encode_packages, load_runs, project_record
from keel.tracking._sql_log import dialect_insert, upsert_tags, write_metrics
from keel.tracking._tables import (
    latest_metrics,
    metrics,
    params,
    projects,
    run_artifacts,
    run_io,
    runs,
    tags,
)

_PROJECT_COLUMNS = (projects.c.id, projects.c.name, projects.c.description, projects.c.created_ms)


@dataclass(frozen=True, slots=True)
class NewRun:
    id: str
    project: str
    name: str
    parent_id: str | None
    env: RunEnv
    start_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    fresh_id: bool = False  # made by the store just now: no run can have it yet
    known_project: Project | None = None  # projects are never deleted: a cached one is valid


def _insert_project(conn: Connection, name: str, description: str, now_ms: int) -> int:
    insert = dialect_insert(conn)(projects)
    # RETURNING tells whether this statement inserted (rowcount of an INSERT is not portable).
    inserted = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["name"]).returning(projects.c.id),
        {"id": uuid.uuid4().hex, "name": name, "description": description, "created_ms": now_ms},
    ).first()
    return 0 if inserted is None else 1


def create_project(conn: Connection, name: str, description: str, now_ms: int) -> Project:
    if _insert_project(conn, name, description, now_ms) == 0:
        raise AlreadyExists(f"project {name!r} already exists")
    return find_project(conn, name)


def ensure_project(conn: Connection, name: str, now_ms: int) -> Project:
    row = conn.execute(select(*_PROJECT_COLUMNS).where(projects.c.name == name)).first()
    if row is not None:
        return project_record(row)
    _insert_project(conn, name, "", now_ms)
    return find_project(conn, name)


def find_project(conn: Connection, name: str) -> Project:
    row = conn.execute(select(*_PROJECT_COLUMNS).where(projects.c.name == name)).first()
    if row is None:
        raise NotFound(f"project {name!r} does not exist")
    return project_record(row)


def all_projects(conn: Connection) -> list[Project]:
    return [project_record(row) for row in conn.execute(select(*_PROJECT_COLUMNS))]


def project_ids(conn: Connection, names: Sequence[str]) -> list[str]:
    """Ids of the named projects; ``NotFound`` names the first one that does not exist."""
    if not names:
        return []
    found = dict(
        conn.execute(select(projects.c.name, projects.c.id).where(projects.c.name.in_(names))).all()
    )
    for name in names:
        if name not in found:
            raise NotFound(f"project {name!r} does not exist")
    return [found[name] for name in dict.fromkeys(names)]


def get_run(conn: Connection, run_id: str) -> Run:
    found = load_runs(conn, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} does not exist")
    return found[0]


def _exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def create_run(conn: Connection, spec: NewRun) -> tuple[Run, Project | None]:
    """The run, and the project it was created in (``None`` for an existing run)."""
    if not spec.fresh_id and _exists(conn, spec.id):
        return get_run(conn, spec.id), None  # idempotent: the same id is the same run
    project = spec.known_project or ensure_project(conn, spec.project, spec.start_ms)
    if spec.parent_id is not None and not _exists(conn, spec.parent_id):
        raise NotFound(f"parent run {spec.parent_id!r} does not exist")
    env = spec.env
    row: dict[str, Any] = {
        "id": spec.id,
        "project_id": project.id,
        "name": spec.name,
        "parent_id": spec.parent_id,
        "status": RunStatus.RUNNING.value,
        "start_ms": spec.start_ms,
        "end_ms": None,
        "heartbeat_ms": spec.start_ms,
        "user": env.user[:250],
        "host": env.host[:250],
        "pid": env.pid,
        "git_commit": env.git_commit[:64] if env.git_commit else env.git_commit,
        "git_dirty": env.git_dirty,
        "python_version": env.python_version[:32],
        "packages": encode_packages(env.packages),
        "note": "",
        "deleted": False,
    }
    insert = dialect_insert(conn)(runs)
    inserted = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["id"]).returning(runs.c.id), row
    ).first()
    if inserted is None:
        return get_run(conn, spec.id), None  # created concurrently under the same id
    if spec.tags:
        upsert_tags(conn, spec.id, spec.tags)
    # Built here rather than read back: saves five queries on every run start.
    run = Run(
        id=spec.id,
        project=project.name,
        name=spec.name,
        status=RunStatus.RUNNING,
        start_ms=spec.start_ms,
        end_ms=None,
        heartbeat_ms=spec.start_ms,
        parent_id=spec.parent_id,
        env=RunEnv(
            user=row["user"],
            host=row["host"],
            pid=env.pid,
            git_commit=row["git_commit"],
            git_dirty=env.git_dirty,
            python_version=row["python_version"],
            packages=json.loads(row["packages"]),
        ),
        tags=dict(sorted(spec.tags.items())),
    )
    return run, project


def update_run(
    conn: Connection,
    run_id: str,
    changes: dict[str, Any],
    now_ms: int,
    *,
    metric_rows: MetricColumns | None = None,
) -> None:
    query = select(runs.c.status, runs.c.end_ms).where(runs.c.id == run_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    current = RunStatus(row.status)
    if metric_rows:
        if current.terminal:
            raise Conflict(f"run {run_id!r} is {current}; metrics can no longer be logged")
        write_metrics(conn, run_id, metric_rows)
    values = dict(changes)
    new = values.get("status")
    if new is not None:
        if current.terminal and new is not current:
            raise Conflict(f"run {run_id!r} is already {current}; a terminal status is final")
        if new.terminal and not current.terminal and "end_ms" not in values:
            values["end_ms"] = now_ms
        values["status"] = new.value
    final = new or current
    if "end_ms" in values and not final.terminal:
        raise InvalidInput("only a run that has ended has an end time", field="end_ms")
    if values:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def delete_run(conn: Connection, run_id: str, *, hard: bool) -> None:
    if not _exists(conn, run_id):
        raise NotFound(f"run {run_id!r} does not exist")
    if not hard:
        conn.execute(update(runs).where(runs.c.id == run_id).values(deleted=True))
        return
    # Children outlive a hard-deleted parent as top-level runs.
    conn.execute(update(runs).where(runs.c.parent_id == run_id).values(parent_id=None))
    for table in (latest_metrics, params, tags, run_io, run_artifacts):
        conn.execute(delete(table).where(table.c.run_id == run_id))
    conn.execute(delete(runs).where(runs.c.id == run_id))
    # After the run row: deleting it waits for any batch holding its share lock to commit, and
    # this statement then sees that batch's points (PostgreSQL's metrics table has no foreign
    # key to cascade from, see migration 0008); a later batch finds no run.
    conn.execute(delete(metrics).where(metrics.c.run_id == run_id))


def fail_stale(conn: Connection, *, cutoff_ms: int, now_ms: int) -> list[str]:
    result = conn.execute(
        update(runs)
        .where(runs.c.status == RunStatus.RUNNING.value, runs.c.heartbeat_ms < cutoff_ms)
        .values(status=RunStatus.FAILED.value, end_ms=now_ms)
        .returning(runs.c.id)
    )
    return sorted(result.scalars())


def digest_page(conn: Connection, after: str | None, limit: int) -> list[str]:
    """One page of distinct digests (artifact files and run inputs/outputs), after ``after``."""
    both = union(
        select(run_artifacts.c.digest.label("digest")),
        select(run_io.c.digest.label("digest")).where(run_io.c.digest.is_not(None)),
    ).subquery()
    query = select(both.c.digest).order_by(both.c.digest).limit(limit)
    if after is not None:
        query = query.where(both.c.digest > after)
    return list(conn.execute(query).scalars())
