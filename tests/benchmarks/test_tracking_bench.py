"""Smoke test of ``benchmarks/tracking.py``: Keel's side only, at tiny sizes.

It runs the real driver and workers (subprocesses, fresh folders, read-back checks) so the
benchmark cannot rot between full runs, but it makes no MLflow virtualenv and asserts no timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tracking.py"


def test_keel_side_stores_and_reads_back_everything(tmp_path: Path) -> None:
    out = tmp_path / "tracking.json"
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--sides",
        "keel",
        "--metric-calls",
        "300",
        "--runs",
        "5",
        "--search-runs",
        "40",
        "--repeat",
        "2",
        "--json",
        "--out",
        str(out),
    ]
    env = {**os.environ, "KEEL_BENCH_WORK": str(work)}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    payload = json.loads(out.read_text())
    assert json.loads(proc.stdout) == payload
    raw = payload["raw"]
    assert set(raw) == {"keel.metrics", "keel.runs", "keel.search"}
    # The workers verify values and names themselves; these are the completeness counts.
    assert raw["keel.metrics"]["points"] == 300
    assert raw["keel.runs"]["runs"] == 5
    assert raw["keel.search"]["count"] > 0
    assert len(raw["keel.search"]["laps"]) == 2
    assert all(row["peer_s"] is None for row in payload["results"])
    assert payload["sizes"] == {"metric_calls": 300, "runs": 5, "search_runs": 40, "repeat": 2}
    # Fresh folders are removed after each task.
    assert not any(work.iterdir())
