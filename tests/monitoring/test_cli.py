"""`keel monitor drift` on files, dataset versions and a saved reference profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import keel.data
from keel.cli import app

runner = CliRunner()


def _write(tmp_path: Path, name: str, shift: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(shift, 1, 3_000),
            "c": rng.choice(["a", "b"], 3_000),
            "y": rng.random(3_000),
        }
    )
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_drift_table_json_and_exit_codes(tmp_path: Path) -> None:
    ref = _write(tmp_path, "ref.csv", 0.0, 1)
    cur = _write(tmp_path, "cur.parquet", 1.0, 2)
    result = runner.invoke(app, ["monitor", "drift", str(ref), str(cur)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wasserstein" in result.output and "drift" in result.output
    assert "Drifted: 1 of 3 tested columns" in result.output

    out = runner.invoke(
        app, ["monitor", "drift", str(ref), str(cur), "--json", "-c", "x", "-c", "c"]
    )
    data = json.loads(out.output)
    assert [c["column"] for c in data["columns"]] == ["x", "c"]
    assert data["drifted_columns"] == ["x"] and data["dataset_drift"] is True

    # One drifted column of three is below the default dataset-drift share of 50 %.
    lenient = runner.invoke(app, ["monitor", "drift", str(ref), str(cur), "--fail-on-drift"])
    assert lenient.exit_code == 0, lenient.output
    failing = runner.invoke(
        app, ["monitor", "drift", str(ref), str(cur), "--fail-on-drift", "--drift-share", "0.3"]
    )
    assert failing.exit_code == 2
    same = _write(tmp_path, "same.csv", 0.0, 3)
    calm = runner.invoke(
        app, ["monitor", "drift", str(ref), str(same), "--fail-on-drift", "--drift-share", "0.3"]
    )
    assert calm.exit_code == 0, calm.output


def test_dataset_refs_saved_profile_and_multivariate(tmp_path: Path) -> None:
    keel.data.add(_write(tmp_path, "ref.parquet", 0.0, 1), name="churn")
    cur = _write(tmp_path, "cur.csv", 0.5, 2)
    saved = tmp_path / "churn-v1.json"
    first = runner.invoke(
        app,
        ["monitor", "drift", "churn@v1", str(cur), "--json", "--save-reference", str(saved)],
    )
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["monitor", "drift", str(saved), str(cur), "--json"])
    assert json.loads(again.output)["columns"] == json.loads(first.output)["columns"]
    assert json.loads(again.output)["reference"] == "churn@v1"
    multi = runner.invoke(app, ["monitor", "drift", "churn@v1", str(cur), "--multivariate"])
    assert multi.exit_code == 0 and "Domain classifier: AUC" in multi.output


def test_errors_say_what_is_wrong(tmp_path: Path) -> None:
    cur = _write(tmp_path, "cur.csv", 0.0, 2)
    missing = runner.invoke(app, ["monitor", "drift", str(tmp_path / "nope.csv"), str(cur)])
    assert missing.exit_code != 0 and "no such file" in str(missing.exception)
    unknown = runner.invoke(app, ["monitor", "drift", "ghost@v1", str(cur)])
    assert unknown.exit_code != 0
    bad_test = runner.invoke(app, ["monitor", "drift", str(cur), str(cur), "--test", "t-test"])
    assert "unknown drift test" in str(bad_test.exception)
    help_text = runner.invoke(app, ["monitor", "drift", "--help"])
    assert help_text.exit_code == 0 and "--fail-on-drift" in help_text.output


def test_saving_a_reference_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from keel.monitoring import ReferenceProfile
    from keel.monitoring._sources import write_reference

    folder = tmp_path / "refs"
    folder.mkdir()
    target = folder / "ref.json"
    target.write_text("previous")
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_reference(profile, target)
    monkeypatch.undo()
    assert target.read_text() == "previous"
    assert sorted(p.name for p in folder.iterdir()) == ["ref.json"]  # no temp file left
    write_reference(profile, target)
    assert ReferenceProfile.from_json(target.read_text()) == profile
