"""The log's ``status`` column through the reader: written on every row, and files written
before the column existed read as 200, alone or unioned (by name) with newer files."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from keel.artifacts import LocalBackend
from keel.monitoring._predlog import BASE_COLUMNS, hour_prefix, read_predictions
from keel.serving._predlog import PredictionLogWriter, PredictionRow, to_table

HOUR_MS = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS


def _old_file(backend: LocalBackend, deployment: str, ids: list[str]) -> None:
    """A log file as written before ``status`` existed (the column dropped)."""
    rows = [PredictionRow(i, 1, {"x": 1.0}, {"prediction": 0}, 1.0, timestamp_ms=T0) for i in ids]
    table = to_table(rows, deployment=deployment).drop_columns(["status"])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    key = f"{hour_prefix(deployment, T0)}/old-{ids[0]}.parquet"
    with backend.open_writer(key) as writer:
        writer.write(sink.getbuffer())


def test_old_files_read_as_200_and_new_rows_keep_their_status(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "store")
    _old_file(backend, "only-old", ["a", "b"])
    old = read_predictions(
        "only-old", start=T0, end=T0 + HOUR_MS, backend=backend, with_feedback=False
    )
    assert old.column("status").to_pylist() == [200, 200]
    assert old.schema.field("status").type == pa.int32()

    _old_file(backend, "mixed", ["a"])
    with PredictionLogWriter(backend, deployment="mixed") as writer:
        writer.record(PredictionRow("b", 1, {"x": 2.0}, {}, 1.0, timestamp_ms=T0 + 1, status=503))
        writer.record(
            PredictionRow("c", 1, {"x": 3.0}, {"prediction": 1}, 1.0, timestamp_ms=T0 + 2)
        )
    mixed = read_predictions(
        "mixed", start=T0, end=T0 + HOUR_MS, backend=backend, with_feedback=False
    )
    assert dict(
        zip(mixed.column("request_id").to_pylist(), mixed.column("status").to_pylist(), strict=True)
    ) == {
        "a": 200,
        "b": 503,
        "c": 200,
    }
    assert set(BASE_COLUMNS) <= set(mixed.column_names)

    empty = read_predictions("none", start=T0, end=T0 + HOUR_MS, backend=backend)
    assert empty.schema.field("status").type == pa.int32()
    assert set(BASE_COLUMNS) <= set(empty.column_names)
