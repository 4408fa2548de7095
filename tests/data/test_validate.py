"""Validation: report contents, quarantine, bad input, speed, and a row-by-row reference."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from keel.data._contract import ColumnSpec, Contract, CustomCheck, infer_contract
from keel.data._validate import FAILED_CHECKS_COLUMN, validate
from keel.errors import InvalidInput, QuerySyntaxError

CONTRACT = """
contract: orders
key: id
rows: {min: 1, max: 100}
columns:
  id: {type: integer, nullable: false, unique: true}
  amount: {type: float, min: 0, max: 1000}
  country: {type: string, nullable: false, allowed: [FR, DE, US]}
  name: {type: string, max_length: 5}
checks:
  - name: rule
    expr: amount >= 0 and (country in ('FR','DE') or amount < 100)
"""


@pytest.fixture
def contract() -> Contract:
    return Contract.from_yaml(CONTRACT)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 3],
            "amount": [10.0, -5.0, 500.0, None],
            "country": ["FR", "US", "US", "XX"],
            "name": ["ann", "bob", "christina", None],
        }
    )


def test_report(contract: Contract) -> None:
    report = validate(frame(), contract)
    assert not report.passed and report.rows == 4
    assert report.result("columns.id.unique").failed_rows == 2
    assert report.result("key").failed_rows == 2
    low = report.result("columns.amount.min")
    assert low.failed_rows == 1
    assert low.examples == ({"index": 1, "values": {"amount": -5.0}},)
    assert report.result("columns.country.allowed").failed_rows == 1
    assert report.result("columns.name.max_length").failed_rows == 1
    rule = report.result("checks.rule")
    assert rule.failed_rows == 3  # -5, US with 500, a null amount
    assert report.result("columns.amount.nullable").passed
    assert report.failed_row_count == 3
    assert report.valid_rows is None
    assert report.to_dict()["results"][0]["check"] == "rows.min"


def test_quarantine(contract: Contract) -> None:
    good = pd.DataFrame({"id": [7], "amount": [1.0], "country": ["DE"], "name": ["z"]})
    report = validate(pd.concat([frame(), good], ignore_index=True), contract, quarantine=True)
    assert report.valid_rows is not None and report.failed_rows is not None
    assert report.valid_rows["id"].tolist() == [1, 7]
    assert len(report.failed_rows) == 3
    labels = report.failed_rows[FAILED_CHECKS_COLUMN].tolist()
    assert labels[0] == "columns.amount.min,checks.rule"
    assert list(report.valid_rows.columns) == ["id", "amount", "country", "name"]


def test_examples_are_bounded(contract: Contract) -> None:
    df = pd.DataFrame({"id": range(50), "amount": [-1.0] * 50, "country": ["FR"] * 50,
                       "name": ["a"] * 50})  # fmt: skip
    report = validate(df, contract, examples=3)
    assert len(report.result("columns.amount.min").examples) == 3
    assert report.result("columns.amount.min").failed_rows == 50


def test_empty_frame_is_a_report_entry(contract: Contract) -> None:
    empty = frame().iloc[:0]
    report = validate(empty, contract, quarantine=True)
    assert not report.passed
    assert [r.check for r in report.failures] == ["rows.min"]
    assert report.valid_rows is not None and report.valid_rows.empty


def test_missing_and_mistyped_columns(contract: Contract) -> None:
    df = frame().drop(columns=["country"]).assign(amount=["a", "b", "c", "d"])
    report = validate(df, contract)
    assert not report.result("columns.country.present").passed
    assert report.result("columns.amount.type").message == "expected float, found string"
    assert report.result("columns.amount.min").skipped
    assert report.result("checks.rule").skipped


def test_mixed_type_column_flags_the_rows() -> None:
    c = Contract("m", (ColumnSpec("a", "integer", min=0),))
    df = pd.DataFrame({"a": pd.Series([1, "x", 3, None, 2.5], dtype=object)})
    report = validate(df, c, quarantine=True)
    result = report.result("columns.a.type")
    assert result.failed_rows == 2 and [e["index"] for e in result.examples] == [1, 4]
    assert report.result("columns.a.min").skipped
    assert report.failed_rows is not None and len(report.failed_rows) == 2


def test_custom_check_errors() -> None:
    c = Contract("x", (), checks=(CustomCheck("c", "amout > 1"),))
    with pytest.raises(QuerySyntaxError, match="unknown column 'amout'"):
        validate(pd.DataFrame({"amount": [1.0]}), c)
    with pytest.raises(InvalidInput, match="Contract"):
        validate(pd.DataFrame(), "contract: x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="duplicate column"):
        validate(pd.DataFrame([[1, 2]], columns=["a", "a"]), c)


def test_inferred_contract_passes_its_own_data() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.integers(0, 5, 200),
                       "c": rng.choice(["x", "y", None], 200)})  # fmt: skip
    assert validate(df, infer_contract(df)).passed


# -- property check against a row-by-row Python reference --------------------------------


def brute(df: pd.DataFrame, spec: ColumnSpec) -> dict[str, set[int]]:
    values = df[spec.name].tolist()
    null = [bool(pd.isna(v)) for v in values]
    out: dict[str, set[int]] = {}
    if not spec.nullable:
        out["nullable"] = {i for i, n in enumerate(null) if n}
    if spec.unique:
        seen: dict[object, int] = {}
        for v, n in zip(values, null):
            if not n:
                seen[v] = seen.get(v, 0) + 1
        out["unique"] = {i for i, v in enumerate(values) if not null[i] and seen[v] > 1}
    for name, test in (
        ("min", lambda v: v < spec.min),
        ("max", lambda v: v > spec.max),
        ("allowed", lambda v: v not in spec.allowed),  # type: ignore[operator]
        ("max_length", lambda v: len(v) > spec.max_length),
    ):
        if getattr(spec, name) is not None:
            out[name] = {i for i, v in enumerate(values) if not null[i] and test(v)}
    return out


@pytest.mark.parametrize("seed", range(15))
def test_checks_equal_row_by_row(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(0, 80)
    df = pd.DataFrame(
        {
            "x": [None if rng.random() < 0.1 else rng.uniform(-10, 10) for _ in range(n)],
            "k": pd.array([None if rng.random() < 0.1 else rng.randint(0, 60) for _ in range(n)],
                          dtype="Int64"),
            "s": [None if rng.random() < 0.1 else rng.choice(["a", "bb", "ccc"]) for _ in range(n)],
        }
    )  # fmt: skip
    specs = (
        ColumnSpec("x", "float", nullable=rng.random() < 0.5, min=rng.uniform(-10, 0),
                   max=rng.uniform(0, 10)),
        ColumnSpec("k", "integer", nullable=False, unique=True, min=rng.randint(0, 30)),
        ColumnSpec("s", "string", allowed=("a", "bb"), max_length=rng.randint(1, 3)),
    )  # fmt: skip
    report = validate(df, Contract("p", specs), quarantine=True)
    failing: set[int] = set()
    for spec in specs:
        for check, rows in brute(df, spec).items():
            result = report.result(f"columns.{spec.name}.{check}")
            assert result.failed_rows == len(rows), (spec, check)
            assert {e["index"] for e in result.examples} <= rows
            failing |= rows
    assert report.failed_rows is not None
    assert set(report.failed_rows.index) == failing


def test_100k_rows_split_into_valid_and_failed() -> None:
    rng = np.random.default_rng(1)
    n = 100_000
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.normal(50, 20, n),
            "country": rng.choice(["FR", "DE", "US"], n),
            "name": rng.choice(["ann", "bob", "christina"], n),
        }
    )
    contract = Contract.from_yaml(CONTRACT.replace("max: 100}", "max: 1000000}"))
    validate(df.iloc[:100], contract)
    report = validate(df, contract, quarantine=True)
    assert report.rows == n
    assert report.valid_rows is not None and report.failed_rows is not None
    assert len(report.valid_rows) + len(report.failed_rows) == n
    assert set(report.valid_rows.index).isdisjoint(report.failed_rows.index)
