"""Coarse distributions of each monitored column, reference beside current, for the report's
charts: 20 equal-width bins between the reference's minimum and maximum (plus counts below and
above), or the reference's most frequent categories plus ``other``.

The reference side comes from its summary's fine bins (each fine bin is counted in the coarse
bin holding its upper edge, which moves a value by less than one fine bin), so a stored
profile is enough; the current side is counted exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.monitoring._reference import CATEGORICAL, NUMERIC, ColumnSummary

if TYPE_CHECKING:
    import pyarrow as pa

BINS = 20
TOP_CATEGORIES = 12


def _numeric(ref: ColumnSummary, column: pa.ChunkedArray) -> dict[str, Any] | None:
    import numpy as np

    from keel.monitoring._reference import finite_values

    if ref.min is None or ref.max is None or not ref.edges:
        return None
    low, high = float(ref.min), float(ref.max)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, BINS + 1)

    def count(values: Any) -> tuple[list[int], int, int]:
        values = np.asarray(values, dtype=float)
        inside = values[(values >= low) & (values <= high)]
        hist, _ = np.histogram(inside, bins=edges)
        return [int(c) for c in hist], int((values < low).sum()), int((values > high).sum())

    if ref.values is not None:
        reference, ref_below, ref_above = count(ref.values)
    else:
        # counts[j] holds values in (edges[j-1], edges[j]]; counts[-1] those above the max.
        fine_edges = np.asarray(ref.edges, dtype=float)
        fine = np.asarray(ref.counts[: len(fine_edges)], dtype=np.int64)
        slot = np.clip(np.searchsorted(edges, fine_edges, side="right") - 1, 0, BINS - 1)
        reference = [int(c) for c in np.bincount(slot, weights=fine, minlength=BINS)]
        ref_below, ref_above = 0, int(sum(ref.counts[len(fine_edges) :]))
    current, below, above = count(finite_values(column))
    return {
        "kind": NUMERIC,
        "edges": [float(e) for e in edges],
        "reference": reference,
        "current": current,
        "reference_outside": [ref_below, ref_above],
        "current_outside": [below, above],
    }


def _categorical(ref: ColumnSummary, column: pa.ChunkedArray) -> dict[str, Any]:
    from keel.monitoring._reference import category_counts

    shown = list(ref.categories[:TOP_CATEGORIES])
    ref_counts = list(ref.counts[:TOP_CATEGORIES])
    ref_other = ref.count - sum(ref_counts)
    current = category_counts(column)
    cur_counts = [int(current.get(c, 0)) for c in shown]
    return {
        "kind": CATEGORICAL,
        "categories": shown,
        "reference": [int(c) for c in ref_counts],
        "current": cur_counts,
        "reference_other": int(ref_other),
        "current_other": int(sum(current.values()) - sum(cur_counts)),
    }


def distributions(
    summaries: dict[str, ColumnSummary], table: pa.Table, columns: list[str]
) -> dict[str, dict[str, Any]]:
    """``column -> distribution`` for each of ``columns`` found in both sides."""
    from keel.monitoring._reference import column_kind

    out: dict[str, dict[str, Any]] = {}
    present = set(table.column_names)
    for name in columns:
        ref = summaries.get(name)
        if ref is None or name not in present:
            continue
        column = table.column(name)
        kind = column_kind(column.type)
        if kind != ref.kind:
            continue
        if kind == NUMERIC:
            found = _numeric(ref, column)
            if found is not None:
                out[name] = found
        elif kind == CATEGORICAL:
            out[name] = _categorical(ref, column)
    return out
