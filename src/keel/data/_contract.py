"""Data contracts: the frozen model, YAML in and out (``safe_load`` only), and inference from a
DataFrame. The YAML is meant to be edited by hand, so keys come out in a stable, readable order
and every mistake on the way in names its place (``columns.amount.maxx``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import yaml

from keel.data._checks import APPLIES_TO, COLUMN_CHECKS, TYPES, column_kind
from keel.data._expr import evaluate, parse_check
from keel.errors import InvalidInput

MAX_CATEGORIES = 20
_TOP_KEYS = ("contract", "key", "rows", "columns", "checks")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """What one column must satisfy; ``None`` means the check is not declared."""

    name: str
    type: str
    nullable: bool = True
    unique: bool = False
    min: Any = None
    max: Any = None
    allowed: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None

    def declared(self) -> dict[str, Any]:
        """The declared checks in catalogue order (``type`` and ``nullable`` always)."""
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        for name in COLUMN_CHECKS[2:]:
            value = getattr(self, name)
            if value is not None and value is not False:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class CustomCheck:
    """A named row-level expression (``_expr`` language); a row passes when it is true."""

    name: str
    expr: str


@dataclass(frozen=True, slots=True)
class Contract:
    """A data contract: columns, an optional key, row-count bounds and custom checks."""

    name: str = ""
    columns: tuple[ColumnSpec, ...] = ()
    key: tuple[str, ...] = ()
    min_rows: int | None = None
    max_rows: int | None = None
    checks: tuple[CustomCheck, ...] = field(default=())

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise InvalidInput(f"no column '{name}' in the contract", field="column")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"contract": self.name}
        if self.key:
            out["key"] = list(self.key)
        rows = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        if rows:
            out["rows"] = rows
        out["columns"] = {spec.name: spec.declared() for spec in self.columns}
        if self.checks:
            out["checks"] = [{"name": c.name, "expr": c.expr} for c in self.checks]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
        )

    @classmethod
    def from_yaml(cls, text: str) -> Contract:
        if not isinstance(text, str):
            raise InvalidInput("must be YAML text", field="contract")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise InvalidInput(f"not valid YAML{where}", field="contract") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Contract:
        return _load(data)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"expected a mapping, found {type(value).__name__}", field=where)
    for key in value:
        if not isinstance(key, str):
            raise InvalidInput(f"key {key!r} is not a string", field=where)
    return value


def _unknown(found: dict[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    for key in found:
        if key not in known:
            raise InvalidInput(
                f"unknown {what} '{key}'; expected one of {', '.join(known)}", field=f"{where}"
            )


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"expected an integer >= {minimum}, found {value!r}", field=where)
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"expected true or false, found {value!r}", field=where)
    return value


def _load(data: Any) -> Contract:
    top = _mapping(data, "contract")
    _unknown(top, _TOP_KEYS, "contract", "field")
    name = top.get("contract", "") or ""
    if not isinstance(name, str):
        raise InvalidInput("expected a string", field="contract")
    columns = [_column(n, s) for n, s in _mapping(top.get("columns") or {}, "columns").items()]
    names = {c.name for c in columns}
    key = top.get("key") or []
    key = [key] if isinstance(key, str) else key
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise InvalidInput("expected a column name or a list of them", field="key")
    for k in key:
        if k not in names:
            raise InvalidInput(f"key column '{k}' is not declared under columns", field="key")
    rows = _mapping(top.get("rows") or {}, "rows")
    _unknown(rows, ("min", "max"), "rows", "check")
    bounds = {k: _int(v, f"rows.{k}") for k, v in rows.items() if v is not None}
    checks = _custom(top.get("checks") or [], columns)
    return Contract(name, tuple(columns), tuple(key), bounds.get("min"), bounds.get("max"), checks)


def _column(name: str, spec: Any) -> ColumnSpec:
    where = f"columns.{name}"
    body = _mapping(spec if spec is not None else {}, where)
    _unknown(body, COLUMN_CHECKS, where, "check")
    kind = body.get("type")
    if kind not in TYPES:
        raise InvalidInput(
            f"expected a type, one of {', '.join(TYPES)}; found {kind!r}", field=f"{where}.type"
        )
    for check, kinds in APPLIES_TO.items():
        if check in body and body[check] is not None and kind not in kinds:
            raise InvalidInput(
                f"'{check}' does not apply to a {kind} column", field=f"{where}.{check}"
            )
    values: dict[str, Any] = {}
    for flag in ("nullable", "unique"):
        if flag in body:
            values[flag] = _bool(body[flag], f"{where}.{flag}")
    for bound in ("min", "max"):
        if body.get(bound) is not None:
            values[bound] = _bound(body[bound], kind, f"{where}.{bound}")
    for bound in ("min_length", "max_length"):
        if body.get(bound) is not None:
            values[bound] = _int(body[bound], f"{where}.{bound}")
    if body.get("allowed") is not None:
        allowed = body["allowed"]
        if not isinstance(allowed, list) or not allowed:
            raise InvalidInput("expected a non-empty list of values", field=f"{where}.allowed")
        for value in allowed:
            if not _scalar_fits(value, kind):
                raise InvalidInput(f"{value!r} is not a {kind}", field=f"{where}.allowed")
        values["allowed"] = tuple(allowed)
    return ColumnSpec(name, kind, **values)


def _scalar_fits(value: Any, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _bound(value: Any, kind: str, where: str) -> Any:
    if kind == "datetime":
        if isinstance(value, str | dt.date):
            try:
                return pd.Timestamp(value).isoformat()
            except ValueError as exc:
                raise InvalidInput(f"not a date or time: {value!r}", field=where) from exc
        raise InvalidInput(f"expected an ISO date or time, found {value!r}", field=where)
    if not _scalar_fits(value, "float"):
        raise InvalidInput(f"expected a number, found {value!r}", field=where)
    return value


def _custom(items: Any, columns: list[ColumnSpec]) -> tuple[CustomCheck, ...]:
    if not isinstance(items, list):
        raise InvalidInput("expected a list of {name, expr}", field="checks")
    out, seen = [], set()
    for i, item in enumerate(items):
        where = f"checks[{i}]"
        body = _mapping(item, where)
        _unknown(body, ("name", "expr"), where, "field")
        name, expr = body.get("name"), body.get("expr")
        if not isinstance(name, str) or not name:
            raise InvalidInput("expected a non-empty name", field=f"{where}.name")
        if name in seen:
            raise InvalidInput(f"duplicate check name '{name}'", field=f"{where}.name")
        seen.add(name)
        if not isinstance(expr, str):
            raise InvalidInput("expected an expression string", field=f"{where}.expr")
        node = parse_check(expr, field=f"checks.{name}")
        if columns:  # type-check against the declared columns, so errors show at load time
            evaluate(node, _empty_frame(columns), text=expr, field=f"checks.{name}")
        out.append(CustomCheck(name, expr))
    return tuple(out)


_DTYPES = {
    "integer": "int64",
    "float": "float64",
    "string": "str",
    "boolean": "bool",
    "datetime": "datetime64[ns]",
}


def _empty_frame(columns: list[ColumnSpec]) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series([], dtype=_DTYPES[c.type]) for c in columns})


def _scalar(value: Any) -> Any:
    """A YAML-friendly Python scalar from a numpy/pandas one."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def infer_contract(
    df: Any,
    *,
    name: str = "",
    key: str | list[str] | None = None,
    margin: float = 0.0,
    max_categories: int = MAX_CATEGORIES,
) -> Contract:
    """A contract that ``df`` passes: types, nullability, observed ranges (widened by
    ``margin`` times the range on each side), categories of low-cardinality string columns,
    uniqueness of integer and string columns seen on enough rows to mean it, and at least one
    row. Key columns get their type only: the key check covers uniqueness, and new data brings
    new ids, so an observed id range would reject every new batch."""
    from keel.data._validate import as_frame

    frame = as_frame(df)
    if len(frame) == 0:
        raise InvalidInput("cannot infer a contract from an empty frame (0 rows)", field="df")
    keys = [key] if isinstance(key, str) else list(key or [])
    for k in keys:
        if k not in frame.columns:
            raise InvalidInput(f"key column '{k}' is not in the frame", field="key")
    if keys and frame.duplicated(subset=keys).any():
        raise InvalidInput(f"key {keys} is not unique in the frame", field="key")
    columns = [_infer_column(str(c), frame[c], c in keys, margin, max_categories)
               for c in frame.columns]  # fmt: skip
    return Contract(name, tuple(columns), tuple(keys), min_rows=1)


_UNIQUE_EVIDENCE_ROWS = 50


def _infer_column(
    name: str, series: pd.Series, in_key: bool, margin: float, max_categories: int
) -> ColumnSpec:
    kind = column_kind(series)
    if kind == "mixed":
        found = sorted({type(v).__name__ for v in series.dropna().to_numpy(dtype=object)})
        raise InvalidInput(f"mixed types in one column: {', '.join(found)}", field=name)
    if kind == "empty":
        return ColumnSpec(name, "string", nullable=True)
    spec = ColumnSpec(name, kind, nullable=bool(series.isna().any()) and not in_key)
    values = series.dropna()
    if values.empty or in_key:
        return spec
    if kind in ("integer", "float", "datetime"):
        low, high = values.min(), values.max()
        if margin and kind != "datetime":
            pad = (high - low) * margin
            low, high = low - pad, high + pad
            if kind == "integer":
                low, high = int(np.floor(low)), int(np.ceil(high))
        spec = replace(spec, min=_scalar(low), max=_scalar(high))
    if kind == "string":
        distinct = values.nunique()
        if distinct <= max_categories and distinct * 2 <= len(values):
            spec = replace(spec, allowed=tuple(sorted(str(v) for v in values.unique())))
        spec = replace(spec, max_length=int(values.str.len().max()))
    # A handful of rows is unique by chance; claim uniqueness only with some evidence.
    if (
        kind in ("integer", "string")
        and len(values) >= _UNIQUE_EVIDENCE_ROWS
        and not values.duplicated().any()
    ):
        spec = replace(spec, unique=True)
    return spec
