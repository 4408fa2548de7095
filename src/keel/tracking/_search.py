"""The run search language: a lexer and a recursive-descent parser that build a small frozen AST.

Grammar (``docs/search.md`` is the user's version)::

    filter    := [or_expr] EOF
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := unary ("and" unary)*
    unary     := "not" unary | "(" or_expr ")" | predicate
    predicate := ident ( cmp value | ["not"] "in" "(" value ("," value)* ")"
                       | ["not"] ("like" | "ilike") string | "is" ["not"] "null" )
    order_key := ["-"] ident ["asc" | "desc"]

Checks that need no database (a metric against a string, ``like`` on a number, an unknown
status) happen here, so that every error points at the offending place in the query text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keel.errors import InvalidInput, QuerySyntaxError
from keel.tracking._search_ast import (
    ALIASES,
    ATTRIBUTES,
    PLAIN_KEY,
    PREFIXES,
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
    type_error,
)

MAX_QUERY = 10_000
MAX_ORDER_KEYS = 10
_MAX_DEPTH = 50
_MAX_KEY = 250

_KW = {"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false", "asc", "desc"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OPERATORS = {"<>": "!=", "==": "=", **{op: op for op in ("<=", ">=", "!=", "=", "<", ">")}}
_PREFIX_HINT = "expected metrics., params., tags. or attributes."
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ident string number op kw ( ) , - eof
    value: object
    pos: int
    end: int


class _Lexer:
    def __init__(self, query: str, field: str) -> None:
        self.q, self.field = query, field

    def error(self, message: str, position: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, query=self.q, position=position, field=self.field)

    def tokens(self) -> list[_Token]:
        q, i, out = self.q, 0, list[_Token]()
        while True:
            while i < len(q) and q[i].isspace():
                i += 1
            if i >= len(q):
                out.append(_Token("eof", None, len(q), len(q)))
                return out
            tok = self._one(i)
            out.append(tok)
            i = tok.end

    def _one(self, i: int) -> _Token:
        q, c = self.q, self.q[i]
        if c in "'\"":
            text, end = self._string(i)
            return _Token("string", text, i, end)
        if c in "(),":
            return _Token(c, c, i, i + 1)
        if re.match(r"[+-]?\.?[0-9]", q[i : i + 3]):
            return self._number(i)
        if c == "-":
            return _Token("-", c, i, i + 1)
        for text in (q[i : i + 2], c):
            if text in _OPERATORS:
                return _Token("op", _OPERATORS[text], i, i + len(text))
        word = _WORD.match(q, i)
        if word is None:
            return self._bad(i)
        return self._word(i, word.group(), word.end())

    def _bad(self, i: int) -> _Token:
        char = self.q[i]
        if char == "!":
            raise self.error("expected '=' after '!'", i + 1)
        raise self.error(f"unexpected character {char!r}", i)

    def _number(self, i: int) -> _Token:
        match = _NUMBER.match(self.q, i)
        assert match is not None
        text, end = match.group(), match.end()
        if end < len(self.q) and (self.q[end].isalnum() or self.q[end] in "_.`'\""):
            raise self.error(f"malformed number {self.q[i : end + 1]!r}", i)
        if not math.isfinite(float(text)):
            raise self.error(f"number {text} is out of range", i)
        value = float(text) if any(ch in text for ch in ".eE") else int(text)
        return _Token("number", Value("number", value, text, i), i, end)

    def _string(self, i: int) -> tuple[str, int]:
        q, quote, j, out = self.q, self.q[i], i + 1, list[str]()
        while j < len(q):
            c = q[j]
            if c == quote:
                return "".join(out), j + 1
            if c == "\x00":
                raise self.error("NUL character in string", j)
            if c != "\\":
                out.append(c)
                j += 1
                continue
            esc = q[j + 1 : j + 2]
            if esc in _ESCAPES and esc:
                out.append(_ESCAPES[esc])
            elif esc in ("%", "_"):
                out.append("\\" + esc)  # kept for like patterns: a literal % or _
            elif esc == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", q[j + 2 : j + 6]):
                code = int(q[j + 2 : j + 6], 16)
                if code == 0 or 0xD800 <= code <= 0xDFFF:
                    raise self.error("\\u escape of NUL or a surrogate", j)
                out.append(chr(code))
                j += 4
            elif esc:
                raise self.error(
                    f"unknown escape '\\{esc}'; expected \\\\, \\', \\\", \\n, \\r, \\t, "
                    "\\uXXXX, or \\% and \\_ in like patterns",
                    j,
                )
            else:
                break
            j += 2
        raise self.error(f"unterminated string; expected a closing {quote}", i)

    def _word(self, i: int, word: str, end: int) -> _Token:
        lower = word.lower()
        if end < len(self.q) and self.q[end] == ".":
            kind = PREFIXES.get(lower)
            if kind is None:
                raise self.error(f"unknown identifier prefix '{word}'; {_PREFIX_HINT}", i)
            key, key_end = self._key(end + 1, word)
            if kind == "attribute":
                return _Token("ident", self._attribute(key, end + 1), i, key_end)
            return _Token("ident", Ident(kind, key, i), i, key_end)
        if lower in _KW:
            return _Token("kw", lower, i, end)
        if lower in ATTRIBUTES or lower in ALIASES:
            return _Token("ident", self._attribute(word, i), i, end)
        return _Token("word", word, i, end)  # the parser says what it expected here

    def _attribute(self, name: str, position: int) -> Ident:
        canonical = ALIASES.get(name.lower(), name.lower())
        if canonical not in ATTRIBUTES:
            raise self.attribute_error(name, position)
        return Ident("attribute", canonical, position)

    def attribute_error(self, name: str, position: int) -> QuerySyntaxError:
        choices = ", ".join(ATTRIBUTES)
        return self.error(
            f"unknown attribute '{name}'; expected metrics.{name}, params.{name}, tags.{name} "
            f"or one of: {choices}",
            position,
        )

    def _key(self, i: int, prefix: str) -> tuple[str, int]:
        q = self.q
        if q[i : i + 1] == "`":
            j = i + 1
            while True:
                j = q.find("`", j)
                if j < 0:
                    raise self.error("unterminated `quoted key`; expected a closing `", i)
                if q[j + 1 : j + 2] != "`":
                    break
                j += 2
            key, end = q[i + 1 : j].replace("``", "`"), j + 1
        elif q[i : i + 1] in ("'", '"'):
            key, end = self._string(i)
        else:
            match = PLAIN_KEY.match(q, i)
            if match is None:
                raise self.error(f"expected a key after '{prefix}.'", i)
            key, end = match.group(), match.end()
        if not key:
            raise self.error("empty key", i)
        if len(key) > _MAX_KEY:
            raise self.error(f"key longer than {_MAX_KEY} characters", i)
        return key, end


class _Parser:
    def __init__(self, query: str, field: str = "filter") -> None:
        self.lexer = _Lexer(query, field)
        self.toks = self.lexer.tokens()
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def take(self) -> _Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *keywords: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in keywords

    def accept(self, *keywords: str) -> bool:
        """Consume the next token if it is one of ``keywords``."""
        found = self.at(*keywords)
        self.i += found
        return found

    def error(self, message: str, position: int | None = None) -> QuerySyntaxError:
        return self.lexer.error(message, self.tok.pos if position is None else position)

    def found(self) -> str:
        text = self.lexer.q[self.tok.pos : self.tok.end]
        return repr(text) if self.tok.kind != "eof" else "the end of the query"

    def filter(self) -> Expr:
        if self.tok.kind == "eof":
            return MatchAll()
        expr = self.or_expr()
        if self.tok.kind == ")":
            raise self.error("unexpected ')' without a matching '('")
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.found()}; expected 'and', 'or' or the end")
        return expr

    def or_expr(self) -> Expr:
        return self.chain("or", Or, lambda: self.chain("and", And, self.unary))

    def chain(self, word: str, node: type[And | Or], operand: Callable[[], Expr]) -> Expr:
        items = [operand()]
        while self.accept(word):
            items.append(operand())
        flat = [x for item in items for x in (item.operands if type(item) is node else (item,))]
        return flat[0] if len(flat) == 1 else node(tuple(flat))

    def unary(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"expression nested deeper than {_MAX_DEPTH} levels")
        try:
            if self.accept("not"):
                return Not(self.unary())
            if self.tok.kind == "(":
                opening = self.take()
                expr = self.or_expr()
                if self.tok.kind != ")":
                    raise self.error(
                        f"expected ')' to close the '(' at position {opening.pos}, "
                        f"found {self.found()}"
                    )
                self.take()
                return expr
            return self.predicate()
        finally:
            self.depth -= 1

    def ident(self, example: str) -> Ident:
        if self.tok.kind == "word":
            raise self.lexer.attribute_error(str(self.tok.value), self.tok.pos)
        if self.tok.kind != "ident":
            raise self.error(f"expected an identifier such as {example}, found {self.found()}")
        value = self.take().value
        assert isinstance(value, Ident)
        return value

    def predicate(self) -> Expr:
        ident = self.ident("metrics.auc, params.lr, tags.team or status")
        if self.tok.kind == "op":
            op = self.take()
            value = self.value(f"after '{op.value}'")
            self.check(ident, op, value)
            return Compare(ident, op.value, value)  # type: ignore[arg-type]
        if self.accept("is"):
            negated = self.accept("not")
            if not self.accept("null"):
                raise self.error(f"expected 'null' after 'is{' not' if negated else ''}'")
            return IsNull(ident, negated)
        negated = self.accept("not")
        if negated and not self.at("in", "like", "ilike"):
            raise self.error(f"expected 'in', 'like' or 'ilike' after 'not', found {self.found()}")
        if self.at("in"):
            return self.in_list(ident, negated)
        if self.at("like", "ilike"):
            op = self.take()
            pattern = self.value(f"after '{op.value}'")
            self.check(ident, op, pattern)
            return Like(ident, str(pattern.value), op.value == "ilike", negated)
        raise self.error(
            f"expected an operator (=, !=, <, <=, >, >=, in, not in, like, ilike, is null) "
            f"after {ident}, found {self.found()}"
        )

    def check(self, ident: Ident, op: _Token, value: Value) -> None:
        problem = type_error(ident, str(op.value), value)
        if problem is not None:
            message, at_operator = problem
            raise self.error(message, op.pos if at_operator else value.position)

    def in_list(self, ident: Ident, negated: bool) -> InList:
        op = self.take()
        if self.tok.kind != "(":
            raise self.error(f"expected '(' after 'in', found {self.found()}")
        self.take()
        if self.tok.kind == ")":
            raise self.error("expected at least one value in the list")
        values = [self.value("in the list")]
        while self.tok.kind == ",":
            self.take()
            values.append(self.value("after ','"))
        if self.tok.kind != ")":
            raise self.error(f"expected ',' or ')' in the list, found {self.found()}")
        self.take()
        for value in values:
            if value.kind != values[0].kind:
                raise self.error(f"all values in a list must be {values[0].kind}s", value.position)
            self.check(ident, op, value)
        return InList(ident, tuple(values), negated)

    def value(self, where: str) -> Value:
        tok = self.tok
        if tok.kind == "number":
            assert isinstance(tok.value, Value)
            value = tok.value
        elif tok.kind == "string":
            value = Value("string", str(tok.value), "", tok.pos)
        elif self.at("true", "false"):
            value = Value("bool", tok.value == "true", "", tok.pos)
        elif self.at("null"):
            raise self.error("null is not a value: use 'is null' or 'is not null'")
        else:
            raise self.error(f"expected a number, a quoted string or true/false {where}, "
                             f"found {self.found()}")  # fmt: skip
        self.take()
        return value


def parse_filter(text: str) -> Expr:
    """The AST of a filter; ``MatchAll`` for an empty one. ``QuerySyntaxError`` if it is bad."""
    if not isinstance(text, str):
        raise InvalidInput("must be a string", field="filter")
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"longer than {MAX_QUERY} characters", field="filter")
    return _Parser(text).filter()


def parse_order_by(items: Sequence[str]) -> list[OrderKey]:
    """``["-metrics.auc", "params.lr asc"]`` -> order keys; an empty sequence gives ``[]``."""
    if isinstance(items, str) or not all(isinstance(item, str) for item in items):
        raise InvalidInput("must be a list of strings such as ['-metrics.auc']", field="order_by")
    if len(items) > MAX_ORDER_KEYS:
        raise InvalidInput(f"more than {MAX_ORDER_KEYS} keys", field="order_by")
    if any(len(item) > MAX_QUERY for item in items):
        raise InvalidInput(f"a key longer than {MAX_QUERY} characters", field="order_by")
    keys: list[OrderKey] = []
    for item in items:
        parser = _Parser(item, "order_by")
        minus = parser.tok.kind == "-"
        if minus:
            parser.take()
        ident = parser.ident("metrics.auc, -start_time or 'params.lr desc'")
        descending = minus
        if parser.at("asc", "desc"):
            if minus:
                raise parser.error("use either a leading '-' or asc/desc, not both")
            descending = parser.take().value == "desc"
        if parser.tok.kind != "eof":
            raise parser.error(f"unexpected {parser.found()}; expected asc, desc or the end")
        if any(key.ident == ident for key in keys):
            raise parser.error(f"{ident} is already in order_by", ident.position)
        keys.append(OrderKey(ident, descending))
    return keys
