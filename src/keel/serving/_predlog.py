"""The prediction log: every answered request as a row of a Parquet file in the artifact store,
written in batches by a background thread so the request path only appends to a list.

Layout (one folder per deployment and hour, so a reader opens only the hours it asks for)::

    predictions/deployment=<name>/date=YYYY-MM-DD/hour=HH/<YYYYMMDDTHHMMSSfffZ>-<uuid>.parquet

Each file is published through the backend's atomic writer: a reader sees a whole file or none.
The buffer is bounded; when it is full ``record`` drops the record, counts it and returns False
at once, so a slow or failing store never blocks or crashes serving.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel import _time
from keel.errors import InvalidInput
from keel.monitoring._predlog import check_name, column_array, hour_prefix

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.artifacts import ArtifactBackend
    from keel.serving._record import PredictionRecord

logger = logging.getLogger("keel.serving.predlog")

_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One row of the log: ``inputs`` and ``outputs`` map column -> value and become
    ``input.<col>`` / ``output.<col>`` columns. ``row`` is the row's index inside its request
    (0 for one-row requests). ``timestamp_ms`` (epoch ms, UTC) picks the hour partition."""

    request_id: str
    model_version: int | str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    latency_ms: float
    role: str = "champion"
    model: str = ""
    deployment: str = ""  # the writer's deployment is used when empty
    timestamp_ms: int = field(default_factory=_time.now_ms)
    row: int = 0
    status: int = 200  # the request's HTTP status: a failed request has no outputs


def _scalar(value: Any) -> Any:
    """A NumPy element as a plain Python value (lists for sub-arrays)."""
    return value.tolist() if hasattr(value, "tolist") else value


def rows_from_request(record: PredictionRecord, *, role: str = "champion") -> list[PredictionRow]:
    """The log rows of one answered request of the serving app: one row per input row, with
    the table model's columns (``input.<col>``) or the whole tensor row (``input.tensor``),
    and the prediction (``output.prediction``)."""
    inputs, outputs = record.inputs, record.outputs
    n = max(inputs.rows, 1) if inputs is not None else 1
    per_row = outputs is not None and outputs.ndim > 0 and len(outputs) == n
    rows = []
    for i in range(n):
        values: dict[str, Any] = {}
        if inputs is not None and inputs.columns is not None:
            values = {name: _scalar(column[i]) for name, column in inputs.columns.items()}
        elif inputs is not None and inputs.tensor is not None:
            values = {"tensor": _scalar(inputs.tensor[i] if inputs.tensor.ndim else inputs.tensor)}
        answer: dict[str, Any] = {}
        if outputs is not None:
            answer = {"prediction": _scalar(outputs[i]) if per_row else _scalar(outputs)}
        rows.append(
            PredictionRow(
                request_id=record.request_id,
                model_version=record.version,
                inputs=values,
                outputs=answer,
                latency_ms=record.latency_ms,
                role=role,
                model=record.model,
                timestamp_ms=record.timestamp_ms,
                row=i,
                status=record.status,
            )
        )
    return rows


def _row_count(item: PredictionRow | PredictionRecord) -> int:
    if isinstance(item, PredictionRow) or item.inputs is None:
        return 1
    return max(item.inputs.rows, 1)


def sampled(request_id: str, rate: float) -> bool:
    """Whether ``request_id`` is kept at ``rate``: a stable hash, so a request and its
    feedback are sampled alike and a replay keeps the same rows."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * (1 << 64)


def _excluded(side: str, name: str, exclude: frozenset[str]) -> bool:
    return name in exclude or f"{side}.{name}" in exclude


def to_table(
    records: Sequence[PredictionRow], *, deployment: str, exclude: Iterable[str] = ()
) -> pa.Table:
    """The Arrow table of ``records`` (the schema of one log file)."""
    import pyarrow as pa

    skip = frozenset(exclude)
    columns: dict[str, Any] = {
        "request_id": pa.array([r.request_id for r in records], pa.string()),
        "deployment": pa.array([r.deployment or deployment for r in records], pa.string()),
        "model": pa.array([r.model for r in records], pa.string()),
        "model_version": pa.array([str(r.model_version) for r in records], pa.string()),
        "role": pa.array([str(r.role) for r in records], pa.string()),
        "timestamp": pa.array([r.timestamp_ms for r in records], pa.timestamp("ms", tz="UTC")),
        "latency_ms": pa.array([float(r.latency_ms) for r in records], pa.float64()),
        "row": pa.array([r.row for r in records], pa.int32()),
        "status": pa.array([r.status for r in records], pa.int32()),
    }
    for side, attr in (("input", "inputs"), ("output", "outputs")):
        names: dict[str, None] = {}
        for r in records:
            names.update(dict.fromkeys(getattr(r, attr)))
        for name in names:
            if not _excluded(side, name, skip):
                values = [getattr(r, attr).get(name) for r in records]
                columns[f"{side}.{name}"] = column_array(values)
    return pa.table(columns)


class PredictionLogWriter:
    """Buffers predictions and writes them as Parquet files off the request path.

    ``record`` takes a ``PredictionRow`` or the serving app's ``PredictionRecord`` (a whole
    request, turned into rows by ``rows_from_request`` in the writer's thread, not on the
    request path); the writer itself is callable, so it can be the app's ``on_prediction``.
    Every count and bound is in rows.

    A file is written when ``batch_rows`` records are waiting, when the oldest has waited
    ``flush_interval_s``, on ``flush()`` and on ``close()``. At most ``max_buffer`` records
    wait; beyond that ``record`` drops. ``sample_rate`` keeps that share of requests (by a
    stable hash of the request id); ``exclude_columns`` names input/output columns never
    written (``"ssn"`` on both sides, ``"input.ssn"`` on one). A file the store refuses is
    logged and its records counted in ``dropped`` (and ``write_errors``): the writer goes on.
    """

    def __init__(
        self,
        backend: ArtifactBackend,
        *,
        deployment: str,
        batch_rows: int = 1000,
        flush_interval_s: float = 5.0,
        max_buffer: int = 100_000,
        sample_rate: float = 1.0,
        exclude_columns: Iterable[str] = (),
    ) -> None:
        self.deployment = check_name(deployment, "deployment")
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise InvalidInput("must be a whole number >= 1", field="batch_rows")
        if not isinstance(max_buffer, int) or max_buffer < batch_rows:
            raise InvalidInput("must be a whole number >= batch_rows", field="max_buffer")
        if not math.isfinite(flush_interval_s) or flush_interval_s <= 0:
            raise InvalidInput("must be a positive number of seconds", field="flush_interval_s")
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidInput("must be between 0 and 1", field="sample_rate")
        self.backend = backend
        self.batch_rows = batch_rows
        self.flush_interval_s = float(flush_interval_s)
        self.max_buffer = max_buffer
        self.sample_rate = float(sample_rate)
        self.exclude_columns = frozenset(exclude_columns)
        self.logged = 0  # rows in published files
        self.dropped = 0  # buffer full, closed, or the store refused the file
        self.sampled_out = 0
        self.write_errors = 0  # files the store refused
        self._buffer: list[PredictionRow | PredictionRecord] = []
        self._buffered_rows = 0
        self._first_ms = 0.0  # monotonic time the oldest waiting record arrived
        self._accepted = 0
        self._done = 0  # accepted records that are written or given up on
        self._flush_wanted = False
        self._closing = False
        self._last_warning = -math.inf
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name=f"keel-predlog-{deployment}", daemon=True
        )
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records accepted but not yet written."""
        with self._cond:
            return self._accepted - self._done

    def record(self, record: PredictionRow | PredictionRecord) -> bool:
        """Queue ``record``; never blocks on I/O. False if it was not kept (sampled out,
        buffer full, or the writer is closed)."""
        n = _row_count(record)
        if not sampled(record.request_id, self.sample_rate):
            with self._cond:
                self.sampled_out += n
            return False
        with self._cond:
            if self._closing or self._buffered_rows + n > self.max_buffer:
                self.dropped += n
                self._warn_dropped()
                return False
            first = not self._buffer
            if first:
                self._first_ms = time.monotonic()
            self._buffer.append(record)
            self._buffered_rows += n
            self._accepted += n
            # Wake the writer to start the interval clock, or to write a full batch.
            if first or self._buffered_rows >= self.batch_rows:
                self._cond.notify_all()
        return True

    __call__ = record  # so the writer itself can be the app's ``on_prediction`` hook

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            logger.warning(
                "prediction log for %r: buffer full (%d records) or closed; %d dropped so far",
                self.deployment,
                self.max_buffer,
                self.dropped,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything recorded so far; True once it is written (or given up on),
        False if ``timeout`` passed first."""
        with self._cond:
            target = self._accepted
            self._flush_wanted = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is buffered and stop the thread. Records arriving afterwards are
        dropped. If the store stalls past ``timeout`` the rest is reported, not waited for."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "prediction log for %r: %d records still unwritten after %.1f s at close",
                self.deployment,
                self.pending,
                timeout or 0.0,
            )

    def __enter__(self) -> PredictionLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _due(self) -> bool:
        if not self._buffer:
            return False
        if self._closing or self._flush_wanted or self._buffered_rows >= self.batch_rows:
            return True
        return time.monotonic() - self._first_ms >= self.flush_interval_s

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closing and not self._buffer:
                        return
                    if not self._buffer:
                        self._flush_wanted = False
                        self._cond.wait()
                    else:
                        left = self.flush_interval_s - (time.monotonic() - self._first_ms)
                        self._cond.wait(max(left, 0.001))
                batch, self._buffer = self._buffer, []
                rows, self._buffered_rows = self._buffered_rows, 0
                self._flush_wanted = False
            written = self._write(batch)
            with self._cond:
                self.logged += written
                self.dropped += rows - written
                self._done += rows
                self._cond.notify_all()

    def _expand(self, batch: list[PredictionRow | PredictionRecord]) -> list[PredictionRow]:
        rows: list[PredictionRow] = []
        for item in batch:
            if isinstance(item, PredictionRow):
                rows.append(item)
                continue
            try:
                # The app's record carries a role once it serves deployments (shadow/canary).
                rows.extend(rows_from_request(item, role=str(getattr(item, "role", "champion"))))
            except Exception:  # one odd request must not cost the batch
                logger.exception(
                    "prediction log for %r: cannot turn request %s into rows; dropped",
                    self.deployment,
                    item.request_id,
                )
        return rows

    def _write(self, batch: list[PredictionRow | PredictionRecord]) -> int:
        """Write ``batch`` as one file per hour; returns the rows published."""
        by_hour: dict[str, list[PredictionRow]] = {}
        for r in self._expand(batch):
            by_hour.setdefault(hour_prefix(self.deployment, r.timestamp_ms), []).append(r)
        written = 0
        for folder, rows in by_hour.items():
            try:
                self._write_file(folder, rows)
            except Exception:  # the writer thread must outlive any store failure
                self.write_errors += 1
                logger.exception(
                    "prediction log for %r: could not write %d rows under %s; dropped",
                    self.deployment,
                    len(rows),
                    folder,
                )
            else:
                written += len(rows)
        return written

    def _write_file(self, folder: str, rows: list[PredictionRow]) -> None:
        import pyarrow.parquet as pq

        table = to_table(rows, deployment=self.deployment, exclude=self.exclude_columns)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
        key = f"{folder}/{stamp}Z-{uuid.uuid4().hex}.parquet"
        with self.backend.open_writer(key) as writer:
            writer.write(sink.getbuffer())
