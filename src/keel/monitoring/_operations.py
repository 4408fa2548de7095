"""Operations of a deployment over a window of its prediction log: requests, throughput,
latency quantiles and error rates, overall, per role, per model version and per time bucket.

Counted per request, not per row: a request of 100 rows is one request with one latency (the
largest its rows carry) and one status. The headline numbers (latency, error rates) are those
of the champion's requests, the ones clients waited for; shadow challengers answer nobody and
appear under ``roles``. A request's ``status`` is its HTTP status (the log column; files
written before it existed, and null cells, mean 200): ``error_rate`` is the share answered
>= 500, ``client_error_rate`` the share answered 4xx. Quantiles are NumPy's default (linear
interpolation). All work is grouped Arrow/NumPy operations: no Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.monitoring._quantities import Quantity

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.monitoring._windows import Window

QUANTILES = (50, 95, 99)


@dataclass(frozen=True, slots=True)
class OperationStats:
    """Requests, rows, throughput, latency quantiles (ms) and error rates of one group.
    Values are None when the group has no request (or no span to divide by)."""

    requests: int
    rows: int
    throughput_rps: float | None
    latency_ms: dict[str, float | None]
    error_rate: float | None
    client_error_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rows": self.rows,
            "throughput_rps": self.throughput_rps,
            "latency_ms": dict(self.latency_ms),
            "error_rate": self.error_rate,
            "client_error_rate": self.client_error_rate,
        }


@dataclass(frozen=True, slots=True)
class OperationsBucket:
    start_ms: int
    end_ms: int
    stats: OperationStats

    def to_dict(self) -> dict[str, Any]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, **self.stats.to_dict()}


@dataclass(frozen=True, slots=True)
class OperationsReport:
    """The operations of one window: ``overall`` (every request counted, latency and error
    rates of the champion's), ``roles`` and ``versions`` (each role's / version's own
    requests) and ``buckets`` (time series, when asked for)."""

    window: Window | None
    requests: int
    overall: OperationStats
    roles: dict[str, OperationStats] = field(default_factory=dict)
    versions: dict[str, OperationStats] = field(default_factory=dict)
    buckets: tuple[OperationsBucket, ...] = ()
    has_status: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": None if self.window is None else self.window.to_dict(),
            "requests": self.requests,
            "overall": self.overall.to_dict(),
            "roles": {k: v.to_dict() for k, v in self.roles.items()},
            "versions": {k: v.to_dict() for k, v in self.versions.items()},
            "buckets": [b.to_dict() for b in self.buckets],
            "has_status": self.has_status,
        }

    def quantities(self) -> dict[str, Quantity]:
        o = self.overall
        n = o.requests
        out = {
            "requests": Quantity(float(self.requests), self.requests),
            "throughput_rps": Quantity(o.throughput_rps, self.requests),
            "error_rate": Quantity(o.error_rate, n),
            "client_error_rate": Quantity(o.client_error_rate, n),
        }
        for name, value in o.latency_ms.items():
            out[f"latency.{name}_ms"] = Quantity(value, n)
        return out


def _per_request(table: pa.Table) -> pa.Table:
    """One row per (request, role): its latency (largest of its rows), status (largest),
    time (earliest), version and row count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from keel.monitoring._windows import timestamps_ms

    if "status" in table.column_names:
        status = pc.cast(table.column("status"), pa.int64()).fill_null(200)
    else:
        status = pa.array(np.full(table.num_rows, 200, dtype=np.int64))
    work = pa.table(
        {
            "request_id": table.column("request_id").cast(pa.string()),
            "role": table.column("role").cast(pa.string()).fill_null("champion"),
            "model_version": table.column("model_version").cast(pa.string()).fill_null(""),
            "latency_ms": pc.cast(table.column("latency_ms"), pa.float64()),
            "status": status,
            "ts": pa.array(timestamps_ms(table), pa.int64()),
        }
    )
    import duckdb

    con = duckdb.connect()
    try:
        con.register("work", work)
        # DuckDB groups a million string keys about twice as fast as Arrow's group_by here.
        return con.sql(
            "SELECT request_id, role, max(latency_ms) AS latency_ms_max, "
            "max(status) AS status_max, min(ts) AS ts_min, "
            "min(model_version) AS model_version_min, count(*) AS ts_count "
            "FROM work GROUP BY request_id, role"
        ).to_arrow_table()
    finally:
        con.close()


def _codes(column: pa.ChunkedArray) -> tuple[list[str], Any]:
    """The distinct values of a text column and each row's index into them."""
    import numpy as np

    encoded = column.combine_chunks().dictionary_encode()
    return [str(v) for v in encoded.dictionary.to_pylist()], np.asarray(encoded.indices)


def _stats(latency: Any, status: Any, rows: int, span_ms: int | None) -> OperationStats:
    import numpy as np

    n = len(latency)
    if n == 0:
        return OperationStats(0, rows, None, {f"p{q}": None for q in QUANTILES}, None, None)
    finite = latency[np.isfinite(latency)]
    quantiles = np.quantile(finite, [q / 100 for q in QUANTILES]) if len(finite) else None
    return OperationStats(
        requests=n,
        rows=rows,
        throughput_rps=None if not span_ms else n / (span_ms / 1000),
        latency_ms={
            f"p{q}": None if quantiles is None else float(quantiles[i])
            for i, q in enumerate(QUANTILES)
        },
        error_rate=float(np.mean(status >= 500)),
        client_error_rate=float(np.mean((status >= 400) & (status < 500))),
    )


def assess_operations(
    log: pa.Table | Any, *, bucket_ms: int | None = None, window: Window | None = None
) -> OperationsReport:
    """Requests, throughput, latency p50/p95/p99 and error rates of a window of the prediction
    log (a ``pyarrow.Table`` or DataFrame as ``read_window`` returns). Throughput divides by
    ``window``, else the window recorded in the table by ``read_window``, else the span from
    the first to the last request. ``bucket_ms`` adds a series of buckets aligned to multiples
    of it since the epoch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from keel.errors import InvalidInput
    from keel.monitoring._windows import window_of

    table = log if isinstance(log, pa.Table) else pa.Table.from_pandas(log, preserve_index=False)
    missing = {"request_id", "role", "model_version", "latency_ms", "timestamp"} - set(
        table.column_names
    )
    if missing:
        raise InvalidInput(
            f"the log lacks column(s) {sorted(missing)}; pass a table from read_window",
            field="log",
        )
    if bucket_ms is not None and (isinstance(bucket_ms, bool) or bucket_ms <= 0):
        raise InvalidInput("must be a positive number of milliseconds", field="bucket_ms")
    window = window or window_of(table)
    grouped = _per_request(table)
    role_names, roles = _codes(grouped.column("role"))
    version_names, versions = _codes(grouped.column("model_version_min"))
    latency = grouped.column("latency_ms_max").to_numpy(zero_copy_only=False).astype(np.float64)
    status = grouped.column("status_max").to_numpy(zero_copy_only=False).astype(np.int64)
    times = grouped.column("ts_min").to_numpy(zero_copy_only=False).astype(np.int64)
    rows = grouped.column("ts_count").to_numpy(zero_copy_only=False).astype(np.int64)
    requests = int(pc.count_distinct(grouped.column("request_id")).as_py())

    if window is not None:
        span: int | None = window.duration_ms
    else:
        span = int(times.max() - times.min()) if len(times) > 1 else None
    champion = role_names.index("champion") if "champion" in role_names else -1
    front = roles == champion if champion >= 0 else np.ones(len(roles), bool)

    overall = _stats(latency[front], status[front], int(table.num_rows), span)
    overall = OperationStats(
        requests=int(front.sum()),
        rows=overall.rows,
        throughput_rps=None if not span else requests / (span / 1000),
        latency_ms=overall.latency_ms,
        error_rate=overall.error_rate,
        client_error_rate=overall.client_error_rate,
    )
    by_role: dict[str, OperationStats] = {}
    by_version: dict[str, OperationStats] = {}
    for names, codes, out in ((role_names, roles, by_role), (version_names, versions, by_version)):
        for code, name in sorted(enumerate(names), key=lambda item: item[1]):  # over groups
            pick = codes == code
            out[name] = _stats(latency[pick], status[pick], int(rows[pick].sum()), span)
    buckets: list[OperationsBucket] = []
    if bucket_ms is not None and len(times):
        step = int(bucket_ms)
        starts = times - times % step
        for start in np.unique(starts):  # over buckets; each is one vectorised selection
            pick = (starts == start) & front
            s, e = int(start), int(start) + step
            if window is not None:
                s, e = max(s, window.start_ms), min(e, window.end_ms)
            buckets.append(
                OperationsBucket(
                    s,
                    e,
                    _stats(latency[pick], status[pick], int(rows[starts == start].sum()), e - s),
                )
            )
    return OperationsReport(
        window=window,
        requests=requests,
        overall=overall,
        roles=by_role,
        versions=by_version,
        buckets=tuple(buckets),
        has_status="status" in table.column_names,
    )
