"""`keel models ls|versions|show|alias|lineage|trust` on the test's Keel home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

import keel
import keel.models
from keel.cli import app

runner = CliRunner()


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_models_commands(numeric: tuple[pd.DataFrame, pd.Series], helpers_path: Path) -> None:
    from keel_test_nets import Echo  # type: ignore[import-not-found]
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    assert "No registered models" in invoke("models", "ls")
    with keel.start_run(project="churn") as run:
        keel.log_input("churn@v3")
        keel.log_params({"C": 1})
        keel.models.log(LogisticRegression().fit(x, y), "churn", signature_from=x)
    keel.models.log(Echo(), "echo", flavor="pickle", trusted=True, signature_from=x)

    listing = json.loads(invoke("models", "ls", "--json"))
    assert [m["name"] for m in listing] == ["churn", "echo"]
    assert "churn" in invoke("models", "ls")
    versions = json.loads(invoke("models", "versions", "churn", "--json"))
    assert [(v["version"], v["status"]) for v in versions] == [(1, "ready")]
    assert "sklearn" in invoke("models", "versions", "churn")
    shown = invoke("models", "show", "churn/1")
    assert "model.skops" in shown and "tenure" in shown and "scikit-learn" in shown

    assert "churn@champion → version 1" in invoke("models", "alias", "churn", "champion", "1")
    assert json.loads(invoke("models", "show", "churn@champion", "--json"))["aliases"] == [
        "champion"
    ]
    invoke("models", "alias", "churn", "champion", "--delete")
    assert json.loads(invoke("models", "show", "churn/1", "--json"))["aliases"] == []

    lineage = json.loads(invoke("models", "lineage", "churn/1", "--json"))
    assert lineage["run"]["id"] == run.id and lineage["run"]["params"] == {"C": "1"}
    assert lineage["datasets"] == [{"ref": "churn@v3", "digest": None, "direction": "input"}]
    assert run.id in invoke("models", "lineage", "churn/1")
    used = json.loads(invoke("models", "lineage", "churn@v3", "--dataset", "--json"))
    assert used == [{"model": "models:/churn/1", "run_id": run.id}]

    assert "needs trust" in invoke("models", "versions", "echo")
    out = invoke("models", "trust", "echo", "1", "--reason", "our own class")
    assert "is trusted" in out
    assert keel.models.get_version("echo", 1).trusted


def test_errors_are_one_line_with_a_hint(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keel", "models", "show", "nope/1"],
        capture_output=True,
        text=True,
        check=False,
        env={"KEEL_HOME": str(tmp_path / ".keel"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "no version 1 of model 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "keel", "models", "trust", "x", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "--reason" in bad.stderr
