"""`keel data` end to end on the test's Keel home, and `keel gc` keeping dataset bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from keel.cli import app

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def keel_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", *args], check=False, capture_output=True, text=True
    )


def test_add_ls_show_tag_diff_get_rm(tmp_path: Path) -> None:
    src = tmp_path / "churn.csv"
    src.write_text("id,age,plan\n1,30,a\n2,40,b\n")
    added = json.loads(invoke("data", "add", str(src), "--name", "churn", "-k", "id", "--json"))
    assert (added["ref"], added["rows"], added["existed"]) == ("churn@v1", 2, False)
    assert "Unchanged" in invoke("data", "add", str(src), "--name", "churn", "-k", "id")
    src.write_text("id,age,plan\n1,30,a\n3,50,c\n")
    assert "churn@v2" in invoke("data", "add", str(src), "--name", "churn", "-k", "id")
    listing = json.loads(invoke("data", "ls", "--json"))
    assert [v["ref"] for v in listing] == ["churn@v1", "churn@v2"]
    assert "churn@v2" in invoke("data", "ls")
    assert "churn@prod -> churn@v1" in invoke("data", "tag", "churn@v1", "prod")
    shown = json.loads(invoke("data", "show", "churn@prod", "--json"))
    assert shown["version"] == 1 and shown["profile"]["columns"]["age"]["mean"] == 35
    assert "age" in invoke("data", "show", "churn")
    d = json.loads(invoke("data", "diff", "churn@v1", "churn@v2", "--json"))
    assert (d["rows_added"], d["rows_removed"]) == (1, 1)
    assert "+1 added" in invoke("data", "diff", "churn@v1", "churn@v2")
    got = json.loads(
        invoke("data", "get", "churn@v1", "-d", str(tmp_path / "v1.parquet"), "--json")
    )
    assert Path(got["path"]).stat().st_size > 0
    invoke("data", "rm", "churn@v2")
    assert [v["ref"] for v in json.loads(invoke("data", "ls", "--json"))] == ["churn@v1"]


def test_folder_add_and_errors_name_the_problem(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    out = json.loads(invoke("data", "add", str(folder), "--name", "docs", "--json"))
    assert out["files"] == 1 and out["kind"] == "folder"
    got = json.loads(invoke("data", "get", "docs", "-d", str(tmp_path / "copy"), "--json"))
    assert (Path(got["path"]) / "a.txt").read_text() == "alpha"
    bad = tmp_path / "bad.csv"
    bad.write_bytes("x\ncaf\xe9\n".encode("latin-1"))
    result = keel_cmd("data", "add", str(bad), "--name", "bad")
    assert result.returncode == 1 and "bad.csv" in result.stderr and "UTF-8" in result.stderr
    result = keel_cmd("data", "add", str(folder), "--name", "a/b")
    assert result.returncode == 1 and "name" in result.stderr
    result = keel_cmd("data", "show", "nope@v3")
    assert result.returncode == 1 and "nope@v3" in result.stderr


def test_gc_keeps_dataset_bytes_until_the_version_is_removed(tmp_path: Path) -> None:
    from keel.artifacts import open_content_store

    src = tmp_path / "t.csv"
    src.write_text("a\n1\n")
    v = json.loads(invoke("data", "add", str(src), "--name", "t", "--json"))
    kept = json.loads(invoke("gc", "--grace-hours", "0", "--apply", "--json"))
    assert kept["deleted_count"] == 0 and open_content_store().exists(v["digest"])
    invoke("data", "rm", "t")
    gone = json.loads(invoke("gc", "--grace-hours", "0", "--apply", "--json"))
    assert gone["deleted_count"] == 1 and not open_content_store().exists(v["digest"])


def test_data_help() -> None:
    for command in ("add", "ls", "show", "get", "diff", "tag", "rm", "contract", "validate"):
        assert runner.invoke(app, ["data", command, "--help"]).exit_code == 0


def test_show_lists_the_runs_that_read_and_wrote_a_version(tmp_path: Path) -> None:
    import keel
    import keel.data

    ds = keel.data.add(pd.DataFrame({"x": [1, 2, 3]}), name="feats")
    with keel.start_run(project="lineage") as reader:
        keel.log_input(ds.ref)
    with keel.start_run(project="lineage") as writer:
        keel.Client().log_output(writer.id, ds.ref)
    shown = json.loads(invoke("data", "show", ds.ref, "--json"))
    assert shown["used_by_runs"] == [reader.id]
    assert shown["written_by_runs"] == [writer.id]
    assert reader.id[:8] in invoke("data", "show", ds.ref)
