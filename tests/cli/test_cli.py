"""The `keel` command end to end: real stores under the test's Keel home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import keel
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


@pytest.fixture
def two_runs(tmp_path: Path) -> list[str]:
    ids = []
    art = tmp_path / "weights.bin"
    art.write_bytes(b"\x00\x01" * 5000)
    for name, c, auc in (("small", "0.1", 0.81), ("large", "0.5", 0.93)):
        with keel.start_run(project="cli", name=name) as run:
            keel.log_param("C", c)
            keel.log_metric("auc", auc)
            keel.log_metric("loss", 1 - auc)
            if name == "large":
                keel.log_artifact(art, artifact_path="model")
            ids.append(run.id)
    return ids


def test_every_command_has_help() -> None:
    for command in (
        [],
        ["init"],
        ["gc"],
        ["db"],
        ["db", "upgrade"],
        ["db", "current"],
        ["runs"],
        ["runs", "search"],
        ["runs", "show"],
        ["runs", "compare"],
        ["runs", "delete"],
        ["artifacts"],
        ["artifacts", "ls"],
        ["artifacts", "get"],
        ["artifacts", "put"],
        ["data"],
        *(["data", c] for c in ("add", "ls", "show", "get", "diff", "tag", "rm", "validate")),
        ["data", "contract"],
        *(["data", "contract", c] for c in ("infer", "save", "show")),
    ):
        out = invoke(*command, "--help")
        assert "Usage:" in out, command


def test_init_creates_home_and_database(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    doc = json.loads(invoke("init", str(target), "--json"))
    assert doc["created"] is True
    assert (target / ".keel" / "keel.db").is_file()
    again = json.loads(invoke("init", str(target), "--json"))
    assert again["created"] is False


def test_db_upgrade_and_current_report_head() -> None:
    from keel.db import head_revision

    doc = json.loads(invoke("db", "upgrade", "--json"))
    assert doc["to"] == doc["head"] == head_revision()
    assert json.loads(invoke("db", "current", "--json"))["current"] == head_revision()
    assert "current at revision" in invoke("db", "upgrade")


def test_search_filters_orders_and_prints_json(two_runs: list[str]) -> None:
    doc = json.loads(invoke("runs", "search", "metrics.auc > 0.5", "-o", "-metrics.auc", "--json"))
    assert [r["id"] for r in doc["runs"]] == [two_runs[1], two_runs[0]]
    assert doc["runs"][0]["params"] == {"C": "0.5"}
    only = json.loads(invoke("runs", "search", "params.C = 0.1", "--json"))
    assert [r["id"] for r in only["runs"]] == [two_runs[0]]
    table = invoke("runs", "search", "params.C in (0.1, 0.5)")
    assert two_runs[0][:8] in table and "metrics.auc" in table


def test_search_pages_with_token(two_runs: list[str]) -> None:
    first = json.loads(invoke("runs", "search", "-n", "1", "--json"))
    token = first["next_page_token"]
    assert token
    second = json.loads(invoke("runs", "search", "-n", "1", "--page-token", token, "--json"))
    assert {first["runs"][0]["id"], second["runs"][0]["id"]} == set(two_runs)
    assert second["next_page_token"] is None


def test_bad_filter_is_one_readable_error_with_position() -> None:
    result = keel_cmd("runs", "search", "metrics.auc >")
    assert result.returncode == 1
    assert "error:" in result.stderr and "position" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_by_prefix_includes_artifacts(two_runs: list[str]) -> None:
    doc = json.loads(invoke("runs", "show", two_runs[1][:7], "--json"))
    assert doc["id"] == two_runs[1]
    assert doc["metrics"]["auc"] == pytest.approx(0.93)
    assert [a["path"] for a in doc["artifacts"]] == ["model/weights.bin"]
    assert "Params" in invoke("runs", "show", two_runs[1])


def test_unknown_and_short_prefixes_are_errors(two_runs: list[str]) -> None:
    assert "no run id starts with" in keel_cmd("runs", "show", "ffffffffff").stderr
    assert "at least 6" in keel_cmd("runs", "show", "ab").stderr


def test_compare_shows_only_differences(two_runs: list[str]) -> None:
    doc = json.loads(invoke("runs", "compare", *two_runs, "--json"))
    keys = [row[0] for row in doc["rows"]]
    assert keys == ["params.C", "metrics.auc", "metrics.loss"]
    assert doc["rows"][0][1:] == ["0.1", "0.5"]


def test_delete_soft_hides_and_hard_removes(two_runs: list[str]) -> None:
    invoke("runs", "delete", two_runs[0])
    doc = json.loads(invoke("runs", "search", "--json"))
    assert [r["id"] for r in doc["runs"]] == [two_runs[1]]
    invoke("runs", "delete", two_runs[1], "--hard", "--yes")
    assert json.loads(invoke("runs", "search", "--json"))["runs"] == []
    assert keel_cmd("runs", "show", two_runs[1]).returncode == 1


def test_artifacts_ls_and_get_roundtrip(two_runs: list[str], tmp_path: Path) -> None:
    listing = json.loads(invoke("artifacts", "ls", two_runs[1], "--json"))
    assert listing[0]["path"] == "model/weights.bin" and listing[0]["size"] == 10000
    dest = tmp_path / "out"
    doc = json.loads(
        invoke("artifacts", "get", two_runs[1], "model", "--dest", str(dest), "--json")
    )
    assert doc["bytes"] == 10000
    assert (dest / "model" / "weights.bin").read_bytes() == b"\x00\x01" * 5000


def test_gc_is_dry_run_by_default_and_keeps_referenced(two_runs: list[str]) -> None:
    from keel.artifacts import open_content_store

    orphan = open_content_store().put_bytes(b"nobody refers to me")
    dry = json.loads(invoke("gc", "--grace-hours", "0", "--json"))
    assert dry["deleted_count"] == 1 and dry["kept_count"] == 1
    assert open_content_store().exists(orphan.digest)
    applied = json.loads(invoke("gc", "--grace-hours", "0", "--apply", "--json"))
    assert applied["deleted_count"] == 1
    assert not open_content_store().exists(orphan.digest)
    listing = json.loads(invoke("artifacts", "ls", two_runs[1], "--json"))
    assert open_content_store().exists(listing[0]["digest"])


def test_gc_keeps_files_of_models_logged_outside_a_run() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import keel.models

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]])
    model = LogisticRegression().fit(x, [0, 1, 1, 0])
    keel.models.log(model, name="outside", input_example=x[:2])
    applied = json.loads(invoke("gc", "--grace-hours", "0", "--apply", "--json"))
    assert applied["deleted_count"] == 0
    loaded = keel.models.load("models:/outside/1")
    assert list(loaded.predict(x)) == list(model.predict(x))


def test_artifacts_put_uploads_files_and_folders(two_runs: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("auc 0.93")
    (folder / "plots" / "roc.svg").write_text("<svg/>")
    put = json.loads(invoke("artifacts", "put", two_runs[0], str(folder), "-a", "eval", "--json"))
    assert sorted(r["path"] for r in put) == ["eval/plots/roc.svg", "eval/summary.txt"]
    one = json.loads(invoke("artifacts", "put", two_runs[0], str(folder / "summary.txt"), "--json"))
    assert one[0]["path"] == "summary.txt"
    listing = json.loads(invoke("artifacts", "ls", two_runs[0], "eval", "--json"))
    assert [f["path"] for f in listing] == ["eval/plots/roc.svg", "eval/summary.txt"]
    missing = keel_cmd("artifacts", "put", two_runs[0], str(tmp_path / "nope"))
    assert missing.returncode == 1 and "source" in missing.stderr


def test_note_set_from_python_shows_in_cli(tmp_path: Path) -> None:
    with keel.start_run(project="cli") as run:
        keel.set_note("# Baseline\nfirst try")
    assert json.loads(invoke("runs", "show", run.id, "--json"))["note"] == "# Baseline\nfirst try"
