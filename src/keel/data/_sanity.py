"""Sanity checks for external data: missing values, outliers (IQR and z-score), duplicated rows
and distribution shift against a reference frame (PSI for every column, KS for numbers).
Everything is reported, nothing fails; ``findings`` lists what crossed a threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from keel.data._checks import column_kind
from keel.errors import InvalidInput

_BINS = 10
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class SanityThresholds:
    """When a measure becomes a finding. ``iqr_k`` and ``z`` also define what an outlier is."""

    missing_share: float = 0.05
    outlier_share: float = 0.01
    duplicate_share: float = 0.0
    iqr_k: float = 1.5
    z: float = 3.0
    psi: float = 0.2
    ks: float = 0.1

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidInput(f"expected a number >= 0, found {value!r}", field=name)


@dataclass(frozen=True, slots=True)
class ColumnSanity:
    """Per-column measures; outlier and KS fields are ``None`` for non-numeric columns, shift
    fields ``None`` without a reference (or when the column is absent from it)."""

    column: str
    kind: str
    missing: int
    missing_share: float
    iqr_outliers: int | None = None
    z_outliers: int | None = None
    iqr_bounds: tuple[float, float] | None = None
    psi: float | None = None
    ks: float | None = None


@dataclass(frozen=True, slots=True)
class SanityReport:
    rows: int
    duplicated_rows: int
    columns: tuple[ColumnSanity, ...]
    findings: tuple[str, ...] = field(default=())

    def column(self, name: str) -> ColumnSanity:
        for c in self.columns:
            if c.column == name:
                return c
        raise InvalidInput(f"no column '{name}' in the report", field="column")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "duplicated_rows": self.duplicated_rows,
            "columns": [{k: getattr(c, k) for k in c.__dataclass_fields__} for c in self.columns],
            "findings": list(self.findings),
        }


def sanity_report(
    df: Any, *, reference: Any = None, thresholds: SanityThresholds | None = None
) -> SanityReport:
    """Measure ``df`` (and its shift from ``reference``, e.g. the previous version)."""
    from keel.data._validate import as_frame

    frame = as_frame(df)
    ref = None if reference is None else as_frame(reference)
    limits = thresholds or SanityThresholds()
    if not isinstance(limits, SanityThresholds):
        raise InvalidInput("expected SanityThresholds", field="thresholds")
    n = len(frame)
    findings: list[str] = []
    if n == 0:
        findings.append("the frame has no rows")
    try:
        duplicated = int(frame.duplicated().sum()) if n else 0
    except TypeError:  # unhashable cells (lists, dicts) cannot be compared row by row
        duplicated = 0
        findings.append("duplicated rows not counted: some cells are unhashable")
    if n and duplicated / n > limits.duplicate_share:
        findings.append(f"{duplicated} duplicated rows ({duplicated / n:.1%})")
    columns = []
    for name in frame.columns:
        other = ref[name] if ref is not None and name in ref.columns else None
        col = _column(str(name), frame[name], other, limits)
        columns.append(col)
        findings.extend(_findings(col, n, limits))
    return SanityReport(n, duplicated, tuple(columns), tuple(findings))


def _column(
    name: str, series: pd.Series, ref: pd.Series | None, t: SanityThresholds
) -> ColumnSanity:
    kind = column_kind(series)
    missing = int(series.isna().sum())
    col = ColumnSanity(name, kind, missing, missing / len(series) if len(series) else 0.0)
    if kind in ("integer", "float"):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        values = values[np.isfinite(values)]
        col = _outliers(col, values, t)
        if ref is not None and column_kind(ref) in ("integer", "float"):
            base = ref.to_numpy(dtype="float64", na_value=np.nan)
            base = base[np.isfinite(base)]
            if len(values) and len(base):
                col = _replace(col, psi=_psi_numeric(values, base), ks=_ks(values, base))
    elif kind in ("string", "boolean") and ref is not None and column_kind(ref) == kind:
        col = _replace(col, psi=_psi_categorical(series.dropna(), ref.dropna()))
    return col


def _replace(col: ColumnSanity, **changes: Any) -> ColumnSanity:
    from dataclasses import replace

    return replace(col, **changes)


def _outliers(col: ColumnSanity, values: np.ndarray[Any, Any], t: SanityThresholds) -> ColumnSanity:
    if len(values) == 0:
        return _replace(col, iqr_outliers=0, z_outliers=0)
    q1, q3 = np.percentile(values, [25, 75])
    low, high = q1 - t.iqr_k * (q3 - q1), q3 + t.iqr_k * (q3 - q1)
    iqr = int(np.count_nonzero((values < low) | (values > high)))
    std = values.std()
    z = int(np.count_nonzero(np.abs(values - values.mean()) > t.z * std)) if std > 0 else 0
    return _replace(col, iqr_outliers=iqr, z_outliers=z, iqr_bounds=(float(low), float(high)))


def _psi(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> float:
    a = np.clip(actual / max(actual.sum(), 1), _EPS, None)
    e = np.clip(expected / max(expected.sum(), 1), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _psi_numeric(values: np.ndarray[Any, Any], base: np.ndarray[Any, Any]) -> float:
    # Bins are the reference's deciles, so each holds about a tenth of the reference.
    edges = np.unique(np.quantile(base, np.linspace(0, 1, _BINS + 1)[1:-1]))
    actual = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    expected = np.bincount(np.searchsorted(edges, base, side="right"), minlength=len(edges) + 1)
    return _psi(actual.astype(float), expected.astype(float))


def _psi_categorical(values: pd.Series, base: pd.Series) -> float:
    counts = pd.concat(
        [values.value_counts().rename("a"), base.value_counts().rename("e")], axis=1
    ).fillna(0)
    if counts.empty:
        return 0.0
    return _psi(counts["a"].to_numpy(dtype=float), counts["e"].to_numpy(dtype=float))


def _ks(values: np.ndarray[Any, Any], base: np.ndarray[Any, Any]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(values), np.sort(base)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _findings(col: ColumnSanity, n: int, t: SanityThresholds) -> list[str]:
    out = []
    name = col.column
    if col.kind == "mixed":
        out.append(f"{name}: mixed types in one column")
    if n and col.missing_share > t.missing_share:
        out.append(f"{name}: {col.missing} missing values ({col.missing_share:.1%})")
    for label, count in (("IQR", col.iqr_outliers), ("z-score", col.z_outliers)):
        if n and count is not None and count / n > t.outlier_share:
            out.append(f"{name}: {count} {label} outliers ({count / n:.1%})")
    if col.psi is not None and col.psi > t.psi:
        out.append(f"{name}: distribution shift, PSI {col.psi:.3f} > {t.psi}")
    if col.ks is not None and col.ks > t.ks:
        out.append(f"{name}: distribution shift, KS {col.ks:.3f} > {t.ks}")
    return out
