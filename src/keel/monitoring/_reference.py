"""Column summaries for drift: a reference profile computed once (bin edges fixed from the
reference) and the matching summary of a current window, binned on the reference's edges.

A numeric column keeps its reference quantiles at every 0.1 % (every 0.01 % in the outer 1 %
on each side) as bin edges (at most 1,181, duplicates merged) with the count in each bin, plus
two open tails for values below the reference minimum and above its maximum; a small reference
(<= ``EXACT_ROWS`` values) also keeps its sorted values so the Kolmogorov-Smirnov test is
exact. A categorical column keeps the counts of its most frequent categories (up to
``MAX_CATEGORIES``) and of the rest.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

FORMAT = "keel.drift-reference/1"
EXACT_ROWS = 1_000
QUANTILE_BINS = 1_000  # edges at every 0.1 % of the reference ...
TAIL_BINS = 100  # ... and at every 0.01 % within its lowest and highest 1 %
MAX_CATEGORIES = 1_000
SAMPLE_ROWS = 2_000

NUMERIC = "numeric"
CATEGORICAL = "categorical"
UNSUPPORTED = "unsupported"


def column_kind(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return NUMERIC
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return CATEGORICAL
    return UNSUPPORTED


def finite_values(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """The column as float64 without nulls, NaN and infinities (as the data profile does)."""
    import numpy as np
    import pyarrow as pa

    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
    values: np.ndarray[Any, Any] = column.cast(pa.float64()).to_numpy()  # nulls become NaN
    kept: np.ndarray[Any, Any] = values[np.isfinite(values)]
    return kept


def category_counts(column: pa.ChunkedArray) -> dict[str, int]:
    """Counts of each non-null value, labelled as strings (booleans as ``true``/``false``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    counts = pc.value_counts(column.drop_null())
    labels = counts.field("values").to_pylist()
    freq = counts.field("counts").to_pylist()
    return dict(zip(labels, freq, strict=True))


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a reference profile. ``count`` is the number of usable (non-null, finite)
    values; numeric columns have ``edges``/``counts``/``deciles``, categorical ones
    ``categories``/``counts``/``other``."""

    name: str
    kind: str
    type: str
    rows: int
    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    deciles: tuple[float, ...] = ()
    vigintiles: tuple[float, ...] = ()
    values: tuple[float, ...] | None = None
    categories: tuple[str, ...] = ()
    other: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "rows": self.rows,
            "count": self.count,
        }
        if self.kind == NUMERIC:
            out.update(
                mean=self.mean,
                std=self.std,
                min=self.min,
                max=self.max,
                edges=list(self.edges),
                counts=list(self.counts),
                deciles=list(self.deciles),
                vigintiles=list(self.vigintiles),
                values=None if self.values is None else list(self.values),
            )
        elif self.kind == CATEGORICAL:
            out.update(categories=list(self.categories), counts=list(self.counts), other=self.other)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSummary:
        values = data.get("values")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            type=str(data["type"]),
            rows=int(data["rows"]),
            count=int(data["count"]),
            mean=data.get("mean"),
            std=data.get("std"),
            min=data.get("min"),
            max=data.get("max"),
            edges=tuple(float(e) for e in data.get("edges", ())),
            counts=tuple(int(c) for c in data.get("counts", ())),
            deciles=tuple(float(d) for d in data.get("deciles", ())),
            vigintiles=tuple(float(d) for d in data.get("vigintiles", ())),
            values=None if values is None else tuple(float(v) for v in values),
            categories=tuple(str(c) for c in data.get("categories", ())),
            other=int(data.get("other", 0)),
        )


def quantile_grid() -> np.ndarray[Any, Any]:
    """Probabilities of the reference's bin edges: every 0.1 %, and every 0.01 % in the
    lowest and highest 1 % (a long tail's last 0.1 % can span most of the range, and the
    distances treat the CDF as linear inside a bin)."""
    import numpy as np

    step = 1.0 / QUANTILE_BINS
    return np.unique(
        np.concatenate(
            [
                np.linspace(0.0, 0.01, TAIL_BINS + 1),
                np.linspace(0.01, 0.99, round(0.98 / step) + 1),
                np.linspace(0.99, 1.0, TAIL_BINS + 1),
            ]
        ).round(12)
    )


def _grid_index(grid: np.ndarray[Any, Any], probabilities: np.ndarray[Any, Any]) -> Any:
    import numpy as np

    return np.abs(grid[None, :] - probabilities[:, None]).argmin(axis=1)


def _summarise_numeric(name: str, column: pa.ChunkedArray) -> ColumnSummary:
    import numpy as np

    values = np.sort(finite_values(column))
    n = len(values)
    base = ColumnSummary(name=name, kind=NUMERIC, type=str(column.type), rows=len(column), count=n)
    if n == 0:
        return base
    # Quantiles from the sorted values by linear interpolation (NumPy's default method):
    # the deciles are among them, so PSI's ten bins are unions of the fine bins.
    grid = quantile_grid()
    positions = grid * (n - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    quantiles = values[below] + (values[above] - values[below]) * (positions - below)
    edges = np.unique(quantiles)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    # Coarser bins are unions of the fine ones: deciles for PSI (its convention), 5 % bins for
    # Jensen-Shannon (a thousand bins would make sampling noise look like drift).
    deciles = np.unique(quantiles[_grid_index(grid, np.arange(1, 10) / 10)])
    vigintiles = np.unique(quantiles[_grid_index(grid, np.arange(1, 20) / 20)])
    return ColumnSummary(
        name=name,
        kind=NUMERIC,
        type=str(column.type),
        rows=len(column),
        count=n,
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if n > 1 else 0.0,
        min=float(values[0]),
        max=float(values[-1]),
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        deciles=tuple(float(d) for d in deciles),
        vigintiles=tuple(float(d) for d in vigintiles),
        values=tuple(float(v) for v in values) if n <= EXACT_ROWS else None,
    )


def _summarise_categorical(name: str, column: pa.ChunkedArray) -> ColumnSummary:
    counts = category_counts(column)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ranked[:MAX_CATEGORIES]
    return ColumnSummary(
        name=name,
        kind=CATEGORICAL,
        type=str(column.type),
        rows=len(column),
        count=sum(counts.values()),
        categories=tuple(k for k, _ in kept),
        counts=tuple(c for _, c in kept),
        other=sum(c for _, c in ranked[MAX_CATEGORIES:]),
    )


def summarise_column(name: str, column: pa.ChunkedArray) -> ColumnSummary:
    kind = column_kind(column.type)
    if kind == NUMERIC:
        return _summarise_numeric(name, column)
    if kind == CATEGORICAL:
        return _summarise_categorical(name, column)
    return ColumnSummary(
        name=name, kind=UNSUPPORTED, type=str(column.type), rows=len(column), count=0
    )


@dataclass(frozen=True)
class ReferenceProfile:
    """What drift is measured against, computed once from the reference data and storable as
    JSON. ``sample`` is a bounded random sample of rows (column -> values) kept for the domain
    classifier; ``source`` says where the reference came from (e.g. ``churn@v3``)."""

    rows: int
    columns: dict[str, ColumnSummary]
    source: str = "reference"
    sample: dict[str, list[Any]] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_frame(
        cls, data: Any, *, source: str = "reference", sample_rows: int = SAMPLE_ROWS
    ) -> ReferenceProfile:
        """Summarise a pandas DataFrame or pyarrow Table (every column)."""
        from concurrent.futures import ThreadPoolExecutor

        table = as_table(data, field="reference")
        names = table.column_names
        # NumPy sorts and Arrow kernels release the GIL: columns summarise in parallel.
        with ThreadPoolExecutor(max_workers=max(1, min(len(names), 4))) as pool:
            summaries = list(pool.map(lambda n: summarise_column(n, table.column(n)), names))
        return cls(
            rows=table.num_rows,
            columns=dict(zip(names, summaries, strict=True)),
            source=source,
            sample=sample_rows_of(table, sample_rows),
        )

    @classmethod
    def from_dataset(
        cls, ref: str, *, use: str = "data", sample_rows: int = SAMPLE_ROWS
    ) -> ReferenceProfile:
        """Summarise a stored table version (``churn@v3``, ``churn@prod``). ``use="data"``
        (default) reads the data: 0.1 % quantile bins and a sample for the domain classifier.
        ``use="profile"`` reads only the profile stored with the version (no data download):
        its 20 fixed-width bins give coarser distances, no exact KS, and no classifier."""
        import keel.data

        if use not in ("data", "profile"):
            raise InvalidInput(f"use must be 'data' or 'profile', not {use!r}", field="use")
        version = keel.data.show(ref)
        if version.kind != "table":
            raise InvalidInput(f"{version.ref} is a folder, not a table", field="reference")
        if use == "profile":
            return cls.from_data_profile(version.profile, source=version.ref)
        table = keel.data.get(version.ref, as_="arrow")
        return cls.from_frame(table, source=version.ref, sample_rows=sample_rows)

    @classmethod
    def from_data_profile(cls, profile: dict[str, Any], *, source: str) -> ReferenceProfile:
        """A reference from a dataset version's stored profile (``keel.data`` histograms)."""
        from keel.monitoring._stored import summary_from_data_profile

        try:
            rows = int(profile["rows"])
            columns = {
                name: summary_from_data_profile(name, col, rows=rows)
                for name, col in profile["columns"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"{source}: unreadable stored profile ({exc})", field="reference"
            ) from exc
        return cls(rows=rows, columns=columns, source=source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns.values()],
            "sample": self.sample,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise InvalidInput(f"not a {FORMAT} document", field="reference")
            columns = [ColumnSummary.from_dict(c) for c in data["columns"]]
            return cls(
                rows=int(data["rows"]),
                columns={c.name: c for c in columns},
                source=str(data.get("source", "reference")),
                sample={str(k): list(v) for k, v in (data.get("sample") or {}).items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"bad reference profile JSON: {exc}", field="reference") from exc


def sample_rows_of(table: pa.Table, rows: int, *, seed: int = 0) -> dict[str, list[Any]]:
    """Up to ``rows`` random rows (seeded), JSON-ready: non-finite floats become None."""
    import numpy as np
    import pyarrow as pa

    if rows <= 0 or table.num_rows == 0:
        return {}
    keep = [n for n in table.column_names if column_kind(table.column(n).type) != UNSUPPORTED]
    if table.num_rows > rows:
        picks = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
        table = table.select(keep).take(pa.array(picks))
    else:
        table = table.select(keep)
    out: dict[str, list[Any]] = {}
    for name in keep:
        column = table.column(name)
        if column_kind(column.type) == NUMERIC:
            out[name] = [
                v if v is None or math.isfinite(v) else None
                for v in column.cast(pa.float64()).to_pylist()
            ]
        else:
            out[name] = [None if v is None else str(v) for v in column.to_pylist()]
    return out


def as_table(data: Any, *, field: str) -> pa.Table:
    """A pyarrow Table from a DataFrame, a Table, or a window source with ``to_arrow()``."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    to_arrow = getattr(data, "to_arrow", None)
    if callable(to_arrow):
        table = to_arrow()
        if isinstance(table, pa.Table):
            return table
        raise InvalidInput(f"{field}: to_arrow() returned {type(table).__name__}", field=field)
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"{field}: {exc}", field=field) from exc
    raise InvalidInput(
        f"{field} must be a pandas DataFrame, a pyarrow Table or have to_arrow(); "
        f"got {type(data).__name__}",
        field=field,
    )
