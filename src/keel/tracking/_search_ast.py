"""The frozen AST of the run search language, built by ``_search`` and compiled by
``_search_sql``.

Nodes compare equal regardless of where they stood in the query (positions are kept only for
error messages), and ``str(node)`` is a canonical query text that parses back to an equal node:
the page-token fingerprint is built from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from keel.tracking._records import RunStatus

Kind = Literal["metric", "param", "tag", "attribute"]
# canonical attribute name -> is it a number (else text)
ATTRIBUTES = {
    "id": False, "name": False, "status": False, "start_ms": True, "end_ms": True,
    "user": False, "host": False, "project": False, "parent_id": False, "git_commit": False,
    "duration_ms": True,
}  # fmt: skip
PREFIXES: dict[str, Kind] = {
    "metric": "metric", "metrics": "metric",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "tag": "tag", "tags": "tag",
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute", "run": "attribute",
}  # fmt: skip
ALIASES = {
    "run_id": "id", "run_name": "name", "start_time": "start_ms", "end_time": "end_ms",
    "user_id": "user", "parent_run_id": "parent_id", "duration": "duration_ms",
}  # fmt: skip
PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:]*")
_PLURAL = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}


@dataclass(frozen=True, slots=True)
class Ident:
    """``metrics.auc``; for attributes ``key`` is the canonical name (``start_ms``)."""

    kind: Kind
    key: str
    position: int = field(default=0, compare=False)

    @property
    def numeric(self) -> bool:
        return self.kind == "metric" or (self.kind == "attribute" and ATTRIBUTES[self.key])

    def __str__(self) -> str:
        if self.kind == "attribute":
            return self.key
        key = self.key if PLAIN_KEY.fullmatch(self.key) else "`" + self.key.replace("`", "``") + "`"
        return f"{_PLURAL[self.kind]}.{key}"


@dataclass(frozen=True, slots=True)
class Value:
    """A literal; numbers keep their source ``text`` (exact decimal comparison on PostgreSQL)."""

    kind: Literal["number", "string", "bool"]
    value: int | float | str | bool
    text: str = field(default="", compare=False)
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        if self.kind == "number":
            return self.text or repr(self.value)
        if self.kind == "bool":
            return "true" if self.value else "false"
        escaped = str(self.value).replace("\\", "\\\\").replace("'", "\\'")
        return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"


@dataclass(frozen=True, slots=True)
class Compare:
    ident: Ident
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: Value

    def __str__(self) -> str:
        return f"{self.ident} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class InList:
    ident: Ident
    values: tuple[Value, ...]
    negated: bool = False

    def __str__(self) -> str:
        items = ", ".join(str(v) for v in self.values)
        return f"{self.ident} {'not in' if self.negated else 'in'} ({items})"


@dataclass(frozen=True, slots=True)
class Like:
    ident: Ident
    pattern: str
    case_insensitive: bool = False
    negated: bool = False

    def __str__(self) -> str:
        op = ("not " if self.negated else "") + ("ilike" if self.case_insensitive else "like")
        return f"{self.ident} {op} {Value('string', self.pattern)}"


@dataclass(frozen=True, slots=True)
class IsNull:
    ident: Ident
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.ident} is {'not ' if self.negated else ''}null"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr

    def __str__(self) -> str:
        return f"not ({self.operand})"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]

    def __str__(self) -> str:
        return " and ".join(f"({o})" for o in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]

    def __str__(self) -> str:
        return " or ".join(f"({o})" for o in self.operands)


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty filter."""

    def __str__(self) -> str:
        return ""


Expr = Compare | InList | Like | IsNull | Not | And | Or | MatchAll


@dataclass(frozen=True, slots=True)
class OrderKey:
    ident: Ident
    descending: bool = False

    def __str__(self) -> str:
        return f"{self.ident} {'desc' if self.descending else 'asc'}"


def type_error(ident: Ident, op: str, value: Value) -> tuple[str, bool] | None:
    """Why ``ident op value`` cannot mean anything (and whether to blame ``op``), or None."""
    like = op in ("like", "ilike")
    if like and ident.numeric:
        return f"'{op}' needs text, but {ident} is a number", True
    if like and value.kind != "string":
        return f"expected a quoted pattern after '{op}'", False
    if value.kind == "bool" and (op not in ("=", "!=", "in") or ident.kind == "attribute"):
        return f"true/false cannot be used with {ident if ident.kind == 'attribute' else op}", False
    if ident.numeric and value.kind == "string":
        return f"{ident} is a number: compare it with a number, not a string", False
    if ident.kind == "attribute" and not ident.numeric and value.kind == "number":
        return f"{ident} is text: quote the value, e.g. {ident} = '...'", False
    status = ident == Ident("attribute", "status") and op in ("=", "!=", "in")
    if status and str(value.value).upper() not in RunStatus.__members__:
        return f"unknown status {value.value!r}; expected one of {', '.join(RunStatus)}", False
    return None
