"""Compile the search AST to SQLAlchemy Core over the tracking tables, with keyset paging.

Every metric/param/tag key a query names becomes one LEFT JOIN on ``(run_id, key)`` (the primary
key, so rows never multiply), and a run lacking the key sees NULL. Each predicate is made
two-valued (``x IS NOT NULL AND x > v``), so a comparison on a missing key is false and its
``not`` true, as users expect, rather than SQL's unknown.

Params and tags are text. Against a number they are compared numerically through a guarded
cast: only values matching ``NUMERIC_RE`` are cast (to REAL on SQLite, to NUMERIC on PostgreSQL,
where an unguarded cast of ``'abc'`` would abort the query); the exponent is limited to three
digits, so no stored value can overflow PostgreSQL's NUMERIC. Text comparisons and ordering use
code-point order on both databases (``COLLATE "C"`` on PostgreSQL), and ``like`` is
case-sensitive on both (SQLite's LIKE is not, so it becomes GLOB there).

Paging is by keyset: the token holds the last row's sort values and id, and the next page is the
rows strictly after it in the (NULLs last) sort order. Run this inside ``keel.db.transaction``,
which retries transient database errors and translates the rest into ``keel.errors`` types.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    FromClause,
    Numeric,
    and_,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from keel._hashing import hash_bytes
from keel.errors import InvalidInput
from keel.tracking._search import parse_filter, parse_order_by
from keel.tracking._search_ast import (
    And,
    Compare,
    Expr,
    Ident,
    InList,
    IsNull,
    Like,
    MatchAll,
    Not,
    Or,
    OrderKey,
    Value,
)
from keel.tracking._tables import latest_metrics, params, projects, runs, tags

MAX_RESULTS = 50_000
MAX_KEYS = 50  # SQLite joins at most 64 tables
MAX_TOKEN = 400_000
NUMERIC_RE = r"\A[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?\Z"
_CMP: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
_TABLES = {"metric": latest_metrics, "param": params, "tag": tags}
_BOOLS = ("true", "false")
Col = ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class _Sort:
    expr: Col
    descending: bool
    kind: str  # how its values travel in a page token: f(loat) d(ecimal) i(nt) s(tring)


class _Compiler:
    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.joins: dict[tuple[str, str], FromClause] = {}
        self.with_project = False

    # -- operands -----------------------------------------------------------------------------

    def _alias(self, ident: Ident) -> FromClause:
        slot = (ident.kind, ident.key)
        if slot not in self.joins:
            if len(self.joins) >= MAX_KEYS:
                raise InvalidInput(f"a search may name at most {MAX_KEYS} keys", field="filter")
            self.joins[slot] = _TABLES[ident.kind].alias(f"k{len(self.joins)}")
        return self.joins[slot]

    def column(self, ident: Ident) -> Col:
        """The raw value: a float for metrics, text for params/tags, the attribute's column."""
        if ident.kind != "attribute":
            return self._alias(ident).c.value
        if ident.key == "duration_ms":
            return runs.c.end_ms - runs.c.start_ms
        if ident.key == "project":
            self.with_project = True
            return projects.c.name
        return runs.c[ident.key]

    def present(self, ident: Ident) -> ColumnElement[bool]:
        if ident.kind == "attribute":
            return self.column(ident).is_not(None)
        return self._alias(ident).c.run_id.is_not(None)

    def numeric(self, text: Col) -> Col:
        if self.pg:
            return case((text.regexp_match(NUMERIC_RE), cast(text, Numeric)), else_=None)
        return case((text.regexp_match(NUMERIC_RE), cast(text, Float)), else_=None)

    def ordered(self, text: Col) -> Col:
        return text.collate("C") if self.pg else text

    def typed(self, ident: Ident, kind: str) -> tuple[Col, Callable[[Value], Any]]:
        """The operand compared with literals of ``kind``, and how to bind such a literal."""
        col = self.column(ident)
        if ident.kind in ("param", "tag"):
            if kind == "number":
                bind = (lambda v: Decimal(v.text)) if self.pg else (lambda v: float(v.value))
                return self.numeric(col), bind
            if kind == "bool":
                return func.lower(col), lambda v: "true" if v.value else "false"
        if kind == "bool":  # metrics: true is 1
            return col, lambda v: 1.0 if v.value else 0.0
        if ident == Ident("attribute", "status"):
            return col, lambda v: str(v.value).upper()
        return col, lambda v: v.value

    # -- predicates ---------------------------------------------------------------------------

    def where(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, Compare):
            operand, bind = self.typed(expr.ident, expr.value.kind)
            if expr.op not in ("=", "!=") and expr.value.kind == "string":
                operand = self.ordered(operand)
            test = _CMP[expr.op](operand, bind(expr.value))
            return and_(self._valid(expr.ident, expr.value.kind, operand), test)
        if isinstance(expr, InList):
            operand, bind = self.typed(expr.ident, expr.values[0].kind)
            member = operand.in_([bind(v) for v in expr.values])
            valid = self._valid(expr.ident, expr.values[0].kind, operand)
            return and_(valid, not_(member) if expr.negated else member)
        if isinstance(expr, Like):
            col = self.column(expr.ident)
            pattern = expr.pattern
            if expr.ident == Ident("attribute", "status"):
                pattern = pattern.upper()
            match = self._like(col, pattern, expr.case_insensitive)
            return and_(col.is_not(None), not_(match) if expr.negated else match)
        if isinstance(expr, IsNull):
            missing = not_(self.present(expr.ident))
            return not_(missing) if expr.negated else missing
        if isinstance(expr, Not):
            return not_(self.where(expr.operand))
        if isinstance(expr, And):
            return and_(*(self.where(e) for e in expr.operands))
        if isinstance(expr, Or):
            return or_(*(self.where(e) for e in expr.operands))
        raise AssertionError(f"unexpected node {expr!r}")  # pragma: no cover

    def _valid(self, ident: Ident, kind: str, operand: Col) -> ColumnElement[bool]:
        """True when ``operand`` holds a value of ``kind`` (so the comparison is not unknown)."""
        if ident.kind in ("param", "tag") and kind == "bool":
            return operand.in_(_BOOLS)
        return operand.is_not(None)

    def _like(self, col: Col, pattern: str, case_insensitive: bool) -> ColumnElement[bool]:
        parts = _like_parts(pattern)
        if self.pg or case_insensitive:  # SQLite's LIKE folds ASCII case: right for ilike
            escaped = "".join(p if wild else _escape_like(p) for p, wild in parts)
            if self.pg and case_insensitive:
                return col.ilike(escaped, escape="\\")
            return col.like(escaped, escape="\\")
        glob = "".join(
            {"%": "*", "_": "?"}[p] if wild else ("[" + p + "]" if p in "*?[" else p)
            for p, wild in parts
        )
        return col.op("GLOB")(glob)

    # -- ordering -----------------------------------------------------------------------------

    def sorts(self, keys: Sequence[OrderKey]) -> list[_Sort]:
        if not keys:
            keys = [OrderKey(Ident("attribute", "start_ms"), descending=True)]
        out: list[_Sort] = []
        for key in keys:
            ident, desc = key.ident, key.descending
            col = self.column(ident)
            if ident.kind == "metric":
                out.append(_Sort(col, desc, "f"))
            elif ident.kind in ("param", "tag"):  # numbers first, by value; then text
                out.append(_Sort(self.numeric(col), desc, "d" if self.pg else "f"))
                out.append(_Sort(self.ordered(col), desc, "s"))
            else:
                out.append(_Sort(col if ident.numeric else self.ordered(col), desc,
                                 "i" if ident.numeric else "s"))  # fmt: skip
        if all(k.ident != Ident("attribute", "id") for k in keys):
            out.append(_Sort(self.ordered(runs.c.id), False, "s"))
        return out

    def source(self) -> FromClause:
        source: FromClause = runs
        if self.with_project:
            source = source.join(projects, projects.c.id == runs.c.project_id)
        for (_, key), alias in self.joins.items():
            on = and_(alias.c.run_id == runs.c.id, alias.c.key == key)
            source = source.outerjoin(alias, on)
        return source


def _like_parts(pattern: str) -> list[tuple[str, bool]]:
    """``a\\%b%`` -> [(a, False), (%, False), (b, False), (%, True)]: chars and wildcards.

    A backslash escapes ``%``, ``_`` and itself; before anything else it is a plain character."""
    parts: list[tuple[str, bool]] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and pattern[i + 1 : i + 2] in ("%", "_", "\\"):
            parts.append((pattern[i + 1], False))
            i += 2
            continue
        parts.append((char, char in "%_"))
        i += 1
    return parts


def _escape_like(char: str) -> str:
    return "\\" + char if char in "\\%_" else char


def _after(sorts: Sequence[_Sort], last: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``last`` in the order of ``sorts`` (NULLs last either way)."""
    alternatives = []
    equal: list[ColumnElement[bool]] = []
    for sort, value in zip(sorts, last, strict=True):
        if value is None:  # nothing sorts after a NULL within this column
            equal.append(sort.expr.is_(None))
            continue
        beyond = sort.expr < value if sort.descending else sort.expr > value
        alternatives.append(and_(*equal, or_(beyond, sort.expr.is_(None))))
        equal.append(sort.expr == value)
    return or_(*alternatives)


# -- page tokens --------------------------------------------------------------------------------


def _encode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "f":
        return float(value).hex()
    if kind == "d":
        return str(value)
    return value


def _decode_value(kind: str, raw: Any) -> Any:
    if raw is None:
        return None
    if kind == "f" and isinstance(raw, str):
        return float.fromhex(raw)
    if kind == "d" and isinstance(raw, str):
        number = Decimal(raw)
        if number.is_finite():
            return number
    if kind == "i" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind == "s" and isinstance(raw, str):
        return raw
    raise ValueError(f"bad {kind} value")


def _checksum(fingerprint: str, values: Any) -> str:
    payload = json.dumps([fingerprint, values], separators=(",", ":"))
    return hash_bytes(payload.encode())[:24]


def _make_token(fingerprint: str, sorts: Sequence[_Sort], row: Sequence[Any]) -> str:
    values = [_encode_value(s.kind, v) for s, v in zip(sorts, row, strict=True)]
    body = json.dumps({"v": values, "c": _checksum(fingerprint, values)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _read_token(token: str, fingerprint: str, sorts: Sequence[_Sort]) -> list[Any]:
    bad = InvalidInput("invalid, or from another query", field="page_token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise bad
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values, check = body["v"], body["c"]
        if not isinstance(values, list) or not isinstance(check, str) or len(values) != len(sorts):
            raise bad
        if not hmac.compare_digest(check, _checksum(fingerprint, values)):
            raise bad
        decoded = [_decode_value(s.kind, v) for s, v in zip(sorts, values, strict=True)]
    except (binascii.Error, ValueError, TypeError, KeyError, InvalidOperation) as exc:
        raise bad from exc
    if any(isinstance(v, float) and math.isnan(v) for v in decoded):
        raise bad
    return decoded


def select_run_ids(
    conn: Connection,
    *,
    filter: str,
    order_by: Sequence[str],
    project_ids: Sequence[str] | None,
    include_deleted: bool,
    max_results: int,
    page_token: str | None,
) -> tuple[list[str], str | None]:
    """Ids of the runs on this page of the search, in order, and the next page's token."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput("must be an integer", field="max_results")
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS}", field="max_results")
    expr = parse_filter(filter)
    keys = parse_order_by(order_by)
    if isinstance(project_ids, str):
        raise InvalidInput("must be a list of project ids", field="project_ids")
    compiler = _Compiler(conn.dialect.name)
    conditions = [] if isinstance(expr, MatchAll) else [compiler.where(expr)]
    sorts = compiler.sorts(keys)
    scope = None if project_ids is None else sorted(project_ids)
    fingerprint = json.dumps([str(expr), [str(k) for k in keys], scope, bool(include_deleted)])
    if page_token is not None:
        conditions.append(_after(sorts, _read_token(page_token, fingerprint, sorts)))
    if scope is not None:
        if not scope:
            return [], None
        conditions.append(runs.c.project_id.in_(scope))
    if not include_deleted:
        conditions.append(runs.c.deleted == false())
    order = [(s.expr.desc() if s.descending else s.expr.asc()).nulls_last() for s in sorts]
    stmt = (
        select(runs.c.id, *(s.expr.label(f"s{i}") for i, s in enumerate(sorts)))
        .select_from(compiler.source())
        .where(*conditions)
        .order_by(*order)
        .limit(max_results + 1)
    )
    rows = conn.execute(stmt).all()
    ids = [str(row[0]) for row in rows[:max_results]]
    if len(rows) <= max_results:
        return ids, None
    return ids, _make_token(fingerprint, sorts, tuple(rows[max_results - 1])[1:])
