"""Contracts: inference, YAML round trip, and errors that name the check and where."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from keel.data._contract import Contract, infer_contract
from keel.errors import InvalidInput, QuerySyntaxError


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "amount": [1.5, 2.0, None, 10.0, 3.0, 4.0],
            "country": ["FR", "DE", "FR", "FR", "DE", "DE"],
            "when": pd.to_datetime(["2024-01-01"] * 5 + ["2024-03-01"]),
            "ok": [True, False, True, True, True, False],
        }
    )


def test_infer(df: pd.DataFrame) -> None:
    c = infer_contract(df, name="churn", key="id")
    assert c.key == ("id",) and c.min_rows == 1
    # A key column gets its type only: the key check covers uniqueness, new batches bring new ids.
    key_col = c.column("id")
    assert (key_col.type, key_col.nullable, key_col.unique, key_col.min, key_col.max) == (
        "integer",
        False,
        False,
        None,
        None,
    )
    assert c.column("amount").nullable and c.column("amount").max == 10.0
    assert c.column("country").allowed == ("DE", "FR")
    assert c.column("when").type == "datetime" and c.column("when").min.startswith("2024-01-01")
    assert c.column("ok").type == "boolean"
    assert not c.column("amount").unique  # six rows are no evidence of uniqueness
    wide = infer_contract(df, margin=0.5)
    assert wide.column("id").min == -2 and wide.column("id").max == 9
    many = pd.DataFrame({"code": [f"c{i}" for i in range(60)], "n": range(60)})
    assert infer_contract(many).column("code").unique and infer_contract(many).column("n").unique


def test_yaml_round_trip_is_stable_and_readable(df: pd.DataFrame) -> None:
    c = infer_contract(df, name="churn", key="id")
    text = c.to_yaml()
    assert text.splitlines()[0] == "contract: churn"
    assert text.index("id:") < text.index("amount:") < text.index("country:")
    again = Contract.from_yaml(text)
    assert again == c and again.to_yaml() == text


def test_pyarrow_table(df: pd.DataFrame) -> None:
    assert infer_contract(pa.Table.from_pandas(df)).column("amount").type == "float"


def test_hand_written_contract() -> None:
    text = """
contract: orders
key: order_id
rows: {min: 1, max: 1000}
columns:
  order_id: {type: integer, nullable: false, unique: true}
  amount: {type: float, min: 0}
  email: {type: string, max_length: 100}
checks:
  - name: small_or_known
    expr: amount < 100 or not is_null(email)
"""
    c = Contract.from_yaml(text)
    assert c.key == ("order_id",) and c.max_rows == 1000
    assert c.checks[0].name == "small_or_known"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("columns: {a: {type: integer, maxx: 3}}", "columns.a", "unknown check 'maxx'"),
        ("columns: {a: {type: int}}", "columns.a.type", "expected a type"),
        ("colums: {}", "contract", "unknown field 'colums'"),
        ("rows: {least: 1}", "rows", "unknown check 'least'"),
        ("columns: {a: {type: string, min: 1}}", "columns.a.min", "does not apply"),
        ("columns: {a: {type: integer, min: 'x'}}", "columns.a.min", "expected a number"),
        ("columns: {a: {type: string, allowed: [1]}}", "columns.a.allowed", "is not a string"),
        ("columns: {a: {type: integer, nullable: 'no'}}", "columns.a.nullable", "true or false"),
        ("key: b\ncolumns: {a: {type: integer}}", "key", "not declared"),
        ("checks: [{name: c, exp: a > 1}]", "checks[0]", "unknown field 'exp'"),
        (
            "checks: [{name: c, expr: 'a > 1'}, {name: c, expr: 'a > 2'}]",
            "checks[1].name",
            "duplicate",
        ),
        ("[1, 2]", "contract", "expected a mapping"),
        ("a: [", "contract", "not valid YAML"),
    ],
)
def test_bad_contracts_name_the_place(text: str, where: str, what: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Contract.from_yaml(text)
    assert err.value.field == where
    assert what in str(err.value)


def test_custom_checks_are_checked_at_load_time() -> None:
    base = "columns: {amount: {type: float}}\nchecks: [{name: c, expr: '%s'}]"
    with pytest.raises(QuerySyntaxError) as err:
        Contract.from_yaml(base % "amout > 1")
    assert err.value.field == "checks.c" and err.value.position == 0
    with pytest.raises(QuerySyntaxError, match="cannot compare"):
        Contract.from_yaml(base % "amount > ''x''")
    with pytest.raises(QuerySyntaxError) as err:
        Contract.from_yaml(base % "amount >")
    assert err.value.position == 8


def test_unsafe_yaml_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML"):
        Contract.from_yaml("!!python/object/apply:os.system ['true']")


def test_bad_frames() -> None:
    with pytest.raises(InvalidInput, match="empty frame"):
        infer_contract(pd.DataFrame({"a": pd.Series([], dtype="int64")}))
    mixed = pd.DataFrame({"m": pd.Series([1, "a", 2.5], dtype=object)})
    with pytest.raises(InvalidInput) as err:
        infer_contract(mixed)
    assert err.value.field == "m" and "mixed types" in str(err.value)
    with pytest.raises(InvalidInput, match="not unique"):
        infer_contract(pd.DataFrame({"k": [1, 1]}), key="k")
    with pytest.raises(InvalidInput, match="DataFrame"):
        infer_contract([1, 2])  # type: ignore[arg-type]
