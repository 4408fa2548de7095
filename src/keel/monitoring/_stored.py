"""Reading a dataset version's stored profile (``keel.data._profile``) as a drift reference.

Its numeric histogram has 20 fixed-width bins between the minimum and the maximum
(``np.histogram``: half-open bins, the last one closed); here each becomes the bin ending at
its upper edge, which moves a value by less than one bin width. With no quantiles beyond the
seven stored, PSI and Jensen-Shannon use the 20 bins themselves.
"""

from __future__ import annotations

from typing import Any

from keel.monitoring._reference import (
    CATEGORICAL,
    NUMERIC,
    UNSUPPORTED,
    ColumnSummary,
)


def summary_from_data_profile(name: str, col: dict[str, Any], *, rows: int) -> ColumnSummary:
    kind = col.get("kind")
    hist = col.get("histogram") or {}
    type_ = str(col.get("type", ""))
    if kind == NUMERIC and hist.get("edges"):
        edges = [float(e) for e in hist["edges"]]
        counts = [int(c) for c in hist["counts"]]
        if col.get("min") == col.get("max"):
            # A constant column: the profile widened its one bin to [min, min + 1).
            edges, counts = [edges[0]], [sum(counts)]
            bins = [sum(counts), 0]
        else:
            bins = [0, *counts, 0]
        interior = tuple(edges[1:-1])
        return ColumnSummary(
            name=name,
            kind=NUMERIC,
            type=type_,
            rows=rows,
            count=sum(counts),
            mean=col.get("mean"),
            std=col.get("std"),
            min=col.get("min"),
            max=col.get("max"),
            edges=tuple(edges),
            counts=tuple(bins),
            deciles=interior,
            vigintiles=interior,
        )
    if kind == CATEGORICAL and "categories" in hist:
        categories = tuple(
            "true" if c is True else "false" if c is False else str(c) for c in hist["categories"]
        )
        per_category = tuple(int(c) for c in hist["counts"])
        return ColumnSummary(
            name=name,
            kind=CATEGORICAL,
            type=type_,
            rows=rows,
            count=sum(per_category) + int(hist.get("other", 0)),
            categories=categories,
            counts=per_category,
            other=int(hist.get("other", 0)),
        )
    if kind in (NUMERIC, CATEGORICAL):  # no values at all: nothing was binned
        return ColumnSummary(name=name, kind=kind, type=type_, rows=rows, count=0)
    return ColumnSummary(name=name, kind=UNSUPPORTED, type=type_, rows=rows, count=0)
