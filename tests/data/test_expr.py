"""The custom-check language: parsing, errors with positions, and vectorised evaluation
checked against a row-by-row Python evaluation on random frames."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from keel.data._expr import columns_of, evaluate, parse_check
from keel.errors import InvalidInput, QuerySyntaxError


def run(text: str, df: pd.DataFrame) -> list[bool]:
    return evaluate(parse_check(text), df, text=text).tolist()


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [10.0, -1.0, 500.0, None],
            "country": ["FR", "US", "US", None],
            "a": [1, 2, 3, 4],
            "b": [1, 1, 5, 4],
            "name": ["x", "yy", None, "z" * 60],
            "email": ["e@x", None, "f@y", "g@z"],
        }
    )


def test_examples_from_the_issue(df: pd.DataFrame) -> None:
    expr = "amount >= 0 and (country in ('FR','DE') or amount < 100)"
    assert run(expr, df) == [True, False, False, False]
    assert run("a <= b", df) == [True, False, True, True]
    assert run("not is_null(email)", df) == [True, False, True, True]
    assert run("len(name) <= 50", df) == [True, True, False, False]
    assert run("abs(amount) > 5 and upper(country) = 'US'", df) == [False, False, True, False]
    assert run("amount * 2 + a % 2 > 20", df) == [True, False, True, False]
    assert run("country not in ('US') and email is not null", df) == [True, False, False, True]
    assert run("`amount` is null", df) == [False, False, False, True]


def test_null_rule(df: pd.DataFrame) -> None:
    assert run("amount > 0", df)[3] is False
    assert run("not (amount > 0)", df)[3] is True
    assert run("amount / 0 > 1", df) == [False] * 4


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("amount >", 8, "expected a column"),
        ("amount >= 0 and", 15, "expected a column"),
        ("(amount > 1", 11, "expected ')'"),
        ("amount $ 1", 7, "unexpected character"),
        ("amount > 1 1", 11, "unexpected '1'"),
        ("country in 'FR'", 11, "expected '('"),
        ("eval(amount)", 0, "unknown function 'eval'"),
        ("name = 'abc", 7, "unterminated quote"),
        ("", 0, "empty expression"),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, position: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_check(text)
    assert err.value.position == position
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("amout > 1", 0, "unknown column 'amout'"),
        ("amount > 'x'", 7, "cannot compare a number with a string"),
        ("len(amount) > 1", 0, "len() needs a string"),
        ("country + 1 > 2", 8, "needs numbers"),
        ("amount", 0, "expected a true/false condition"),
        ("country in (1, 2)", 8, "cannot compare a string with a number"),
    ],
)
def test_evaluation_errors_point_at_the_problem(
    df: pd.DataFrame, text: str, position: int, reason: str
) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        run(text, df)
    assert err.value.position == position
    assert reason in err.value.reason


def test_python_code_is_not_evaluated(df: pd.DataFrame) -> None:
    for text in ("__import__('os').system('true')", "a.__class__", "[x for x in a]", "a; b"):
        with pytest.raises(QuerySyntaxError):
            run(text, df)


def test_mixed_column_is_named() -> None:
    frame = pd.DataFrame({"m": pd.Series([1, "a", 2.5], dtype=object)})
    with pytest.raises(InvalidInput, match="column 'm' has mixed types"):
        run("m > 1", frame)


def test_limits_and_columns_of() -> None:
    with pytest.raises(InvalidInput):
        parse_check("a > 1 or " * 1000 + "a > 1")
    with pytest.raises(QuerySyntaxError, match="nested deeper"):
        parse_check("not " * 60 + "a > 1")
    assert columns_of(parse_check("a > b and len(c) < 3")) == {"a", "b", "c"}


# -- property check: vectorised evaluation equals a row-by-row Python evaluation ------------

OPS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
       ">=": lambda x, y: x >= y, "=": lambda x, y: x == y, "!=": lambda x, y: x != y}  # fmt: skip


def _null(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def brute(tree: tuple, row: dict) -> object:
    kind = tree[0]
    if kind == "col":
        v = row[tree[1]]
        return None if _null(v) else v
    if kind == "lit":
        return tree[1]
    if kind == "cmp":
        x, y = brute(tree[2], row), brute(tree[3], row)
        return False if x is None or y is None else OPS[tree[1]](x, y)
    if kind == "in":
        x = brute(tree[1], row)
        return x is not None and x in tree[2]
    if kind == "isnull":
        return brute(tree[1], row) is None
    if kind == "len":
        x = brute(tree[1], row)
        return None if x is None else len(x)
    if kind == "add":
        x, y = brute(tree[1], row), brute(tree[2], row)
        return None if x is None or y is None else x + y
    if kind == "not":
        return not brute(tree[1], row)
    if kind == "and":
        return bool(brute(tree[1], row)) and bool(brute(tree[2], row))
    return bool(brute(tree[1], row)) or bool(brute(tree[2], row))


def render(tree: tuple) -> str:
    kind = tree[0]
    if kind == "col":
        return tree[1]
    if kind == "lit":
        return repr(tree[1])
    if kind == "cmp":
        return f"{render(tree[2])} {tree[1]} {render(tree[3])}"
    if kind == "in":
        return f"{render(tree[1])} in ({', '.join(repr(v) for v in tree[2])})"
    if kind == "isnull":
        return f"is_null({render(tree[1])})"
    if kind == "len":
        return f"len({render(tree[1])})"
    if kind == "add":
        return f"({render(tree[1])} + {render(tree[2])})"
    if kind == "not":
        return f"not ({render(tree[1])})"
    return f"({render(tree[1])}) {kind} ({render(tree[2])})"


def num(rng: random.Random) -> tuple:
    choice = rng.random()
    if choice < 0.4:
        return ("col", rng.choice(["x", "y"]))
    if choice < 0.6:
        return ("add", ("col", rng.choice(["x", "y"])), ("lit", rng.randint(-3, 3)))
    if choice < 0.8:
        return ("len", ("col", "s"))
    return ("lit", rng.randint(-5, 5))


def cond(rng: random.Random, depth: int = 0) -> tuple:
    choice = rng.random() if depth < 3 else rng.random() * 0.6
    if choice < 0.3:
        return ("cmp", rng.choice(list(OPS)), num(rng), num(rng))
    if choice < 0.45:
        return ("in", ("col", "s"), tuple(rng.sample(["a", "bb", "ccc", "d"], 2)))
    if choice < 0.6:
        return ("isnull", ("col", rng.choice(["x", "y", "s"])))
    if choice < 0.7:
        return ("not", cond(rng, depth + 1))
    return (rng.choice(["and", "or"]), cond(rng, depth + 1), cond(rng, depth + 1))


def random_frame(rng: random.Random, n: int) -> pd.DataFrame:
    def maybe(v: object) -> object:
        return None if rng.random() < 0.15 else v

    return pd.DataFrame(
        {
            "x": [maybe(float(rng.randint(-5, 5))) for _ in range(n)],
            "y": pd.array([maybe(rng.randint(-5, 5)) for _ in range(n)], dtype="Int64"),
            "s": [maybe(rng.choice(["a", "bb", "ccc", "d", "eeee"])) for _ in range(n)],
        }
    )


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_equals_row_by_row(seed: int) -> None:
    rng = random.Random(seed)
    frame = random_frame(rng, 60)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for _ in range(25):
        tree = cond(rng)
        text = render(tree)
        got = run(text, frame)
        want = [bool(brute(tree, row)) for row in rows]
        assert got == want, text
        assert isinstance(evaluate(parse_check(text), frame, text=text), np.ndarray)
