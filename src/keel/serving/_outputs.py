"""Predictions to JSON-ready values: NaN and infinities become null, and the rows holding them
are listed (``non_finite``), so a response is always valid JSON and the client can tell a
missing value from a model that produced one."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_array(predictions: Any) -> np.ndarray:
    """A model's answer as an array with one entry (or row) per input row."""
    if hasattr(predictions, "to_numpy"):
        return np.asarray(predictions.to_numpy())
    return np.asarray(predictions)


def encode(outputs: np.ndarray) -> tuple[list[Any], list[int]]:
    """``(values, non_finite_rows)`` for one request's slice of the predictions."""
    if outputs.dtype.kind in "fc":
        bad = ~np.isfinite(outputs)
        if bad.any():
            rows = bad.reshape(len(outputs), -1).any(axis=1) if outputs.ndim else bad
            obj = outputs.astype(object)
            obj[bad] = None
            return obj.tolist(), np.flatnonzero(rows).tolist()
    if outputs.dtype.kind == "O":
        # Object arrays may hold NumPy scalars or float NaN that plain JSON cannot carry.
        flat = outputs.ravel()
        bad_flat = np.fromiter(
            (isinstance(v, float | np.floating) and not np.isfinite(v) for v in flat),
            dtype=bool,
            count=flat.size,
        )
        if bad_flat.any():
            flat = flat.copy()
            flat[bad_flat] = None
            rows = bad_flat.reshape(len(outputs), -1).any(axis=1)
            return flat.reshape(outputs.shape).tolist(), np.flatnonzero(rows).tolist()
    return outputs.tolist(), []


def v2_datatype(outputs: np.ndarray) -> str:
    kind, size = outputs.dtype.kind, outputs.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"
