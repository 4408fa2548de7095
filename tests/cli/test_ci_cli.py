"""`keel ci gate`: runs the gates, moves nothing, exits 1 on failure; as a real subprocess too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli import app
from keel.errors import NotFound

runner = CliRunner()


@pytest.fixture
def version(keel_home: Path) -> int:
    from sklearn.linear_model import LogisticRegression

    import keel
    import keel.data
    import keel.models

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["y"] = (frame.a + 0.3 * rng.normal(size=300) > 0).astype(int)
    ds = keel.data.add(frame, name="ci-data")
    with keel.start_run(project="ci", inputs=[ds]):
        model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
        mv = keel.models.log(model, name="ci-model", signature_from=frame[["a", "b"]])
    (keel_home.parent / "keel.toml").write_text(
        # keel.config reads [keel] from the same file (and needs the table to be there).
        f'[keel]\nproject = "ci"\n\n[gates]\ndataset = "{ds.ref}"\ntarget = "y"\n\n'
        '[gates.champion]\nmetrics = { roc_auc = ">= 0.8" }\nmax_size_mb = 10\n'
    )
    return int(mv.version)


def _holder() -> int | None:
    import keel.models

    try:
        return keel.models.get_version("ci-model", "champion").version
    except NotFound:
        return None


def test_passing_gates_exit_0_and_move_nothing(version: int) -> None:
    result = runner.invoke(app, ["ci", "gate", "ci-model", str(version), "--to", "champion"])
    assert result.exit_code == 0, result.output
    assert "roc_auc >= 0.8" in result.output and "All gates pass" in result.output
    assert _holder() is None
    import keel.models

    (decision,) = keel.models.decisions("ci-model", version)
    assert decision.action == "check" and decision.passed and not decision.moved


def test_failing_gates_exit_1_with_json_evidence(version: int, tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text("[champion]\nmax_size_mb = 0.000001\n")
    result = runner.invoke(
        app, ["ci", "gate", "ci-model", str(version), "--gates", str(strict), "--json"]
    )
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["passed"] is False and body["action"] == "check"
    (gate,) = body["gates"]
    assert gate["kind"] == "size" and gate["passed"] is False and gate["threshold"] == 1e-6
    assert _holder() is None


def test_bad_gates_file_is_an_error_naming_it(version: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keel", "ci", "gate", "ci-model", str(version), "--gates",
         str(tmp_path / "missing.toml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no gates file" in result.stderr


def test_ci_gate_as_a_subprocess_exits_nonzero_on_failure(version: int, tmp_path: Path) -> None:
    """What a CI step runs: the real command line, its exit code."""
    failing = tmp_path / "gates.toml"
    failing.write_text('[champion]\nmetrics = { roc_auc = ">= 0.9999" }\n')
    base = [sys.executable, "-m", "keel", "ci", "gate", "ci-model", str(version)]
    ok = subprocess.run(base, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*base, "--gates", str(failing)], capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert bad.returncode == 1 and "FAIL" in bad.stdout
