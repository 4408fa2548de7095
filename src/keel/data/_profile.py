"""Schema and profile of a table, computed column by column with Arrow compute kernels and
NumPy (no Python loop over rows): row count, type, null share, distinct count, min/max/mean/std
and quantiles for numbers, top values for categories, and a histogram for drift comparison
(20 fixed-width bins between min and max for numbers; counts of the top categories otherwise).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP = 10
HISTOGRAM_CATEGORIES = 50


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    f = float(value)
    return f if math.isfinite(f) else None


def schema_of(table: pa.Table) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, str(f.type)) for f in table.schema)


def _numeric(column: pa.ChunkedArray, out: dict[str, Any]) -> None:
    # One sort in NumPy gives min, max, quantiles and the distinct count: Arrow's hash-based
    # count_distinct costs ~0.5 s per million floats, the sort ~0.07 s.
    import numpy as np
    import pyarrow as pa

    values = column.cast(pa.float64()).to_numpy()  # nulls become NaN
    values = np.sort(values[np.isfinite(values)])  # statistics leave out NaN and infinities
    out["kind"] = "numeric"
    out["distinct"] = int(np.count_nonzero(np.diff(values))) + 1 if len(values) else 0
    if len(values) == 0:
        return
    lo, hi = float(values[0]), float(values[-1])
    out["min"] = _num(lo)
    out["max"] = _num(hi)
    out["mean"] = _num(values.mean())
    out["std"] = _num(values.std(ddof=1)) if len(values) > 1 else 0.0
    positions = np.asarray(QUANTILES) * (len(values) - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, len(values) - 1)
    quantiles = values[below] + (values[above] - values[below]) * (positions - below)
    out["quantiles"] = {str(q): _num(v) for q, v in zip(QUANTILES, quantiles, strict=True)}
    counts, edges = np.histogram(values, bins=BINS, range=(lo, hi if hi > lo else lo + 1.0))
    out["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _categorical(column: pa.ChunkedArray, out: dict[str, Any]) -> None:
    import pyarrow.compute as pc

    out["kind"] = "categorical"
    counts = pc.value_counts(column.drop_null())
    out["distinct"] = len(counts)
    if len(counts) == 0:
        return
    values = counts.field("values")
    freq = counts.field("counts")
    order = pc.array_sort_indices(freq, order="descending")
    keep = order[:HISTOGRAM_CATEGORIES]
    top_values = [_label(v) for v in pc.take(values, keep).to_pylist()]
    top_counts = [int(c) for c in pc.take(freq, keep).to_pylist()]
    out["top"] = [[v, c] for v, c in zip(top_values[:TOP], top_counts[:TOP], strict=True)]
    other = int(pc.sum(freq).as_py()) - sum(top_counts)
    out["histogram"] = {"categories": top_values, "counts": top_counts, "other": other}


def _label(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _temporal(column: pa.ChunkedArray, out: dict[str, Any]) -> None:
    import pyarrow.compute as pc

    out["kind"] = "temporal"
    if column.null_count == len(column):
        return
    min_max = pc.min_max(column)
    out["min"] = str(min_max["min"].as_py())
    out["max"] = str(min_max["max"].as_py())


def profile_column(column: pa.ChunkedArray) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    rows = len(column)
    out: dict[str, Any] = {
        "type": str(t),
        "null_share": (column.null_count / rows) if rows else 0.0,
    }
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        _numeric(column, out)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        _categorical(column, out)
    elif pa.types.is_temporal(t):
        out["distinct"] = int(pc.count_distinct(column, mode="only_valid").as_py())
        _temporal(column, out)
    else:
        out["kind"] = "other"
    return out


def profile_table(table: pa.Table) -> dict[str, Any]:
    """The profile stored with a tabular version (JSON-ready: no NaN, no NumPy scalars)."""
    from concurrent.futures import ThreadPoolExecutor

    names = table.column_names
    # NumPy sorts and Arrow kernels release the GIL: columns profile in parallel.
    with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1) or 1) as pool:
        profiles = list(pool.map(lambda n: profile_column(table.column(n)), names))
    return {"rows": table.num_rows, "columns": dict(zip(names, profiles, strict=True))}
