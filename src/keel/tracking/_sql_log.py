"""The write side of logging: one ``log_batch`` transaction, run inputs/outputs, artifact files.

Each function here is the body of a ``keel.db.transaction`` and so must be safe to repeat: it
reads what it needs inside the transaction and relies on nothing a failed attempt left behind.
Rows are written with one executemany per table, never one round trip per row; rows that take
row locks (params, latest metrics) go in key order so concurrent writers cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from keel.errors import Conflict, NotFound, ParamConflict
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import ArtifactFile, RunIO, RunStatus
from keel.tracking._tables import latest_metrics, params, run_artifacts, run_io, runs, tags

_COPY_METRICS = "COPY metrics (run_id, key, value, step, timestamp_ms) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ("varchar", "varchar", "float8", "int8", "int8")


def dialect_insert(conn: Connection) -> Callable[[Table], Any]:
    """The ``insert`` of this dialect, the one with ``on_conflict_do_*``."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def run_status(conn: Connection, run_id: str, *, share: bool = False) -> RunStatus:
    """The run's status, ``NotFound`` if there is no such run.

    With ``share``, PostgreSQL holds a share lock on the run row until commit, so a concurrent
    ``update_run`` that ends the run waits for this batch instead of racing it (concurrent
    batches do not block each other). SQLite's write transactions are serial anyway.
    """
    query = select(runs.c.status).where(runs.c.id == run_id)
    if share and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    status = conn.execute(query).scalar()
    if status is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return RunStatus(status)


def log_batch(
    conn: Connection,
    run_id: str,
    *,
    metric_rows: MetricColumns | None,
    param_values: dict[str, str],
    tag_values: dict[str, str],
) -> None:
    status = run_status(conn, run_id, share=True)
    if status.terminal and (metric_rows or param_values):
        raise Conflict(f"run {run_id!r} is {status}; metrics and params can no longer be logged")
    if param_values:
        _write_params(conn, run_id, param_values)
    if metric_rows:
        write_metrics(conn, run_id, metric_rows)
    if tag_values:
        upsert_tags(conn, run_id, tag_values)


def _write_params(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    # Insert-if-absent then compare: under concurrency the loser of an insert race waits for
    # the winner's commit and then reads the winner's value, never raising a unique violation.
    insert = dialect_insert(conn)
    keys = sorted(values)
    conn.execute(
        insert(params).on_conflict_do_nothing(index_elements=["run_id", "key"]),
        [{"run_id": run_id, "key": k, "value": values[k]} for k in keys],
    )
    stored = conn.execute(
        select(params.c.key, params.c.value).where(
            params.c.run_id == run_id, params.c.key.in_(keys)
        )
    ).all()
    for key, value in sorted(stored):
        if value != values[key]:
            raise ParamConflict(
                f"param {key!r} of run {run_id!r} is already {value!r}; "
                f"params are write-once, cannot set {values[key]!r}",
                field=f"params.{key}",
            )


def write_metrics(conn: Connection, run_id: str, rows: MetricColumns) -> None:
    """Store checked points (``_sql_validate.metrics``) and move the run's latest values."""
    keys, values, steps, stamps = rows.keys, rows.values, rows.steps, rows.timestamps
    if conn.dialect.name == "postgresql":
        _copy_metrics(conn, run_id, rows)
    else:
        conn.exec_driver_sql(
            "INSERT INTO metrics (run_id, key, value, step, timestamp_ms) VALUES (?, ?, ?, ?, ?)",
            list(zip(repeat(run_id), keys, values, steps, stamps)),
        )
    insert = dialect_insert(conn)(latest_metrics)
    new = insert.excluded
    old = latest_metrics.c
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"value": new.value, "step": new.step, "timestamp_ms": new.timestamp_ms},
            where=or_(
                new.step > old.step,
                and_(new.step == old.step, new.timestamp_ms >= old.timestamp_ms),
            ),
        ),
        [
            {
                "run_id": run_id,
                "key": k,
                "value": values[i],
                "step": steps[i],
                "timestamp_ms": stamps[i],
            }
            for k, i in sorted(_latest(rows).items())
        ],
    )


def _latest(rows: MetricColumns) -> dict[str, int]:
    """Per key, the index of the point with the greatest (step, timestamp); on a tie the
    later one wins."""
    keys, steps, stamps = rows.keys, rows.steps, rows.timestamps
    if len(set(keys)) == 1:  # the common batch: one metric, found by C-level comparisons
        return {keys[0]: max(zip(steps, stamps, range(len(keys)), strict=True))[2]}
    best: dict[str, tuple[int, int, int]] = {}
    for key, step, ts, i in zip(keys, steps, stamps, range(len(keys)), strict=True):
        current = best.get(key)
        if current is None or (step, ts) >= current[:2]:
            best[key] = (step, ts, i)
    return {key: at[2] for key, at in best.items()}


def _copy_metrics(conn: Connection, run_id: str, rows: MetricColumns) -> None:
    """PostgreSQL's binary COPY, inside the batch's transaction: several times faster than an
    executemany of INSERTs, and psycopg encodes each row in C (cheaper than building the text
    format in Python, and PostgreSQL parses no numbers)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(_COPY_METRICS) as copy:
        copy.set_types(_COPY_TYPES)
        write = copy.write_row
        for row in zip(repeat(run_id), rows.keys, rows.values, rows.steps, rows.timestamps):
            write(row)


def upsert_tags(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    insert = dialect_insert(conn)(tags)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": insert.excluded.value}
        ),
        [{"run_id": run_id, "key": k, "value": values[k]} for k in sorted(values)],
    )


def log_io(conn: Connection, run_id: str, items: Sequence[RunIO]) -> None:
    run_status(conn, run_id)
    if not items:
        return
    insert = dialect_insert(conn)(run_io)
    conn.execute(
        insert.on_conflict_do_nothing(index_elements=["run_id", "direction", "kind", "ref"]),
        [
            {
                "run_id": run_id,
                "direction": i.direction,
                "kind": i.kind,
                "ref": i.ref,
                "digest": i.digest,
            }
            for i in items
        ],
    )


def record_artifacts(
    conn: Connection, run_id: str, files: Sequence[ArtifactFile], *, now_ms: int
) -> None:
    run_status(conn, run_id)
    if not files:
        return
    insert = dialect_insert(conn)(run_artifacts)
    new = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["run_id", "path"],
            set_={"digest": new.digest, "size": new.size, "created_ms": new.created_ms},
        ),
        [
            {
                "run_id": run_id,
                "path": f.path,
                "digest": f.digest,
                "size": f.size,
                "created_ms": now_ms,
            }
            for f in sorted(files, key=lambda f: f.path)
        ],
    )
