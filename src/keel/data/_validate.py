"""Validation of a DataFrame batch against a contract: every check is one vectorised mask over
the batch, and the report says per check whether it passed, how many rows failed and shows a few
of them. With ``quarantine=True`` the batch is split into valid and failed rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from keel.data._checks import ROW_CHECKS, Mask, bad_type_rows, column_kind, type_matches
from keel.data._contract import ColumnSpec, Contract
from keel.data._expr import columns_of, evaluate, parse_check
from keel.errors import InvalidInput

MAX_EXAMPLES = 5
FAILED_CHECKS_COLUMN = "_keel_failed_checks"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome. ``check`` is its path in the contract (``columns.amount.min``);
    ``examples`` are up to N failing rows as ``{"index": ..., "values": {...}}``; a check whose
    column is missing or of the wrong type is ``skipped`` (and the cause fails on its own)."""

    check: str
    passed: bool
    failed_rows: int = 0
    examples: tuple[dict[str, Any], ...] = ()
    message: str = ""
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "failed_rows": self.failed_rows,
            "examples": list(self.examples),
            "message": self.message,
            "skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of ``validate``; ``passed`` only when every check passed."""

    contract: str
    rows: int
    results: tuple[CheckResult, ...]
    failed_row_count: int
    valid_rows: pd.DataFrame | None = field(default=None, repr=False)
    failed_rows: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def result(self, check: str) -> CheckResult:
        for r in self.results:
            if r.check == check:
                return r
        raise InvalidInput(f"no check '{check}' in the report", field="check")

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "rows": self.rows,
            "passed": self.passed,
            "failed_row_count": self.failed_row_count,
            "results": [r.to_dict() for r in self.results],
        }


def as_frame(data: Any) -> pd.DataFrame:
    """A pandas DataFrame from a DataFrame or a pyarrow Table; ``InvalidInput`` otherwise."""
    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            dupes = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
            raise InvalidInput(f"duplicate column names: {', '.join(dupes)}", field="df")
        return data
    import pyarrow as pa

    if isinstance(data, pa.Table):
        frame: pd.DataFrame = data.to_pandas()
        return frame
    raise InvalidInput(
        f"expected a pandas DataFrame or a pyarrow Table, found {type(data).__name__}", field="df"
    )


class _Run:
    def __init__(self, df: pd.DataFrame, examples: int) -> None:
        self.df, self.examples = df, examples
        self.results: list[CheckResult] = []
        self.failing: list[tuple[str, Mask]] = []

    def table(self, check: str, passed: bool, message: str = "") -> None:
        self.results.append(CheckResult(check, passed, message=message))

    def skip(self, check: str, message: str) -> None:
        self.results.append(CheckResult(check, True, message=message, skipped=True))

    def rows(self, check: str, mask: Mask, columns: list[str], message: str = "") -> None:
        count = int(np.count_nonzero(mask))
        examples: tuple[dict[str, Any], ...] = ()
        if count:
            self.failing.append((check, mask))
            picked = np.flatnonzero(mask)[: self.examples]
            sample = self.df.iloc[picked][columns]
            examples = tuple(
                {"index": _plain(idx), "values": {c: _plain(v) for c, v in row.items()}}
                for idx, row in zip(sample.index, sample.to_dict("records"), strict=True)
            )
        self.results.append(CheckResult(check, count == 0, count, examples, message))


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value) is True):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def validate(
    df: Any, contract: Contract, *, quarantine: bool = False, examples: int = MAX_EXAMPLES
) -> ValidationReport:
    """Check ``df`` (a DataFrame or pyarrow Table) against ``contract``."""
    if not isinstance(contract, Contract):
        raise InvalidInput("expected a Contract (see Contract.from_yaml)", field="contract")
    frame = as_frame(df)
    run = _Run(frame, examples)
    n = len(frame)
    if contract.min_rows is not None:
        run.table("rows.min", n >= contract.min_rows, f"{n} rows, at least {contract.min_rows}")
    if contract.max_rows is not None:
        run.table("rows.max", n <= contract.max_rows, f"{n} rows, at most {contract.max_rows}")
    usable = {spec.name for spec in contract.columns if _column(run, spec)}
    if contract.key:
        check = "key"
        if all(k in usable for k in contract.key):
            keys = list(contract.key)
            mask = frame.duplicated(subset=keys, keep=False).to_numpy()
            run.rows(check, mask, keys, f"key ({', '.join(keys)}) must be unique")
        else:
            run.skip(check, "a key column is missing or of the wrong type")
    declared = {spec.name for spec in contract.columns}
    for custom in contract.checks:
        _custom(run, custom.name, custom.expr, usable, declared)
    failed_any = np.zeros(n, dtype=bool)
    for _, mask in run.failing:
        failed_any |= mask
    valid = failed = None
    if quarantine:
        valid, failed = _split(frame, failed_any, run.failing)
    return ValidationReport(
        contract.name, n, tuple(run.results), int(failed_any.sum()), valid, failed
    )


def _column(run: _Run, spec: ColumnSpec) -> bool:
    """Runs a column's checks; False when the column cannot be value-checked."""
    prefix = f"columns.{spec.name}"
    if spec.name not in run.df.columns:
        run.table(f"{prefix}.present", False, f"column '{spec.name}' is missing")
        return False
    series = run.df[spec.name]
    kind = column_kind(series)
    declared = spec.declared()
    if type_matches(kind, spec.type):
        run.table(f"{prefix}.type", True, f"{spec.type}")
        ok = True
    elif kind == "mixed":
        mask = bad_type_rows(series, spec.type)
        run.rows(f"{prefix}.type", mask, [spec.name], f"mixed types; expected {spec.type}")
        ok = False
    else:
        run.table(f"{prefix}.type", False, f"expected {spec.type}, found {kind}")
        ok = False
    for name, param in declared.items():
        if name == "type":
            continue
        check = f"{prefix}.{name}"
        if not ok and name != "nullable":
            run.skip(check, f"skipped: column is not {spec.type}")
            continue
        run.rows(check, ROW_CHECKS[name](series, param), [spec.name], _describe(name, param))
    return ok


def _describe(name: str, param: Any) -> str:
    if name in ("nullable", "unique"):
        return (
            {"nullable": "no nulls", "unique": "values must be unique"}[name]
            if (name == "unique" or not param)
            else "nulls allowed"
        )
    if name == "allowed":
        return f"one of {list(param)}"
    return f"{name} {param}"


def _custom(run: _Run, name: str, text: str, usable: set[str], declared: set[str]) -> None:
    check = f"checks.{name}"
    node = parse_check(text, field=check)
    used = sorted(columns_of(node))
    for column in used:
        if column not in run.df.columns and column not in declared:
            evaluate(node, run.df.iloc[:0], text=text, field=check)  # names the column
        if column in declared and column not in usable:
            run.skip(check, f"skipped: column '{column}' is missing or of the wrong type")
            return
    passes = evaluate(node, run.df, text=text, field=check)
    run.rows(check, ~passes, used, text)


def _split(
    frame: pd.DataFrame, failed_any: Mask, failing: list[tuple[str, Mask]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = np.flatnonzero(failed_any)
    labels = np.full(len(rows), "", dtype=object)
    for check, mask in failing:
        hit = mask[rows]
        labels[hit] = labels[hit] + ("," + check)
    failed = frame.iloc[rows].copy()
    failed[FAILED_CHECKS_COLUMN] = [s[1:] for s in labels]
    return frame[~failed_any].copy(), failed
