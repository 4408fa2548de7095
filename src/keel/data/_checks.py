"""The check catalogue: what a column may declare in a contract, and one vectorised function per
check that returns the mask of failing rows.

Column checks (keys under ``columns.<name>``)::

    type        integer | float | string | boolean | datetime
    nullable    false: no nulls
    unique      true: no value appears twice (nulls are not compared)
    min, max    inclusive bounds for numbers and datetimes
    allowed     the list of permitted values (categories)
    min_length, max_length   bounds on string length

Value checks ignore nulls: ``nullable`` alone decides about them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

TYPES = ("integer", "float", "string", "boolean", "datetime")
COLUMN_CHECKS = ("type", "nullable", "unique", "min", "max", "allowed", "min_length", "max_length")

Mask = np.ndarray[Any, np.dtype[np.bool_]]

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int, np.integer),
    "float": (float, int, np.floating, np.integer),
    "string": (str,),
    "boolean": (bool, np.bool_),
    "datetime": (pd.Timestamp,),
}
_INFERRED = {
    "integer": "integer",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "string": "string",
    "boolean": "boolean",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
    "empty": "empty",
}


def column_kind(series: pd.Series) -> str:
    """The contract type of a column; ``mixed`` for an object column of several types and
    ``empty`` for an object column with no values."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "string"
    if isinstance(dtype, pd.CategoricalDtype):
        return column_kind(pd.Series(dtype.categories))
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "boolean" and series.notna().all():
        return "boolean"
    return _INFERRED.get(inferred, "mixed")


def type_matches(kind: str, wanted: str) -> bool:
    """Whether a column of ``kind`` satisfies ``type: wanted`` (integers are valid floats)."""
    return kind in (wanted, "empty") or (wanted == "float" and kind == "integer")


def bad_type_rows(series: pd.Series, wanted: str) -> Mask:
    """Rows of an object column whose value is not of the wanted type (mixed columns)."""
    types = _PY_TYPES[wanted]
    values = series.to_numpy(dtype=object)
    nulls = pd.isna(values)
    bad = [not null and not _is(v, types, wanted) for v, null in zip(values, nulls, strict=True)]
    return np.asarray(bad, dtype=bool)


def _is(value: Any, types: tuple[type, ...], wanted: str) -> bool:
    if wanted in ("integer", "float") and isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, types)


def _notna(series: pd.Series) -> Mask:
    return series.notna().to_numpy()


def _values(series: pd.Series) -> Any:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return series


def check_nullable(series: pd.Series, allowed: Any) -> Mask:
    if allowed:
        return np.zeros(len(series), dtype=bool)
    return ~_notna(series)


def check_unique(series: pd.Series, required: Any) -> Mask:
    if not required:
        return np.zeros(len(series), dtype=bool)
    return series.duplicated(keep=False).to_numpy() & _notna(series)


def check_min(series: pd.Series, bound: Any) -> Mask:
    values = _values(series)
    with np.errstate(invalid="ignore"):
        below = np.asarray(values < _bound(series, bound), dtype=bool)
    return below & _notna(series)


def check_max(series: pd.Series, bound: Any) -> Mask:
    values = _values(series)
    with np.errstate(invalid="ignore"):
        above = np.asarray(values > _bound(series, bound), dtype=bool)
    return above & _notna(series)


def _bound(series: pd.Series, bound: Any) -> Any:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamp = pd.Timestamp(bound)
        tz = getattr(series.dtype, "tz", None)
        if tz is not None and stamp.tzinfo is None:
            stamp = stamp.tz_localize(tz)
        return stamp
    return bound


def check_allowed(series: pd.Series, values: Any) -> Mask:
    return ~series.isin(list(values)).to_numpy() & _notna(series)


def _lengths(series: pd.Series) -> Any:
    return series.astype("string").str.len().to_numpy(dtype="float64", na_value=np.nan)


def check_min_length(series: pd.Series, bound: Any) -> Mask:
    with np.errstate(invalid="ignore"):
        return np.asarray(_lengths(series) < bound, dtype=bool) & _notna(series)


def check_max_length(series: pd.Series, bound: Any) -> Mask:
    with np.errstate(invalid="ignore"):
        return np.asarray(_lengths(series) > bound, dtype=bool) & _notna(series)


ROW_CHECKS: dict[str, Callable[[pd.Series, Any], Mask]] = {
    "nullable": check_nullable,
    "unique": check_unique,
    "min": check_min,
    "max": check_max,
    "allowed": check_allowed,
    "min_length": check_min_length,
    "max_length": check_max_length,
}

# Which column types each value check applies to; the contract loader enforces it.
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "min": ("integer", "float", "datetime"),
    "max": ("integer", "float", "datetime"),
    "allowed": ("integer", "string", "boolean"),
    "min_length": ("string",),
    "max_length": ("string",),
}
