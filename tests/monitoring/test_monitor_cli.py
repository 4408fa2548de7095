"""`keel monitor run|history|report|schedule|schedules|unschedule|worker|metrics`: help,
tables, --json for scripts, and errors that say what to do next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from keel.cli import app
from monitoring.monitor_support import HOUR_MS, label, register_model, send

runner = CliRunner()
COMMANDS = ("run", "history", "report", "schedule", "schedules", "unschedule", "worker", "metrics")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, ["monitor", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.fixture
def logged() -> None:
    """A day of traffic up to now (the CLI uses the clock), half of it labelled."""
    from keel import _time

    now = _time.now_ms()
    register_model()
    traffic = send("churn", rows=300, start_ms=now - 20 * HOUR_MS, end_ms=now - 1000, shift=1.5)
    label("churn", traffic, share=0.5)


def test_run_history_report_and_metrics(logged: None, tmp_path: Path) -> None:
    out = runner.invoke(app, ["monitor", "run", "churn", "--json", "--fail-on-drift"])
    assert out.exit_code == 2, out.output  # shifted traffic: dataset drift
    doc = json.loads(out.output)
    assert doc["summary"]["dataset_drift"] is True and doc["rows"] == 300
    assert doc["quantities"]["label_coverage"] == {"value": 0.5, "n": 300}
    table = runner.invoke(app, ["monitor", "run", "churn", "-w", "12h", "--save-reference",
                                str(tmp_path / "ref.json")])  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "drift share" in table.output and "DATASET DRIFT" in table.output
    assert "Data drift per column" in table.output
    assert json.loads((tmp_path / "ref.json").read_text())["source"] == "churn-train@v1"
    again = runner.invoke(app, ["monitor", "run", "churn", "-r", str(tmp_path / "ref.json")])
    assert again.exit_code == 0, again.output

    hist = runner.invoke(app, ["monitor", "history", "churn", "--json"])
    runs = json.loads(hist.output)
    assert len(runs) == 3 and runs[-1]["id"] == doc["id"]  # newest first
    listed = runner.invoke(app, ["monitor", "history", "churn", "-n", "2"])
    assert listed.exit_code == 0 and "Monitoring history of churn" in listed.output

    html, js = tmp_path / "r.html", tmp_path / "r.json"
    rep = runner.invoke(app, ["monitor", "report", "churn", "-o", str(html), "--json", str(js)])
    assert rep.exit_code == 0, rep.output
    assert html.read_text().startswith("<!doctype html>")
    assert json.loads(js.read_text())["deployment"] == "churn"

    text = runner.invoke(app, ["monitor", "metrics"]).output
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {"keel_monitor_value", "keel_monitor_samples"} <= names
    prom = tmp_path / "keel.prom"
    assert runner.invoke(app, ["monitor", "metrics", "--out", str(prom)]).exit_code == 0
    assert "keel_monitor_value{" in prom.read_text()


def test_schedule_worker_once_and_unschedule(logged: None) -> None:
    made = runner.invoke(app, ["monitor", "schedule", "churn", "--every", "1h", "-w", "6h",
                               "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["options"] == {"window": "6h"}
    listed = json.loads(runner.invoke(app, ["monitor", "schedules", "--json"]).output)
    assert [s["deployment"] for s in listed] == ["churn"]
    worked = runner.invoke(app, ["monitor", "worker", "--once"])
    assert worked.exit_code == 0, worked.output
    assert "churn: stored" in worked.output and "Ran 1 due monitor(s)" in worked.output
    after = json.loads(runner.invoke(app, ["monitor", "schedules", "--json"]).output)[0]
    assert after["runs"] == 1 and after["last_status"] == "ok"
    assert runner.invoke(app, ["monitor", "schedules"]).exit_code == 0
    assert runner.invoke(app, ["monitor", "unschedule", "churn"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["monitor", "schedules", "--json"]).output) == []


def test_errors_say_what_to_do() -> None:
    from keel.errors import InvalidInput, NotFound

    bad = runner.invoke(app, ["monitor", "run", "churn", "--window", "soon"])
    assert isinstance(bad.exception, InvalidInput) and bad.exception.field == "window"
    missing = runner.invoke(app, ["monitor", "report", "churn"])
    assert isinstance(missing.exception, NotFound)
    assert "keel monitor run churn" in str(missing.exception)
    gone = runner.invoke(app, ["monitor", "unschedule", "churn"])
    assert isinstance(gone.exception, NotFound)
    assert runner.invoke(app, ["monitor", "schedule", "churn"]).exit_code == 2  # --every needed


def test_worker_stops_cleanly_on_sigterm(keel_home: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = os.environ | {"KEEL_HOME": str(keel_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel", "monitor", "worker", "--poll", "1s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "polling every 1s" in first, first
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "Stopping after the current run" in rest
