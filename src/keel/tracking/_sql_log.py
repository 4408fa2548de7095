"""The write side of logging: one ``log_batch`` transaction, run inputs/outputs, artifact files.

Each function here is the body of a ``keel.db.transaction`` and so must be safe to repeat: it
reads what it needs inside the transaction and relies on nothing a failed attempt left behind.
Rows are written with one executemany per table, never one round trip per row; rows that take
row locks (params, latest metrics) go in key order so concurrent writers cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from keel.errors import Conflict, NotFound, ParamConflict
from keel.tracking._records import ArtifactFile, RunIO, RunStatus
from keel.tracking._tables import latest_metrics, params, run_artifacts, run_io, runs, tags

MetricRow = tuple[str, float | None, int, int]
_INF = float("inf")


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
    metric_rows: Sequence[MetricRow],
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


def write_metrics(conn: Connection, run_id: str, rows: Sequence[MetricRow]) -> None:
    if conn.dialect.name == "postgresql":
        _copy_metrics(conn, run_id, rows)
    else:
        conn.exec_driver_sql(
            "INSERT INTO metrics (run_id, key, value, step, timestamp_ms) VALUES (?, ?, ?, ?, ?)",
            [(run_id, *row) for row in rows],
        )
    # Per key, the point with the greatest (step, timestamp); on a tie the later one wins.
    best: dict[str, MetricRow] = {}
    for row in rows:
        current = best.get(row[0])
        if current is None or (row[2], row[3]) >= (current[2], current[3]):
            best[row[0]] = row
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
            {"run_id": run_id, "key": k, "value": v, "step": s, "timestamp_ms": t}
            for k, v, s, t in (best[key] for key in sorted(best))
        ],
    )


def _copy_metrics(conn: Connection, run_id: str, rows: Sequence[MetricRow]) -> None:
    """PostgreSQL's COPY in text format, built as one string: several times faster than an
    executemany of INSERTs, inside the same transaction. Keys hold no control characters
    (validated), so only the backslash needs escaping."""
    driver = conn.connection.driver_connection
    assert driver is not None
    keys = {key: key.replace("\\", "\\\\") for key, *_ in rows}
    prefix = run_id + "\t"
    data = "".join(
        f"{prefix}{keys[key]}\t{_pg_float(value)}\t{step}\t{ts}\n" for key, value, step, ts in rows
    )
    sql = "COPY metrics (run_id, key, value, step, timestamp_ms) FROM STDIN"
    with driver.cursor() as cur, cur.copy(sql) as copy:
        copy.write(data)


def _pg_float(value: float | None) -> str:
    if value is None:
        return "\\N"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


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
