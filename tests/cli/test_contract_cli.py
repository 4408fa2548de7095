"""`keel data contract` and `keel data validate`, on a Typer app built from the module (the
`keel data` group mounts the same objects)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import keel.data
from keel.cli import _contract
from keel.errors import InvalidInput, QuerySyntaxError

runner = CliRunner()
cli = typer.Typer()
cli.add_typer(_contract.app, name="contract")
cli.command("validate")(_contract.validate)


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_infer_save_show_validate(tmp_path: Path) -> None:
    keel.data.add(pd.DataFrame({"id": [1, 2, 3], "plan": ["a", "b", "a"]}), name="churn")
    out = tmp_path / "churn.yaml"
    text = invoke("contract", "infer", "churn@v1", "-k", "id", "-o", str(out))
    assert "contract: churn" in text and "saved as contract churn v1" in text
    edited = out.read_text() + "checks:\n  - name: small\n    expr: id < 3\n"
    out.write_text(edited)
    assert "churn v2" in invoke("contract", "save", "churn", str(out))
    assert "name: small" in invoke("contract", "show", "churn")
    assert "name: small" not in invoke("contract", "show", "churn", "--version", "1")

    failed = invoke("validate", "churn@v1", code=1)
    assert "checks.small" in failed and "FAILED" in failed
    report = json.loads(invoke("validate", "churn@v1", "--quarantine", "--json", code=1))
    assert report["quarantine"] == "churn-quarantine@v1"
    assert [r["check"] for r in report["results"] if not r["passed"]] == ["checks.small"]

    csv = tmp_path / "batch.csv"
    csv.write_text("id,plan\n1,a\n2,b\n")
    assert "passed" in invoke("validate", str(csv), "--name", "churn")


def test_bad_contract_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: {a: {type: integer, maxx: 1}}\n")
    with pytest.raises(InvalidInput, match="unknown check 'maxx'"):
        invoke("contract", "save", "churn", str(bad))
    bad.write_text("columns: {a: {type: integer}}\nchecks: [{name: c, expr: 'a >'}]\n")
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    with pytest.raises(QuerySyntaxError):
        invoke("validate", str(csv), "--contract", str(bad))
