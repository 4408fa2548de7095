# ruff: noqa: E501 - the tables read best one case per line
"""The search language parser: every operator and literal form, precedence, identifiers, order_by,
and errors that say what was expected and point at the offending character."""

from __future__ import annotations

import random

import pytest

from keel.errors import InvalidInput, QuerySyntaxError
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

AUC = Ident("metric", "auc")
LR = Ident("param", "lr")
TEAM = Ident("tag", "team")


def num(v: float) -> Value:
    return Value("number", v)


def text(v: str) -> Value:
    return Value("string", v)


@pytest.mark.parametrize(
    ("source", "op"),
    [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"),
     (">=", ">=")],
)  # fmt: skip
def test_every_comparison_operator(source: str, op: str) -> None:
    assert parse_filter(f"metrics.auc {source} 0.5") == Compare(AUC, op, num(0.5))  # type: ignore[arg-type]
    assert parse_filter(f"metrics.auc{source}0.5") == Compare(AUC, op, num(0.5))  # type: ignore[arg-type]


def test_list_like_and_null_operators() -> None:
    assert parse_filter("params.lr in (0.1, 1)") == InList(LR, (num(0.1), num(1)))
    assert parse_filter("params.lr NOT IN ('a')") == InList(LR, (text("a"),), negated=True)
    assert parse_filter("tags.team like 'm%'") == Like(TEAM, "m%")
    assert parse_filter("tags.team not like 'm_'") == Like(TEAM, "m_", negated=True)
    assert parse_filter("tags.team ILike 'M%'") == Like(TEAM, "M%", case_insensitive=True)
    assert parse_filter("tags.team not ilike 'x'") == Like(TEAM, "x", True, True)
    assert parse_filter("tags.team is null") == IsNull(TEAM)
    assert parse_filter("tags.team IS NOT NULL") == IsNull(TEAM, negated=True)


def test_boolean_operators_precedence_and_parentheses() -> None:
    a, b, c = (Compare(Ident("metric", k), ">", num(1)) for k in "abc")
    assert parse_filter("metrics.a > 1 or metrics.b > 1 and metrics.c > 1") == Or((a, And((b, c))))
    assert parse_filter("(metrics.a > 1 or metrics.b > 1) AND metrics.c > 1") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("not metrics.a > 1 and metrics.b > 1") == And((Not(a), b))
    assert parse_filter("NOT (metrics.a > 1 Or metrics.b > 1)") == Not(Or((a, b)))
    assert parse_filter("not not metrics.a > 1") == Not(Not(a))
    assert parse_filter("metrics.a > 1 and (metrics.b > 1 and metrics.c > 1)") == And((a, b, c))
    assert parse_filter("((metrics.a > 1))") == a
    assert parse_filter("") == MatchAll()
    assert parse_filter("  \n ") == MatchAll()


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("0", num(0)), ("42", num(42)), ("-7", num(-7)), ("+3", num(3)), ("0.25", num(0.25)),
     (".5", num(0.5)), ("5.", num(5.0)), ("-.5", num(-0.5)), ("1e3", num(1000.0)),
     ("-1.5E-3", num(-0.0015)), ("2e+2", num(200.0)), ("'single'", text("single")),
     ('"double"', text("double")), ("''", text("")), (r"'it\'s'", text("it's")),
     (r'"say \"hi\""', text('say "hi"')), (r"'a\\b'", text("a\\b")), (r"'tab\there'", text("tab\there")),
     (r"'line\nbreak\r'", text("line\nbreak\r")), (r"'caf\u00e9'", text("café")), ("'café'", text("café")),
     (r"'50\%'", text("50\\%")), (r"'a\_b'", text("a\\_b")), ('"it\'s"', text("it's")),
     ("true", Value("bool", True)), ("FALSE", Value("bool", False))],
)  # fmt: skip
def test_literal_forms(literal: str, expected: Value) -> None:
    parsed = parse_filter(f"params.lr = {literal}")
    assert parsed == Compare(LR, "=", expected)
    assert isinstance(parsed, Compare)
    assert type(parsed.value.value) is type(expected.value)
    assert parsed.value.position == len("params.lr = ")


@pytest.mark.parametrize(
    ("source", "ident"),
    [("metrics.auc", AUC), ("metric.auc", AUC), ("METRICS.auc", AUC), ("params.lr", LR),
     ("param.lr", LR), ("parameters.lr", LR), ("tags.team", TEAM), ("tag.team", TEAM),
     ("metrics.`val loss`", Ident("metric", "val loss")), ('params."lr.decay"', Ident("param", "lr.decay")),
     ("params.'a b'", Ident("param", "a b")), ("metrics.a.b", Ident("metric", "a.b")),
     ("metrics.train/loss", Ident("metric", "train/loss")), ("metrics.`a``b`", Ident("metric", "a`b")),
     ("metrics.`x > 1 and`", Ident("metric", "x > 1 and")), ("params.Lr", Ident("param", "Lr")),
     ("attributes.status", Ident("attribute", "status")), ("attr.run_id", Ident("attribute", "id")),
     ("run_name", Ident("attribute", "name")), ("start_time", Ident("attribute", "start_ms")),
     ("END_MS", Ident("attribute", "end_ms")), ("user_id", Ident("attribute", "user")),
     ("duration_ms", Ident("attribute", "duration_ms")), ("project", Ident("attribute", "project"))],
)  # fmt: skip
def test_identifiers(source: str, ident: Ident) -> None:
    parsed = parse_filter(f"{source} is null")
    assert parsed == IsNull(ident)


def test_attribute_literals_and_statuses() -> None:
    assert parse_filter("status = 'finished'") == Compare(
        Ident("attribute", "status"), "=", text("finished")
    )
    assert parse_filter("status in ('running', 'KILLED')") == InList(
        Ident("attribute", "status"), (text("running"), text("KILLED"))
    )
    assert parse_filter("start_time >= 1700000000000") == Compare(
        Ident("attribute", "start_ms"), ">=", num(1_700_000_000_000)
    )
    assert parse_filter("metrics.ok = true") == Compare(
        Ident("metric", "ok"), "=", Value("bool", True)
    )


def err(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter(query)
    assert info.value.field == "filter" and info.value.query == query
    assert str(info.value).endswith("\n  " + query + "\n  " + " " * info.value.position + "^")
    return info.value


@pytest.mark.parametrize(
    ("query", "at", "says"),
    [("metricz.auc > 1", "metricz", "unknown identifier prefix 'metricz'; expected metrics., params., tags."),
     ("attributes.colour = 'x'", "colour", "unknown attribute 'colour'"),
     ("auc > 0.5", "auc", "expected metrics.auc, params.auc, tags.auc or one of: id, name"),
     ("params.x = 'abc", "'abc", "unterminated string; expected a closing '"),
     ('tags.t = "abc', '"abc', 'unterminated string; expected a closing "'),
     ("metrics.`val loss > 1", "`val", "unterminated `quoted key`"),
     ("(metrics.a > 1 or metrics.b < 2", "<END>", "expected ')' to close the '(' at position 0, found the end"),
     ("(metrics.a > 1 metrics.b", "metrics.b", "expected ')'"),
     ("params.x in ()", ")", "expected at least one value in the list"),
     ("params.x in (1, 2", "<END>", "expected ',' or ')' in the list"),
     ("params.x in (1,)", ")", "expected a number, a quoted string or true/false after ','"),
     ("params.x in 1", "1", "expected '(' after 'in'"),
     ("metrics.a > 1 garbage", "garbage", "unexpected 'garbage'; expected 'and', 'or' or the end"),
     ("metrics.a > 1)", ")", "unexpected ')' without a matching '('"),
     ("metrics.a > 1 and", "<END>", "expected an identifier such as metrics.auc"),
     ("metrics.auc >", "<END>", "expected a number, a quoted string or true/false after '>', found the end"),
     ("metrics.auc <= and", "and", "after '<='"),
     ("metrics.auc 0.9", "0.9", "expected an operator (=, !=, <, <=, >, >=, in, not in, like, ilike, is null) after metrics.auc"),
     ("metrics.auc like '%'", "like", "'like' needs text, but metrics.auc is a number"),
     ("duration_ms ilike '1%'", "ilike", "'ilike' needs text, but duration_ms is a number"),
     ("metrics.auc = 'high'", "'high'", "metrics.auc is a number: compare it with a number, not a string"),
     ("metrics.auc in (1, 'x')", "'x'", "all values in a list must be numbers"),
     ("start_time > 'yesterday'", "'yesterday'", "start_ms is a number"),
     ("name = 5", "5", "name is text: quote the value"),
     ("status = 'done'", "'done'", "unknown status 'done'; expected one of RUNNING, FINISHED, FAILED, KILLED"),
     ("params.x like 5", "5", "expected a quoted pattern after 'like'"),
     ("params.x > true", "true", "true/false cannot be used with >"),
     ("status = true", "true", "true/false cannot be used with status"),
     ("params.x = null", "null", "null is not a value: use 'is null' or 'is not null'"),
     ("params.x is 5", "5", "expected 'null' after 'is'"),
     ("params.x is not 5", "5", "expected 'null' after 'is not'"),
     ("params.x not = 5", "=", "expected 'in', 'like' or 'ilike' after 'not'"),
     ("params.x ! 5", "<BANG+1>", "expected '=' after '!'"),
     ("params.x = 5 # c", "#", "unexpected character '#'"),
     ("params.x = 1e999", "1e999", "number 1e999 is out of range"),
     ("params.x = 12abc", "12abc", "malformed number"),
     (r"params.x = 'a\qb'", "\\q", "unknown escape '\\q'"),
     (r"params.x = '\u0000'", "\\u", "\\u escape of NUL"),
     ("metrics. > 1", ". >", "expected a key after 'metrics.'"),
     ("metrics.`` > 1", "``", "empty key"),
     ("= 5", "=", "expected an identifier such as metrics.auc, params.lr, tags.team or status, found '='"),
     ("'x' = params.a", "'x'", "expected an identifier")],
)  # fmt: skip
def test_errors_point_at_the_offending_token(query: str, at: str, says: str) -> None:
    error = err(query)
    if at == "<END>":
        position = len(query)
    elif at == "<BANG+1>":
        position = query.index("!") + 1
    elif at == ". >":
        position = query.index(".") + 1
    else:
        position = query.index(at)
    assert error.position == position, error
    assert says in error.reason, error.reason


def test_limits() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.a > 1 and " * 1000 + "metrics.a > 1")
    assert info.value.field == "filter"
    with pytest.raises(InvalidInput):
        parse_filter(5)  # type: ignore[arg-type]
    error = err("(" * 60 + "metrics.a > 1" + ")" * 60)
    assert "nested deeper" in error.reason and error.position == 50
    assert "key longer than 250" in err("metrics.`" + "k" * 251 + "` > 1").reason
    assert parse_filter("(" * 40 + "metrics.a > 1" + ")" * 40) == Compare(
        Ident("metric", "a"), ">", num(1)
    )


def test_order_by() -> None:
    assert parse_order_by([]) == []
    assert parse_order_by(
        ["-metrics.auc", "params.C asc", "start_time", "metrics.`val loss` DESC"]
    ) == [
        OrderKey(AUC, True),
        OrderKey(Ident("param", "C"), False),
        OrderKey(Ident("attribute", "start_ms"), False),
        OrderKey(Ident("metric", "val loss"), True),
    ]
    assert parse_order_by(("tags.team desc", "- id")) == [
        OrderKey(TEAM, True),
        OrderKey(Ident("attribute", "id"), True),
    ]


@pytest.mark.parametrize(
    ("item", "position", "says"),
    [("-metrics.auc desc", 13, "either a leading '-' or asc/desc"),
     ("metrics.auc descending", 12, "unexpected 'descending'; expected asc, desc or the end"),
     ("metrics.auc desc x", 17, "unexpected 'x'; expected asc, desc or the end"),
     ("", 0, "expected an identifier such as metrics.auc, -start_time"),
     ("metricz.auc", 0, "unknown identifier prefix"),
     ("--metrics.auc", 1, "expected an identifier")],
)  # fmt: skip
def test_order_by_errors(item: str, position: int, says: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_order_by([item])
    assert info.value.field == "order_by"
    assert info.value.position == position and says in info.value.reason, info.value


def test_order_by_rejects_duplicates_strings_and_too_many() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_order_by(["metrics.auc", "metric.auc desc"])
    assert "already in order_by" in info.value.reason
    for bad in ("-metrics.auc", [1], [f"metrics.m{i}" for i in range(11)]):
        with pytest.raises(InvalidInput) as error:
            parse_order_by(bad)  # type: ignore[arg-type]
        assert error.value.field == "order_by"


def random_expr(rng: random.Random, depth: int = 0) -> Expr:
    """A random tree of every node kind, over awkward keys and literals."""
    keys = ["auc", "val loss", "a.b", "x`y", "it's", 'q"uote', "é", "1st"]
    ident = Ident(rng.choice(["metric", "param", "tag"]), rng.choice(keys))
    strings = ["", "it's", 'say "x"', "back\\slash", "tab\tnew\nline", "50%", "é"]
    if depth < 3 and rng.random() < 0.45:
        kind = rng.choice([And, Or, Not])
        if kind is Not:
            return Not(random_expr(rng, depth + 1))
        children = [random_expr(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        # the parser flattens ``a and (b and c)``: build the flat form
        flat = [x for c in children for x in (c.operands if type(c) is kind else (c,))]  # type: ignore[union-attr]
        return kind(tuple(flat))
    numbers = [
        Value("number", v, t) for v, t in [(1, "1"), (-2.5, "-2.5"), (0.001, "1e-3"), (0.5, ".5")]
    ]
    value = rng.choice(numbers)
    if ident.kind != "metric" and rng.random() < 0.5:
        value = text(rng.choice(strings))
    pick = rng.randrange(4)
    if pick == 0:
        return Compare(ident, rng.choice(["=", "!=", "<", "<=", ">", ">="]), value)
    if pick == 1:
        return InList(ident, (value, value), rng.random() < 0.5)
    if pick == 2 and ident.kind != "metric":
        return Like(ident, rng.choice(strings), rng.random() < 0.5, rng.random() < 0.5)
    return IsNull(ident, rng.random() < 0.5)


def test_canonical_text_parses_back_to_the_same_tree() -> None:
    rng = random.Random(7)
    for _ in range(500):
        expr = random_expr(rng)
        text_form = str(expr)
        assert parse_filter(text_form) == expr, text_form
        assert str(parse_filter(text_form)) == text_form
