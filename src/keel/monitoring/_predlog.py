"""The prediction log's layout, and reading it back: one deployment, one time range, joined
with feedback by request id, through DuckDB over the Parquet files.

The serving layer writes the log (``keel.serving._predlog``) in this layout, one folder per
deployment and hour, so a reader opens only the hours it asks for::

    predictions/deployment=<name>/date=YYYY-MM-DD/hour=HH/<YYYYMMDDTHHMMSSfffZ>-<uuid>.parquet

Only the hour folders that overlap the range are listed and opened. A local store is read in
place; any other store (S3, a team server) has the in-range files copied to a temporary folder
first, which is simple, works offline and needs no DuckDB extension.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel import _time
from keel._names import checked_name
from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.artifacts import ArtifactBackend
    from keel.monitoring._feedback import SqlFeedbackStore

PREFIX = "predictions"
# The fixed columns every file has, before the input.<col> / output.<col> ones.
BASE_COLUMNS = (
    "request_id",
    "deployment",
    "model",
    "model_version",
    "role",
    "timestamp",
    "latency_ms",
    "row",
    "status",  # HTTP status of the request; files written before it existed read as 200
)
_HOUR_MS = 3_600_000
# Past this many distinct request ids, one query for the deployment's labels beats many IN lists.
_ALL_LABELS_ABOVE = 20_000


def check_name(name: str, field: str = "name") -> str:
    """A deployment name is also a path segment of the prediction log (``keel._names``)."""
    return checked_name(name, field=field, max_length=128)


def hour_prefix(deployment: str, when_ms: int) -> str:
    """The folder of ``deployment``'s log for the hour holding ``when_ms``."""
    t = _time.to_datetime(when_ms)
    return f"{PREFIX}/deployment={deployment}/date={t:%Y-%m-%d}/hour={t:%H}"


def day_prefix(deployment: str, day: datetime) -> str:
    return f"{PREFIX}/deployment={deployment}/date={day:%Y-%m-%d}"


def column_array(values: list[Any]) -> pa.Array:
    """An Arrow column of ``values``; mixed or exotic values become their JSON text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        # Mixed or exotic values: keep them readable as JSON text rather than lose the batch.
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
        )


def partition_keys(
    backend: ArtifactBackend, deployment: str, start_ms: int, end_ms: int
) -> list[str]:
    """The log files of ``deployment`` in hour folders overlapping [start_ms, end_ms)."""
    keys: list[str] = []
    day = _time.to_datetime(start_ms).replace(hour=0, minute=0, second=0, microsecond=0)
    last = _time.to_datetime(end_ms - 1)
    while day <= last:
        prefix = day_prefix(deployment, day)
        for info in backend.iter_keys(prefix):
            parts = info.key.split("/")
            if not info.key.endswith(".parquet") or not parts[-2].startswith("hour="):
                continue
            try:
                hour_ms = int((day + timedelta(hours=int(parts[-2][5:]))).timestamp() * 1000)
            except ValueError:
                continue  # not a folder the writer makes
            if hour_ms < end_ms and hour_ms + _HOUR_MS > start_ms:
                keys.append(info.key)
        day += timedelta(days=1)
    return sorted(keys)


@contextmanager
def _local_paths(backend: ArtifactBackend, keys: list[str]) -> Iterator[list[str]]:
    from keel.artifacts import LocalBackend

    if isinstance(backend, LocalBackend):
        yield [str(backend.final_path(k)) for k in keys]
        return
    with tempfile.TemporaryDirectory(prefix="keel-predlog-") as tmp:
        paths = []
        for i, key in enumerate(keys):
            path = Path(tmp) / f"{i:08d}.parquet"
            with backend.open_reader(key) as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            paths.append(str(path))
        yield paths


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _empty(with_feedback: bool) -> pa.Table:
    import pyarrow as pa

    fields = [
        pa.field("request_id", pa.string()),
        pa.field("deployment", pa.string()),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("role", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("latency_ms", pa.float64()),
        pa.field("row", pa.int32()),
        pa.field("status", pa.int32()),
    ]
    if with_feedback:
        fields += [
            pa.field("label", pa.null()),
            pa.field("label_timestamp", pa.timestamp("us", tz="UTC")),
        ]
    return pa.schema(fields).empty_table()


def _with_status(table: pa.Table) -> pa.Table:
    """``status`` as int32 on every row: files written before the column existed (absent
    from all files, or null where DuckDB unioned old files with new ones) mean 200."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "status" not in table.column_names:
        return table.append_column(
            pa.field("status", pa.int32()), pa.repeat(pa.scalar(200, pa.int32()), table.num_rows)
        )
    index = table.column_names.index("status")
    column = pc.fill_null(table.column(index), 200).cast(pa.int32())
    return table.set_column(index, pa.field("status", pa.int32()), column)


def _labels(store: SqlFeedbackStore, deployment: str, ids: list[str]) -> pa.Table:
    import pyarrow as pa

    found = (
        store.list(deployment)
        if len(ids) > _ALL_LABELS_ABOVE
        else store.list(deployment, request_ids=ids)
    )
    return pa.table(
        {
            "request_id": pa.array([f.request_id for f in found], pa.string()),
            "label": column_array([f.label for f in found]) if found else pa.array([], pa.null()),
            "label_timestamp": pa.array([f.label_ms for f in found], pa.timestamp("ms", tz="UTC")),
        }
    )


def read_predictions(
    deployment: str,
    *,
    start: datetime | int | str,
    end: datetime | int | str,
    with_feedback: bool = True,
    as_: Literal["arrow", "pandas"] = "arrow",
    backend: ArtifactBackend | None = None,
    feedback_store: SqlFeedbackStore | None = None,
) -> Any:
    """The predictions of ``deployment`` with ``start <= timestamp < end`` (datetimes, naive
    meaning UTC, epoch ms, or ISO text), ordered by time, each with its ``label`` and
    ``label_timestamp`` (null when no feedback came) unless ``with_feedback`` is False.
    Returns a ``pyarrow.Table`` or, with ``as_="pandas"``, a DataFrame. ``backend`` and
    ``feedback_store`` default to the configured artifact and metadata stores."""
    import duckdb

    from keel.monitoring._feedback import open_feedback_store, to_ms

    check_name(deployment, "deployment")
    if as_ not in ("arrow", "pandas"):
        raise InvalidInput("must be 'arrow' or 'pandas'", field="as_")
    start_ms = to_ms(start, "start")
    end_ms = to_ms(end, "end")
    if start_ms is None or end_ms is None or end_ms <= start_ms:
        raise InvalidInput("must be after start", field="end")
    if backend is None:
        from keel.artifacts import open_backend

        backend = open_backend()
    keys = partition_keys(backend, deployment, start_ms, end_ms)
    if not keys:
        table = _empty(with_feedback)
        return table.to_pandas() if as_ == "pandas" else table
    con = duckdb.connect()
    try:
        with _local_paths(backend, keys) as paths:
            # The paths are the store's own (or our temp folder's), quoted by _sql_list.
            predictions = con.sql(
                f"SELECT * FROM read_parquet({_sql_list(paths)}, union_by_name = true) "
                "WHERE epoch_ms(timestamp) >= ? AND epoch_ms(timestamp) < ? "
                "ORDER BY timestamp, request_id, role, row",
                params=[start_ms, end_ms],
            ).to_arrow_table()
        predictions = _with_status(predictions)
        if with_feedback:
            ids = sorted(set(predictions.column("request_id").to_pylist()))
            own = feedback_store is None
            store = open_feedback_store() if feedback_store is None else feedback_store
            try:
                labels = _labels(store, deployment, ids)
            finally:
                if own:
                    store.close()
            con.register("p", predictions)
            con.register("f", labels)
            predictions = con.sql(
                "SELECT p.*, f.label, f.label_timestamp FROM p "
                "LEFT JOIN f ON p.request_id = f.request_id "
                'ORDER BY p."timestamp", p.request_id, p.role, p.row'
            ).to_arrow_table()
    finally:
        con.close()
    return predictions.to_pandas() if as_ == "pandas" else predictions
