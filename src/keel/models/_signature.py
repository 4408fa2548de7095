"""Signatures: inferred from example data at logging time, enforced at predict time.

Enforcement is per column, never per row: a missing column, a column whose dtype cannot be
converted safely, or a tensor of the wrong rank or width raises ``InvalidInput`` naming the
column (or ``input`` for tensors). Numeric conversions that keep the meaning are applied
(int -> float, int32 -> int64, float64 -> float32 for a float32 model) so a model gets exactly
the dtypes it was trained on; text never becomes a number nor a float an int. Extra columns are
dropped and the rest put in the signature's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from keel.errors import InvalidInput
from keel.models._records import ColSpec, Signature

_TEXT = ("str", "string", "object")


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "dtypes")


@lru_cache(maxsize=512)  # str(dtype) costs microseconds; predict reads it per column
def _dtype_name(dtype: Any) -> str:
    """A stable name for a pandas or NumPy dtype: NumPy names, ``str`` for any text dtype."""
    name = str(dtype)
    if name in ("string", "str", "string[python]", "string[pyarrow]") or name.startswith("string"):
        return "str"
    return name


def _column_dtype(series: Any) -> str:
    name = _dtype_name(series.dtype)
    if name == "object":
        import pandas as pd

        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("string", "empty"):
            return "str"
    return name


def _tensor_spec(array: Any) -> ColSpec:
    import numpy as np

    arr = np.asarray(array)
    shape = (-1, *arr.shape[1:]) if arr.ndim else ()
    return ColSpec(None, _dtype_name(arr.dtype), tuple(int(s) for s in shape))


def _frame(data: Any) -> Any:
    import pandas as pd

    if _is_frame(data):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    if type(data).__name__ == "Series":
        return data.to_frame()
    return None


def infer(data: Any) -> tuple[str, tuple[ColSpec, ...]]:
    """``(kind, specs)`` describing ``data``: a DataFrame or a mapping of columns gives one
    spec per column; an array (or anything NumPy can hold) gives one tensor spec."""
    frame = _frame(data)
    if frame is not None:
        specs = []
        for col in frame.columns:
            if not isinstance(col, str):
                raise InvalidInput(
                    f"column names must be strings, got {col!r}", field="signature_from"
                )
            specs.append(ColSpec(col, _column_dtype(frame[col])))
        return "columns", tuple(specs)
    if type(data).__module__.startswith("torch"):
        data = data.detach().cpu().numpy()
    return "tensor", (_tensor_spec(data),)


def infer_signature(inputs: Any, outputs: Any | None = None) -> Signature:
    """The signature of a model fed ``inputs`` and answering ``outputs`` (if known)."""
    kind, specs = infer(inputs)
    out: tuple[ColSpec, ...] = ()
    if outputs is not None:
        _, out = infer(outputs)
    return Signature(kind=kind, inputs=specs, outputs=out)  # type: ignore[arg-type]


def _kind(dtype: str) -> str:
    if dtype in _TEXT:
        return "text"
    if dtype == "category":
        return "category"
    if dtype in {"bool", "boolean"}:
        return "b"
    if dtype.startswith("datetime64"):
        return "M"
    if dtype.startswith("timedelta64"):
        return "m"
    if dtype.startswith(("int", "Int")):
        return "i"
    if dtype.startswith(("uint", "UInt")):
        return "u"
    if dtype.startswith(("float", "Float")):
        return "f"
    return "other"


# expected kind -> actual kinds that convert without losing meaning
_ACCEPTS = {
    "f": {"f", "i", "u"},
    "i": {"i", "u"},
    "u": {"u"},
    "b": {"b"},
    "M": {"M"},
    "m": {"m"},
    "text": {"text"},
    "category": {"category", "text"},
}


def _convert_column(series: Any, spec: ColSpec) -> Any:
    actual = _column_dtype(series)
    want, have = _kind(spec.dtype), _kind(actual)
    field = str(spec.name)
    if actual == spec.dtype:
        return series
    if have not in _ACCEPTS.get(want, {want}):
        raise InvalidInput(
            f"expected dtype {spec.dtype}, got {actual} (convert the column first)", field=field
        )
    if want in ("i", "u") and series.isna().any():
        raise InvalidInput(f"expected {spec.dtype} without missing values", field=field)
    if want in ("text", "category", "other"):
        return series
    try:
        return series.astype(spec.dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"cannot convert to {spec.dtype}: {exc}", field=field) from exc


def _prepared(signature: Signature, frame: Any) -> bool:
    """Whether ``frame`` has exactly the signature's columns, in order, each already of its
    dtype (what the serving app builds): then there is nothing to check per column, and one
    read of the dtypes replaces a Series per column. Object columns take the full check."""
    if frame.columns.tolist() != list(signature.columns):
        return False
    return all(
        dtype.kind != "O" and _dtype_name(dtype) == spec.dtype
        for dtype, spec in zip(frame.dtypes.tolist(), signature.inputs, strict=True)
    )


def _check_columns(signature: Signature, data: Any) -> Any:
    frame = _frame(data)
    if frame is None:
        raise InvalidInput(
            "this model takes a table (a DataFrame or a mapping of columns) with columns "
            f"{list(signature.columns)}, got {type(data).__name__}",
            field="input",
        )
    if _prepared(signature, frame):
        return frame
    present = set(frame.columns)
    missing = [c for c in signature.columns if c not in present]
    if missing:
        raise InvalidInput(f"missing column (expected {list(signature.columns)})", field=missing[0])
    converted = {}
    changed = list(frame.columns) != list(signature.columns)
    for spec in signature.inputs:
        assert spec.name is not None
        col = frame[spec.name]
        new = _convert_column(col, spec)
        changed = changed or new is not col
        converted[spec.name] = new
    if not changed:
        return frame
    import pandas as pd

    return pd.DataFrame(converted, index=frame.index)


def _check_tensor(signature: Signature, data: Any) -> Any:
    import numpy as np

    spec = signature.inputs[0]
    if _is_frame(data):
        data = data.to_numpy()
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"not an array: {exc}", field="input") from exc
    shape = spec.shape or ()
    if arr.ndim != len(shape) or any(
        want not in (-1, have) for have, want in zip(arr.shape, shape, strict=False)
    ):
        raise InvalidInput(
            f"expected shape {tuple(shape)} (-1: any), got {tuple(arr.shape)}", field="input"
        )
    want, have = _kind(spec.dtype), _kind(_dtype_name(arr.dtype))
    if arr.dtype.name == spec.dtype:
        return arr
    if have not in _ACCEPTS.get(want, {want}):
        raise InvalidInput(f"expected dtype {spec.dtype}, got {arr.dtype}", field="input")
    return arr.astype(spec.dtype)


def enforce(signature: Signature | None, data: Any) -> Any:
    """``data`` checked against ``signature`` and converted to its dtypes and column order."""
    if signature is None or not signature.inputs:
        return data
    if signature.kind == "columns":
        return _check_columns(signature, data)
    return _check_tensor(signature, data)
