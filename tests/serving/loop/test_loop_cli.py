"""``keel deployments``: create, set, show, ls, history, feedback, with --json and readable
errors, through the real Typer app on the configured SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("default_registry")


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def keel(*args: str) -> int:
    """The console script's exit code (Keel errors become one line on stderr and 1)."""
    import sys

    from keel.cli import main

    saved = sys.argv
    sys.argv = ["keel", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def test_create_set_show_ls_history() -> None:
    code, out = run(
        "deployments", "create", "churn-prod", "--model", "churn", "--champion", "1", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["revision"] == 1
    code, out = run(
        "deployments", "set", "churn-prod", "--challenger", "2", "--mode", "canary",
        "--percent", "10", "--sticky-key", "user_id", "--max-batch-size", "16",
    )  # fmt: skip
    assert code == 0, out
    assert "revision 2" in out and "10% → v2 by user_id" in out
    code, out = run("deployments", "show", "churn-prod", "--json")
    shown = json.loads(out)
    assert (shown["mode"], shown["percent"], shown["settings"]["max_batch_size"]) == (
        "canary", 10.0, 16,
    )  # fmt: skip
    code, out = run("deployments", "ls", "--json")
    assert [d["name"] for d in json.loads(out)] == ["churn-prod"]
    code, out = run("deployments", "ls")
    assert "churn-prod" in out and "canary" in out
    code, out = run("deployments", "set", "churn-prod", "--no-challenger")
    assert code == 0, out
    code, out = run("deployments", "history", "churn-prod", "--json")
    history = json.loads(out)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[2]["changes"]["mode"] == ["canary", "single"]
    code, out = run("deployments", "history", "churn-prod")
    assert "percent: 0.0 → 10.0" in out


def test_errors_name_the_field_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert keel("deployments", "create", "d", "--model", "churn", "--champion", "4") == 1
    err = capsys.readouterr().err
    assert "champion" in err and "failed" in err
    assert keel("deployments", "create", "d", "--model", "churn", "--champion", "1",
                "--mode", "canary", "--challenger", "2") == 1  # fmt: skip
    assert "percent" in capsys.readouterr().err
    assert keel("deployments", "show", "nope") == 1
    assert "nope" in capsys.readouterr().err
    assert keel("deployments", "ls", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_feedback_upload(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("request_id,label\nr1,1\nr2,0\nr1,0\n")
    code, out = run("deployments", "feedback", "churn-prod", str(csv), "--json")
    assert code == 0, out
    assert json.loads(out) == {"received": 3, "applied": 2, "stale": 1}


def test_help_on_every_command() -> None:
    for command in ("create", "set", "show", "ls", "history", "feedback"):
        code, out = run("deployments", command, "--help")
        assert code == 0 and "Usage" in out
