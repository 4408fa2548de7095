"""The custom-check language: a lexer and recursive-descent parser to a frozen AST, and a
vectorised evaluator over a DataFrame. Text is never handed to ``eval`` or ``DataFrame.eval``.

Grammar (``docs/data-contracts.md`` is the user's version)::

    check   := or_expr EOF
    or_expr := and_expr ("or" and_expr)*
    and_expr:= not_expr ("and" not_expr)*
    not_expr:= "not" not_expr | compare
    compare := sum [ cmp sum | ["not"] "in" "(" literal ("," literal)* ")" | "is" ["not"] "null" ]
    sum     := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "%") unary)*
    unary   := "-" unary | atom
    atom    := number | string | true | false | column | `quoted column`
             | function "(" or_expr ")" | "(" or_expr ")"

A row passes when the expression is true. Null follows one rule: a comparison, ``in`` or
arithmetic touching a null is false (or null), so ``not (x > 0)`` is true for a null ``x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from keel.data._checks import column_kind
from keel.errors import InvalidInput, QuerySyntaxError

MAX_EXPR = 5_000
_MAX_DEPTH = 50
_KW = {"and", "or", "not", "in", "is", "null", "true", "false"}
_FUNCTIONS = {"is_null", "not_null", "len", "abs", "lower", "upper"}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<quoted>`(?:[^`]|``)*`)"
    r"|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op><=|>=|!=|==|<>|[-+*/%<>=(),]))"
)
_CMP = {"<", "<=", ">", ">=", "=", "==", "!=", "<>"}


@dataclass(frozen=True, slots=True)
class Node:
    """One AST node: ``kind`` is lit/col/call/neg/bin/cmp/in/isnull/not/and/or."""

    kind: str
    pos: int
    value: Any = None
    args: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _lex(text: str, field: str) -> list[_Tok]:
    toks, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            toks.append(_Tok("eof", "", i))
            return toks
        m = _TOKEN.match(text, i)
        if m is None or m.lastgroup is None:
            if text[i] in "'\"`":
                raise QuerySyntaxError("unterminated quote", query=text, position=i, field=field)
            raise QuerySyntaxError(
                f"unexpected character {text[i]!r}", query=text, position=i, field=field
            )
        kind = m.lastgroup
        start = m.start(kind)
        word = m.group(kind)
        if kind == "word" and word.lower() in _KW:
            kind, word = "kw", word.lower()
        toks.append(_Tok(kind, word, start))
        i = m.end()


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.toks = _lex(text, field)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, message: str, pos: int | None = None) -> QuerySyntaxError:
        where = self.tok.pos if pos is None else pos
        return QuerySyntaxError(message, query=self.text, position=where, field=self.field)

    def found(self) -> str:
        return "the end" if self.tok.kind == "eof" else repr(self.tok.text)

    def accept(self, kind: str, *texts: str) -> _Tok | None:
        tok = self.tok
        if tok.kind == kind and (not texts or tok.text in texts):
            self.i += 1
            return tok
        return None

    def check(self) -> Node:
        if self.tok.kind == "eof":
            raise self.error("empty expression")
        node = self.or_expr()
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.found()}; expected 'and', 'or' or the end")
        return node

    def or_expr(self) -> Node:
        return self.chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self.chain("and", self.not_expr)

    def chain(self, word: str, operand: Any) -> Node:
        first = operand()
        items = [first]
        while self.accept("kw", word):
            items.append(operand())
        return first if len(items) == 1 else Node(word, first.pos, None, tuple(items))

    def not_expr(self) -> Node:
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                raise self.error(f"expression nested deeper than {_MAX_DEPTH} levels")
            tok = self.accept("kw", "not")
            if tok:
                return Node("not", tok.pos, None, (self.not_expr(),))
            return self.compare()
        finally:
            self.depth -= 1

    def compare(self) -> Node:
        left = self.sum()
        tok = self.accept("op", *_CMP)
        if tok:
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            return Node("cmp", tok.pos, op, (left, self.sum()))
        if self.accept("kw", "is"):
            negated = bool(self.accept("kw", "not"))
            if not self.accept("kw", "null"):
                raise self.error(f"expected 'null' after 'is', found {self.found()}")
            node = Node("isnull", left.pos, None, (left,))
            return Node("not", left.pos, None, (node,)) if negated else node
        not_tok = self.accept("kw", "not")
        in_tok = self.accept("kw", "in")
        if not_tok and not in_tok:
            raise self.error(f"expected 'in' after 'not', found {self.found()}")
        if in_tok:
            node = Node("in", in_tok.pos, self.literals(), (left,))
            return Node("not", in_tok.pos, None, (node,)) if not_tok else node
        return left

    def literals(self) -> tuple[Any, ...]:
        if not self.accept("op", "("):
            raise self.error(f"expected '(' after 'in', found {self.found()}")
        values = []
        while True:
            node = self.unary()
            if node.kind != "lit" or node.value is None:
                raise self.error("expected a number, string or true/false in the list", node.pos)
            values.append(node.value)
            if self.accept("op", ")"):
                return tuple(values)
            if not self.accept("op", ","):
                raise self.error(f"expected ',' or ')' in the list, found {self.found()}")

    def sum(self) -> Node:
        node = self.term()
        while tok := self.accept("op", "+", "-"):
            node = Node("bin", tok.pos, tok.text, (node, self.term()))
        return node

    def term(self) -> Node:
        node = self.unary()
        while tok := self.accept("op", "*", "/", "%"):
            node = Node("bin", tok.pos, tok.text, (node, self.unary()))
        return node

    def unary(self) -> Node:
        tok = self.accept("op", "-")
        if tok:
            inner = self.unary()
            if inner.kind == "lit" and isinstance(inner.value, int | float):
                return Node("lit", tok.pos, -inner.value)
            return Node("neg", tok.pos, None, (inner,))
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        self.i += 1
        if tok.kind == "number":
            is_float = any(c in tok.text for c in ".eE")
            return Node("lit", tok.pos, float(tok.text) if is_float else int(tok.text))
        if tok.kind == "string":
            body = re.sub(r"\\(.)", r"\1", tok.text[1:-1])
            return Node("lit", tok.pos, body)
        if tok.kind == "kw" and tok.text in ("true", "false", "null"):
            return Node("lit", tok.pos, {"true": True, "false": False, "null": None}[tok.text])
        if tok.kind == "quoted":
            return Node("col", tok.pos, tok.text[1:-1].replace("``", "`"))
        if tok.kind == "word":
            if self.tok.kind == "op" and self.tok.text == "(":
                return self.call(tok)
            return Node("col", tok.pos, tok.text)
        if tok.kind == "op" and tok.text == "(":
            self.depth += 1
            node = self.or_expr()
            self.depth -= 1
            if not self.accept("op", ")"):
                raise self.error(f"expected ')' to close the '(' at position {tok.pos}")
            return node
        self.i -= 1
        raise self.error(f"expected a column, a value or '(', found {self.found()}")

    def call(self, name: _Tok) -> Node:
        if name.text not in _FUNCTIONS:
            raise self.error(
                f"unknown function '{name.text}'; expected one of {', '.join(sorted(_FUNCTIONS))}",
                name.pos,
            )
        self.i += 1  # the '('
        arg = self.or_expr()
        if not self.accept("op", ")"):
            raise self.error(f"expected ')' after the argument of {name.text}()")
        return Node("call", name.pos, name.text, (arg,))


def parse_check(text: str, *, field: str = "check") -> Node:
    """The AST of a custom check; ``QuerySyntaxError`` pointing at the problem if it is bad."""
    if not isinstance(text, str):
        raise InvalidInput("must be a string", field=field)
    if len(text) > MAX_EXPR:
        raise InvalidInput(f"longer than {MAX_EXPR} characters", field=field)
    return _Parser(text, field).check()


def columns_of(node: Node) -> set[str]:
    """Every column name the expression reads."""
    found = {str(node.value)} if node.kind == "col" else set()
    for arg in node.args:
        found |= columns_of(arg)
    return found


class _Eval:
    """Evaluates to (values, kind): a numpy array or scalar, kind number/string/bool/any."""

    def __init__(self, df: pd.DataFrame, text: str, field: str) -> None:
        self.df, self.text, self.field, self.n = df, text, field, len(df)

    def error(self, message: str, pos: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.text, position=pos, field=self.field)

    def run(self, node: Node) -> tuple[Any, str]:
        return getattr(self, "_" + node.kind)(node)  # type: ignore[no-any-return]

    def truth(self, node: Node) -> np.ndarray[Any, np.dtype[np.bool_]]:
        values, kind = self.run(node)
        if kind not in ("bool", "any"):
            raise self.error(f"expected a true/false condition, found a {kind}", node.pos)
        return _as_mask(values, self.n)

    def _lit(self, node: Node) -> tuple[Any, str]:
        v = node.value
        kind = (
            "any"
            if v is None
            else "bool"
            if isinstance(v, bool)
            else ("number" if isinstance(v, int | float) else "string")
        )
        return v, kind

    def _col(self, node: Node) -> tuple[Any, str]:
        name = str(node.value)
        if name not in self.df.columns:
            raise self.error(f"unknown column '{name}'", node.pos)
        series = self.df[name]
        kind = column_kind(series)
        if kind == "mixed":
            raise InvalidInput(f"column '{name}' has mixed types", field=self.field)
        if kind in ("integer", "float"):
            return series.to_numpy(dtype="float64", na_value=np.nan), "number"
        if kind == "boolean":
            return series.to_numpy(dtype=object), "bool"
        return series, {"string": "string", "datetime": "datetime"}.get(kind, "any")

    def _call(self, node: Node) -> tuple[Any, str]:
        values, kind = self.run(node.args[0])
        name = node.value
        if name in ("is_null", "not_null"):
            mask = pd.isna(values) if not np.isscalar(values) else values is None
            mask = _as_mask(mask, self.n)
            return (mask if name == "is_null" else ~mask), "bool"
        if name == "abs":
            self.need(kind, "number", node)
            return np.abs(values), "number"
        self.need(kind, "string", node)
        if isinstance(values, str):
            return (len(values) if name == "len" else getattr(values, name)()), (
                "number" if name == "len" else "string"
            )
        if name == "len":
            return values.str.len().to_numpy(dtype="float64", na_value=np.nan), "number"
        return getattr(values.str, name)(), "string"

    def need(self, kind: str, wanted: str, node: Node) -> None:
        if kind not in (wanted, "any"):
            raise self.error(f"{node.value}() needs a {wanted}, found a {kind}", node.pos)

    def _neg(self, node: Node) -> tuple[Any, str]:
        values, kind = self.run(node.args[0])
        self.need(kind, "number", Node("call", node.pos, "'-'"))
        return -values, "number"

    def _bin(self, node: Node) -> tuple[Any, str]:
        (a, ka), (b, kb) = self.run(node.args[0]), self.run(node.args[1])
        for kind in (ka, kb):
            if kind not in ("number", "any"):
                raise self.error(f"'{node.value}' needs numbers, found a {kind}", node.pos)
        a, b = _num(a), _num(b)
        with np.errstate(all="ignore"):
            if node.value == "+":
                return a + b, "number"
            if node.value == "-":
                return a - b, "number"
            if node.value == "*":
                return a * b, "number"
            b = np.where(b == 0, np.nan, b)  # division by zero is null, not an error
            return (a / b if node.value == "/" else np.fmod(a, b)), "number"

    def _cmp(self, node: Node) -> tuple[Any, str]:
        (a, ka), (b, kb) = self.run(node.args[0]), self.run(node.args[1])
        if "any" not in (ka, kb) and ka != kb:
            raise self.error(f"cannot compare a {ka} with a {kb}", node.pos)
        if a is None or b is None:
            return np.zeros(self.n, dtype=bool), "bool"
        if ka == "bool" and node.value not in ("=", "!="):
            raise self.error("booleans can only be compared with = or !=", node.pos)
        op = node.value
        with np.errstate(invalid="ignore"):
            if isinstance(a, pd.Series) or isinstance(b, pd.Series):
                left = a if isinstance(a, pd.Series) else pd.Series(a, index=self.df.index)
                result = _COMPARE[op](left, b)
                if isinstance(b, pd.Series):
                    result = result & b.notna().to_numpy()
                return _as_mask(result, self.n) & ~_as_mask(pd.isna(left), self.n), "bool"
            result = _COMPARE[op](a, b)
        mask = _as_mask(result, self.n)
        # numpy says nan != x is true; a null in a comparison is false by the one rule
        return mask & ~_null_mask(a, self.n) & ~_null_mask(b, self.n), "bool"

    def _in(self, node: Node) -> tuple[Any, str]:
        values, kind = self.run(node.args[0])
        for value in node.value:
            lit_kind = self._lit(Node("lit", node.pos, value))[1]
            if kind not in ("any", lit_kind):
                raise self.error(f"cannot compare a {kind} with a {lit_kind}", node.pos)
        if np.isscalar(values) or values is None:
            return _as_mask(values in node.value, self.n), "bool"
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        return _as_mask(series.isin(list(node.value)).to_numpy(), self.n), "bool"

    def _isnull(self, node: Node) -> tuple[Any, str]:
        values, _ = self.run(node.args[0])
        return _null_mask(values, self.n), "bool"

    def _not(self, node: Node) -> tuple[Any, str]:
        return ~self.truth(node.args[0]), "bool"

    def _and(self, node: Node) -> tuple[Any, str]:
        mask = np.ones(self.n, dtype=bool)
        for arg in node.args:
            mask &= self.truth(arg)
        return mask, "bool"

    def _or(self, node: Node) -> tuple[Any, str]:
        mask = np.zeros(self.n, dtype=bool)
        for arg in node.args:
            mask |= self.truth(arg)
        return mask, "bool"


_COMPARE: dict[str, Any] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _num(values: Any) -> Any:
    return np.nan if values is None else values


def _null_mask(values: Any, n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if values is None:
        return np.ones(n, dtype=bool)
    if np.isscalar(values):
        return np.zeros(n, dtype=bool)
    return _as_mask(pd.isna(values), n)


def _as_mask(values: Any, n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if values is None or np.isscalar(values):
        return np.full(n, bool(values), dtype=bool)
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value=False)
    array = np.asarray(values)
    if array.dtype != bool:
        array = np.array([v is True or v is np.True_ for v in array], dtype=bool)
    return array


def evaluate(node: Node, df: pd.DataFrame, *, text: str, field: str = "check") -> Any:
    """A boolean numpy array, one per row: True where the row passes the check."""
    return _Eval(df, text, field).truth(node)
