"""Reading runs back as frozen records, many at a time in a constant number of queries.

``load_runs(conn, ids)`` issues one query per table (runs joined with projects, params, tags,
latest metrics, inputs/outputs) for up to ``_CHUNK`` ids, whatever the number of runs, and returns
them in the order of ``ids``. Search and ``get_run`` both use it, so a run always looks the same.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from keel.tracking._records import Metric, Project, Run, RunEnv, RunIO, RunStatus
from keel.tracking._tables import latest_metrics, params, projects, run_io, runs, tags

# Bound on bind parameters per IN list (SQLite allows 32,766).
_CHUNK = 10_000
_NAN = math.nan
V = TypeVar("V")

RUN_COLUMNS = (
    runs.c.id,
    projects.c.name.label("project"),
    runs.c.name,
    runs.c.status,
    runs.c.start_ms,
    runs.c.end_ms,
    runs.c.heartbeat_ms,
    runs.c.parent_id,
    runs.c.note,
    runs.c.user,
    runs.c.host,
    runs.c.pid,
    runs.c.git_commit,
    runs.c.git_dirty,
    runs.c.python_version,
    runs.c.packages,
    runs.c.deleted,
)


def project_record(row: Any) -> Project:
    return Project(id=row.id, name=row.name, description=row.description, created_ms=row.created_ms)


def metric_value(value: float | None) -> float:
    """The stored form back to a float: NULL is NaN (see ``_sql_validate``)."""
    return _NAN if value is None else float(value)


def metric_record(row: Any) -> Metric:
    return Metric(
        key=row.key, value=metric_value(row.value), step=row.step, timestamp_ms=row.timestamp_ms
    )


def encode_packages(packages: object) -> str:
    items = packages.items() if isinstance(packages, Mapping) else ()
    return json.dumps({str(k): str(v) for k, v in items}, sort_keys=True)


def _env(row: Any) -> RunEnv:
    try:
        packages = json.loads(row.packages) if row.packages else {}
    except ValueError:
        packages = {}  # a hand-edited row must not make the run unreadable
    return RunEnv(
        user=row.user,
        host=row.host,
        pid=row.pid,
        git_commit=row.git_commit,
        git_dirty=None if row.git_dirty is None else bool(row.git_dirty),
        python_version=row.python_version,
        packages=packages if isinstance(packages, dict) else {},
    )


def load_runs(conn: Connection, ids: Sequence[str]) -> list[Run]:
    """The runs with these ids, in this order; ids that do not exist are left out."""
    found: dict[str, Run] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        found.update(_load_chunk(conn, unique[start : start + _CHUNK]))
    return [found[i] for i in ids if i in found]


def _load_chunk(conn: Connection, ids: list[str]) -> dict[str, Run]:
    run_rows = conn.execute(
        select(*RUN_COLUMNS)
        .select_from(runs.join(projects, runs.c.project_id == projects.c.id))
        .where(runs.c.id.in_(ids))
    ).all()
    if not run_rows:
        return {}
    param_map: dict[str, dict[str, str]] = defaultdict(dict)
    query = select(params.c.run_id, params.c.key, params.c.value)
    for run_id, key, value in conn.execute(query.where(params.c.run_id.in_(ids))):
        param_map[run_id][key] = value
    tag_map: dict[str, dict[str, str]] = defaultdict(dict)
    query = select(tags.c.run_id, tags.c.key, tags.c.value)
    for run_id, key, value in conn.execute(query.where(tags.c.run_id.in_(ids))):
        tag_map[run_id][key] = value
    metric_map: dict[str, dict[str, float]] = defaultdict(dict)
    query = select(latest_metrics.c.run_id, latest_metrics.c.key, latest_metrics.c.value)
    for run_id, key, number in conn.execute(query.where(latest_metrics.c.run_id.in_(ids))):
        metric_map[run_id][key] = metric_value(number)
    io_map: dict[str, list[RunIO]] = defaultdict(list)
    io_query = select(
        run_io.c.run_id, run_io.c.ref, run_io.c.kind, run_io.c.direction, run_io.c.digest
    ).where(run_io.c.run_id.in_(ids))
    for run_id, ref, kind, direction, digest in conn.execute(io_query):
        io_map[run_id].append(RunIO(ref=ref, kind=kind, direction=direction, digest=digest))
    return {
        row.id: Run(
            id=row.id,
            project=row.project,
            name=row.name,
            status=RunStatus(row.status),
            start_ms=row.start_ms,
            end_ms=row.end_ms,
            heartbeat_ms=row.heartbeat_ms,
            parent_id=row.parent_id,
            note=row.note,
            env=_env(row),
            params=_sorted(param_map.get(row.id, {})),
            metrics=_sorted(metric_map.get(row.id, {})),
            tags=_sorted(tag_map.get(row.id, {})),
            io=tuple(sorted(io_map.get(row.id, ()), key=_io_order)),
            deleted=bool(row.deleted),
        )
        for row in run_rows
    }


def _sorted(values: dict[str, V]) -> dict[str, V]:
    return dict(sorted(values.items()))


def _io_order(item: RunIO) -> tuple[str, str, str]:
    # Sorted in Python: PostgreSQL's collation would order text differently from SQLite's.
    return (item.direction, item.kind, item.ref)
