"""Schema and profile of a table, computed column by column with Arrow compute kernels and
NumPy (no Python loop over rows): row count, type, null share, distinct count, min/max/mean/std
and quantiles for numbers, top values for categories, and a histogram for drift comparison
(20 fixed-width bins between min and max for numbers; counts of the top categories otherwise).
"""

from __future__ import annotations

import math
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
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.cast(pa.float64())
    values = pc.filter(values, pc.is_finite(values))  # drops nulls, NaN and infinities
    out["kind"] = "numeric"
    if len(values) == 0:
        return
    min_max = pc.min_max(values)
    out["min"] = _num(min_max["min"].as_py())
    out["max"] = _num(min_max["max"].as_py())
    out["mean"] = _num(pc.mean(values).as_py())
    out["std"] = _num(pc.stddev(values, ddof=1).as_py()) if len(values) > 1 else 0.0
    quantiles = pc.quantile(values, q=list(QUANTILES), interpolation="linear")
    out["quantiles"] = {
        str(q): _num(v) for q, v in zip(QUANTILES, quantiles.to_pylist(), strict=True)
    }
    lo, hi = out["min"], out["max"]
    if hi == lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values.to_numpy(), bins=BINS, range=(lo, hi))
    out["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _categorical(column: pa.ChunkedArray, out: dict[str, Any]) -> None:
    import pyarrow.compute as pc

    out["kind"] = "categorical"
    counts = pc.value_counts(column.drop_null())
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
    hashable = not (pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))
    if hashable:
        out["distinct"] = int(pc.count_distinct(column, mode="only_valid").as_py())
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        _numeric(column, out)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        _categorical(column, out)
    elif pa.types.is_temporal(t):
        _temporal(column, out)
    else:
        out["kind"] = "other"
    return out


def profile_table(table: pa.Table) -> dict[str, Any]:
    """The profile stored with a tabular version (JSON-ready: no NaN, no NumPy scalars)."""
    return {
        "rows": table.num_rows,
        "columns": {name: profile_column(table.column(name)) for name in table.column_names},
    }
