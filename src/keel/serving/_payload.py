"""Request bodies to NumPy, checked against a model's signature, one column at a time.

Four MLflow scoring shapes (``dataframe_split``, ``dataframe_records``, ``inputs``,
``instances``) and the Open Inference Protocol v2 body all end as ``Inputs``: one NumPy array
per signature column (or one array for a tensor model), already in the signature's dtypes.
No DataFrame is built here; the batcher builds one per micro-batch. Errors name the column:
``InvalidInput`` (422), ``MalformedRequest`` (400), ``LimitExceeded`` (413).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from keel.errors import InvalidInput, LimitExceeded
from keel.models import ColSpec, Signature

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")

# signature dtype kind -> NumPy kinds a JSON column may arrive as and convert without loss
_ACCEPTS = {
    "f": "fiu",
    "i": "iu",
    "u": "u",
    "b": "b",
    "U": "U",
    "M": "U",
    "m": "iu",
}
_KIND_WORDS = {"f": "number", "i": "integer", "u": "integer", "b": "boolean", "U": "text"}
_V2_KINDS = {"BOOL": "b", "BYTES": "U", "FP16": "f", "FP32": "f", "FP64": "f"}


class MalformedRequest(InvalidInput):
    """The body is not JSON, or not any of the accepted payload shapes (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """One request's rows: ``columns`` (name -> 1-D array) for a table model, or ``tensor``."""

    rows: int
    columns: Mapping[str, np.ndarray] | None = None
    tensor: np.ndarray | None = None


@lru_cache(maxsize=256)  # called per column per request, for a handful of dtypes
def spec_kind(dtype: str) -> str:
    """The NumPy kind letter a signature dtype wants (``U`` for text and categories)."""
    if dtype in ("str", "string", "object", "category"):
        return "U"
    if dtype in ("bool", "boolean"):
        return "b"
    try:
        return np.dtype(dtype.lower()).kind
    except TypeError:
        return "O"


def _fail_kind(spec: ColSpec, got: str, field: str) -> InvalidInput:
    word = _KIND_WORDS.get(got, "mixed or nested values")
    return InvalidInput(f"expected {spec.dtype} values, got {word}", field=field)


def to_column(values: Any, spec: ColSpec, *, field: str) -> np.ndarray:
    """``values`` (a JSON list) as a 1-D array of ``spec.dtype``; null only in float columns
    (it becomes NaN), never text parsed as numbers nor floats cut to integers."""
    if not isinstance(values, list):
        values = [values]
    want = spec_kind(spec.dtype)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a column of scalars: {exc}", field=field) from exc
    if arr.ndim != 1:
        raise InvalidInput("expected one scalar per row, got nested lists", field=field)
    have = arr.dtype.kind
    if have == "O":
        null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        if null.any():
            if want != "f":
                row = int(np.flatnonzero(null)[0])
                raise InvalidInput(f"null in row {row}, not allowed for {spec.dtype}", field=field)
            rest = np.asarray([v for v in values if v is not None])
            if rest.dtype.kind not in _ACCEPTS["f"] and rest.size:
                raise _fail_kind(spec, rest.dtype.kind, field)
            out = np.full(len(values), np.nan, dtype=spec.dtype)
            out[~null] = rest
            return out
    if have not in _ACCEPTS.get(want, ""):
        raise _fail_kind(spec, have, field)
    if want == "U":
        return _text(values, arr.shape)
    try:
        return arr.astype(spec.dtype, casting="safe" if want in "iu" else "unsafe")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"cannot convert to {spec.dtype}: {exc}", field=field) from exc


def _columns_from(
    source: Mapping[str, Any], signature: Signature, *, allow_extra: bool, rows: int | None
) -> Inputs:
    wanted = signature.columns
    for name in wanted:
        if name not in source:
            raise InvalidInput(f"missing column (expected {list(wanted)})", field=name)
    if not allow_extra and len(source) > len(wanted):
        extra = next(k for k in source if k not in set(wanted))
        raise InvalidInput(
            "unknown column (the model takes only its signature's columns)", field=str(extra)
        )
    columns = {
        spec.name: to_column(source[spec.name], spec, field=spec.name)
        for spec in signature.inputs
        if spec.name is not None
    }
    lengths = {len(a) for a in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput("columns have different lengths", field=next(iter(columns)))
    n = lengths.pop() if lengths else (rows or 0)
    return Inputs(rows=n, columns=columns)


def _tensor(data: Any, spec: ColSpec, *, field: str) -> np.ndarray:
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a rectangular array: {exc}", field=field) from exc
    shape = spec.shape or ()
    if arr.ndim != len(shape) or any(
        w not in (-1, h) for h, w in zip(arr.shape, shape, strict=False)
    ):
        raise InvalidInput(
            f"expected shape {tuple(shape)} (-1: any), got {tuple(arr.shape)}", field=field
        )
    want = spec_kind(spec.dtype)
    if arr.dtype.kind not in _ACCEPTS.get(want, ""):
        raise _fail_kind(spec, arr.dtype.kind, field)
    return _text(data, arr.shape) if want == "U" else arr.astype(spec.dtype)


def _text(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The strings exactly as sent, in an object array: NumPy's fixed-width text dtype (what
    ``np.asarray`` makes of them) drops trailing NUL characters."""
    out = np.empty(shape, dtype=object)
    out[...] = values
    return out


def _split_columns(body: Mapping[str, Any], signature: Signature, allow_extra: bool) -> Inputs:
    names, data = body.get("columns"), body.get("data")
    if not isinstance(data, list):
        raise InvalidInput("dataframe_split needs 'data': a list of rows", field="data")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput("dataframe_split needs 'columns': a list of names", field="columns")
    width = len(names)
    if not all(isinstance(r, list) and len(r) == width for r in data):
        raise InvalidInput(f"every row must be a list of {width} values", field="data")
    if len(set(names)) != width:
        raise InvalidInput("duplicate column names", field="columns")
    cols = list(zip(*data, strict=True)) if data else [()] * width
    source = {n: list(c) for n, c in zip(names, cols, strict=True)}
    return _columns_from(source, signature, allow_extra=allow_extra, rows=len(data))


def _records(records: Sequence[Any], signature: Signature, allow_extra: bool) -> Inputs:
    if not all(isinstance(r, dict) for r in records):
        raise InvalidInput("records must be JSON objects", field="dataframe_records")
    keys: set[str] = set().union(*records)
    source: dict[str, Any] = {k: None for k in keys}
    for name in signature.columns:
        if name in keys:
            source[name] = [r.get(name) for r in records]
    return _columns_from(source, signature, allow_extra=allow_extra, rows=len(records))


def parse_mlflow(body: Any, signature: Signature, *, allow_extra: bool) -> Inputs:
    """An ``/invocations`` body (already JSON-decoded) as ``Inputs``."""
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object", field="body")
    found = [k for k in FORMATS if k in body]
    if len(found) != 1:
        raise MalformedRequest(
            f"the body must have exactly one of {list(FORMATS)}, got {sorted(body)[:8]}",
            field="body",
        )
    key = found[0]
    value = body[key]
    if signature.kind == "tensor":
        if key == "dataframe_split" and isinstance(value, dict):
            value = value.get("data")
        arr = _tensor(value, signature.inputs[0], field=key)
        return Inputs(rows=len(arr) if arr.ndim else 1, tensor=arr)
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput("expected {columns: [...], data: [[...]]}", field=key)
        return _split_columns(value, signature, allow_extra)
    if key == "dataframe_records" or (
        isinstance(value, list) and value and isinstance(value[0], dict)
    ):
        if not isinstance(value, list):
            raise InvalidInput("expected a list of records", field=key)
        return _records(value, signature, allow_extra)
    if isinstance(value, dict):
        return _columns_from(value, signature, allow_extra=allow_extra, rows=None)
    raise InvalidInput(
        f"this model takes columns {list(signature.columns)}: send records or {{column: [values]}}",
        field=key,
    )


def _v2_kind(datatype: Any, field: str) -> str:
    if not isinstance(datatype, str):
        raise InvalidInput("datatype must be a string such as FP64", field=field)
    if datatype.startswith("INT"):
        return "i"
    if datatype.startswith("UINT"):
        return "u"
    if datatype in _V2_KINDS:
        return _V2_KINDS[datatype]
    raise InvalidInput(f"unknown datatype {datatype!r}", field=field)


def _v2_input(item: Any, index: int) -> tuple[str, list[int], str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput("each input is {name, shape, datatype, data}", field=f"inputs[{index}]")
    name, shape, data = item.get("name"), item.get("shape"), item.get("data")
    field = name if isinstance(name, str) else f"inputs[{index}]"
    if not isinstance(name, str):
        raise InvalidInput("input name must be a string", field=field)
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise InvalidInput("shape must be a list of sizes", field=field)
    if not isinstance(data, list):
        raise InvalidInput("data must be a list", field=field)
    return name, shape, _v2_kind(item.get("datatype"), field), data


def parse_v2(body: Any, signature: Signature, *, allow_extra: bool) -> Inputs:
    """An Open Inference Protocol v2 ``infer`` body as ``Inputs``."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise MalformedRequest('the body must be {"inputs": [...]}', field="inputs")
    items = [_v2_input(item, i) for i, item in enumerate(body["inputs"])]
    if signature.kind == "tensor":
        if len(items) != 1:
            raise InvalidInput("this model takes exactly one input tensor", field="inputs")
        name, shape, _, data = items[0]
        try:
            shaped = np.asarray(data).ravel().reshape(shape)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"data does not fit shape {shape}: {exc}", field=name) from exc
        arr = _tensor(shaped.tolist(), signature.inputs[0], field=name)
        return Inputs(rows=len(arr) if arr.ndim else 1, tensor=arr)
    specs = {s.name: s for s in signature.inputs}
    source: dict[str, Any] = {}
    for name, shape, kind, data in items:
        if name in source:
            raise InvalidInput("input given twice", field=name)
        spec = specs.get(name)
        if spec is not None and kind not in _ACCEPTS.get(spec_kind(spec.dtype), ""):
            raise InvalidInput(f"datatype does not fit the column's {spec.dtype}", field=name)
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(f"a column input has shape [n] or [n, 1], got {shape}", field=name)
        flat = data
        if data and isinstance(data[0], list):
            flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]
        if shape and len(flat) != shape[0]:
            raise InvalidInput(f"shape {shape} but {len(flat)} values", field=name)
        source[name] = flat
    return _columns_from(source, signature, allow_extra=allow_extra, rows=None)


def check_rows(inputs: Inputs, *, max_rows: int) -> None:
    if inputs.rows > max_rows:
        raise LimitExceeded(
            f"{inputs.rows} rows in one request; the limit is {max_rows} (split the request)",
            field="rows",
        )
    if inputs.rows == 0:
        raise InvalidInput("no rows to predict", field="rows")
