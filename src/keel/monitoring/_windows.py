"""Windows of the prediction log: the time range a monitor looks at, parsed from the text users
write (``24h``, ``2h30m``, ``7d``, ``2026-11-01T00:00..2026-11-02T00:00``), read back as one
Arrow table (``read_window``), and cut into aligned time buckets for per-bucket series.

A window is half-open, ``start_ms <= timestamp < end_ms``, in epoch milliseconds (UTC). Buckets
are aligned to multiples of their length since the epoch (hours start on the hour), so the
series of two monitor runs line up. ``read_window`` records the window it read in the table's
schema metadata (``keel.window.start_ms`` / ``keel.window.end_ms``), so a report built from the
table (throughput, coverage per bucket) knows the span even where no request arrived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from keel import _time
from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.artifacts import ArtifactBackend
    from keel.monitoring._feedback import SqlFeedbackStore

_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_PART = re.compile(r"(\d+)([wdhms])")
_HOUR_MS = 3_600_000
# At most this many buckets per window: a chart of more points is unreadable and costly.
MAX_BUCKETS = 10_000
MAX_LAST_ROWS = 50_000_000
START_KEY = b"keel.window.start_ms"
END_KEY = b"keel.window.end_ms"


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open time range ``[start_ms, end_ms)`` in epoch milliseconds, UTC."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise InvalidInput(
                f"the window ends ({_time.format_ms(self.end_ms)}) before it starts "
                f"({_time.format_ms(self.start_ms)}); give the earlier time first",
                field="window",
            )

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start": _time.format_ms(self.start_ms),
            "end": _time.format_ms(self.end_ms),
        }


def parse_duration(text: str, *, field: str = "window") -> int:
    """``90m``, ``2h30m``, ``7d``, ``1w``, ``45s`` as milliseconds (> 0)."""
    spec = text.strip().lower()
    if not _DURATION.fullmatch(spec):
        raise InvalidInput(
            f"not a duration: {text!r}; write e.g. '24h', '90m', '7d' or '2h30m'", field=field
        )
    total = sum(int(n) * _UNIT_MS[unit] for n, unit in _PART.findall(spec))
    if total <= 0:
        raise InvalidInput(f"must be longer than zero: {text!r}", field=field)
    return total


def parse_window(text: str | Window, *, now_ms: int | None = None) -> Window:
    """A window from text: a duration back from ``now_ms`` (default: now), as ``24h``,
    ``90m``, ``7d`` or ``2h30m``; or an explicit range ``START..END`` of ISO-8601 times
    (naive times are UTC), e.g. ``2026-11-01T00:00..2026-11-02T00:00``."""
    from keel.monitoring._feedback import to_ms

    if isinstance(text, Window):
        return text
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("expected a duration such as '24h' or a range 'A..B'", field="window")
    if ".." in text:
        first, _, second = text.partition("..")
        try:
            start, end = to_ms(first.strip(), "window"), to_ms(second.strip(), "window")
        except InvalidInput as exc:
            raise InvalidInput(
                f"not a time range: {text!r} ({exc}); write START..END in ISO-8601, "
                "e.g. '2026-11-01T00:00..2026-11-02T00:00'",
                field="window",
            ) from None
        assert start is not None and end is not None  # to_ms returns None only for None
        return Window(start, end)
    end_ms = _time.now_ms() if now_ms is None else int(now_ms)
    return Window(end_ms - parse_duration(text), end_ms)


def split_buckets(window: Window, every: str | int = "1h") -> list[Window]:
    """``window`` cut into buckets of ``every`` (a duration or milliseconds) aligned to
    multiples of ``every`` since the epoch; the first and last are clipped to the window."""
    step = parse_duration(every, field="every") if isinstance(every, str) else int(every)
    if step <= 0:
        raise InvalidInput("must be longer than zero", field="every")
    first = window.start_ms - window.start_ms % step
    if (window.end_ms - first) // step + 1 > MAX_BUCKETS:
        raise InvalidInput(
            f"more than {MAX_BUCKETS} buckets; choose a longer 'every' or a shorter window",
            field="every",
        )
    return [
        Window(max(s, window.start_ms), min(s + step, window.end_ms))
        for s in range(first, window.end_ms, step)
    ]


def with_window(table: pa.Table, window: Window) -> pa.Table:
    """``table`` with ``window`` recorded in its schema metadata."""
    meta = dict(table.schema.metadata or {})
    meta[START_KEY] = str(window.start_ms).encode()
    meta[END_KEY] = str(window.end_ms).encode()
    return table.replace_schema_metadata(meta)


def window_of(table: pa.Table) -> Window | None:
    """The window recorded by ``read_window`` in ``table``'s metadata, if any."""
    meta = table.schema.metadata or {}
    if START_KEY not in meta or END_KEY not in meta:
        return None
    return Window(int(meta[START_KEY]), int(meta[END_KEY]))


def _hours(backend: ArtifactBackend, deployment: str) -> dict[int, list[str]]:
    """The log files of ``deployment`` by the start of their hour folder (epoch ms)."""
    from datetime import UTC, datetime

    from keel.monitoring._predlog import PREFIX

    hours: dict[int, list[str]] = {}
    for info in backend.iter_keys(f"{PREFIX}/deployment={deployment}/"):
        parts = info.key.split("/")
        if len(parts) < 4 or not info.key.endswith(".parquet"):
            continue
        date, hour = parts[-3], parts[-2]
        if not date.startswith("date=") or not hour.startswith("hour="):
            continue
        try:
            day = datetime.strptime(date[5:], "%Y-%m-%d").replace(tzinfo=UTC)
            start = day + timedelta(hours=int(hour[5:]))
        except ValueError:
            continue  # not a folder the writer makes
        hours.setdefault(int(start.timestamp() * 1000), []).append(info.key)
    return hours


def _row_count(backend: ArtifactBackend, key: str) -> int:
    """Rows in one log file, from its Parquet footer (no data pages are read)."""
    import pyarrow.parquet as pq

    from keel.artifacts import LocalBackend

    if isinstance(backend, LocalBackend):
        return int(pq.read_metadata(backend.final_path(key)).num_rows)
    with backend.open_reader(key) as f:
        return int(pq.ParquetFile(f).metadata.num_rows)


def read_window(
    deployment: str,
    window: Window | str | None = None,
    *,
    last_rows: int | None = None,
    now_ms: int | None = None,
    backend: ArtifactBackend | None = None,
    feedback_store: SqlFeedbackStore | None = None,
    with_feedback: bool = True,
) -> pa.Table:
    """The prediction log of ``deployment`` over ``window`` (a ``Window`` or text for
    ``parse_window``), or its newest ``last_rows`` rows before ``now_ms``, joined with the
    labels (see ``read_predictions``). The window read is recorded in the table's metadata;
    for ``last_rows`` it runs from the oldest row kept to ``now_ms``. Ordered by time."""
    from keel.monitoring._predlog import _empty, check_name, read_predictions

    check_name(deployment, "deployment")
    if (window is None) == (last_rows is None):
        raise InvalidInput("give either a window or last_rows, not both or neither", field="window")
    if backend is None:
        from keel.artifacts import open_backend

        backend = open_backend()
    end_ms = _time.now_ms() if now_ms is None else int(now_ms)

    def read(start_ms: int, stop_ms: int) -> pa.Table:
        return read_predictions(
            deployment,
            start=start_ms,
            end=stop_ms,
            with_feedback=with_feedback,
            backend=backend,
            feedback_store=feedback_store,
        )

    if window is not None:
        span = parse_window(window, now_ms=end_ms)
        return with_window(read(span.start_ms, span.end_ms), span)

    if isinstance(last_rows, bool) or not isinstance(last_rows, int):
        raise InvalidInput("must be a whole number of rows", field="last_rows")
    if not 1 <= last_rows <= MAX_LAST_ROWS:
        raise InvalidInput(f"must be within 1..{MAX_LAST_ROWS}", field="last_rows")
    hours = _hours(backend, deployment)
    # Newest hour first; footers give an upper bound of the rows before end_ms in each hour.
    older = sorted((h for h in hours if h < end_ms), reverse=True)
    table = _empty(with_feedback)
    counted, start_ms = 0, end_ms
    while older:
        while older and counted < last_rows:
            hour = older.pop(0)
            counted += sum(_row_count(backend, k) for k in hours[hour])
            start_ms = hour
        table = read(start_ms, end_ms)
        if table.num_rows >= last_rows:
            break
        counted = table.num_rows  # rows at or after end_ms were counted; look further back
    if table.num_rows > last_rows:
        table = table.slice(table.num_rows - last_rows)
    first = start_ms
    if table.num_rows:
        first = int(timestamps_ms(table.slice(0, 1))[0])
    return with_window(table, Window(min(first, end_ms - 1), end_ms))


def timestamps_ms(table: pa.Table, column: str = "timestamp") -> Any:
    """``column`` of ``table`` as an int64 NumPy array of epoch milliseconds (nulls as the
    smallest int64)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ms", tz=col.type.tz))
        ints = pc.cast(col, pa.int64())
    elif pa.types.is_integer(col.type):
        ints = pc.cast(col, pa.int64())
    else:
        raise InvalidInput(f"{column!r} is not a time column ({col.type})", field=column)
    return np.asarray(ints.fill_null(np.iinfo(np.int64).min).to_numpy(), dtype=np.int64)
