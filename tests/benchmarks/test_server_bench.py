"""Smoke test of ``benchmarks/server.py``: Keel's side only, on SQLite, at tiny sizes.

It runs the real driver, a real Keel server process and the workers (read-back checks
included), so the benchmark cannot rot between full runs; it makes no MLflow virtualenv and
asserts no timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "server.py"


def test_keel_side_serves_stores_and_reads_back_everything(tmp_path: Path) -> None:
    out = tmp_path / "server.json"
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--sides",
        "keel",
        "--backends",
        "sqlite",
        "--points",
        "3000",
        "--runs",
        "4",
        "--search-runs",
        "30",
        "--repeat",
        "2",
        "--json",
        "--out",
        str(out),
    ]
    env = {**os.environ, "KEEL_BENCH_WORK": str(work)}
    for var in ("KEEL_TRACKING_URI", "KEEL_ARTIFACTS_URI", "KEEL_TOKEN"):
        env.pop(var, None)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    payload = json.loads(out.read_text())
    assert json.loads(proc.stdout) == payload
    raw = payload["raw"]
    assert set(raw) == {"sqlite.keel.points", "sqlite.keel.runs", "sqlite.keel.search"}
    # The workers verify values and names themselves; these are the completeness counts.
    assert raw["sqlite.keel.points"]["points"] == 3000
    assert payload["points_per_s"]["sqlite.keel.points"] > 0
    assert raw["sqlite.keel.runs"]["runs"] == 4
    assert raw["sqlite.keel.search"]["count"] > 0
    assert len(raw["sqlite.keel.search"]["laps"]) == 2
    assert all(row["peer_s"] is None for row in payload["results"])
    assert not any(work.iterdir())  # fresh folders are removed after each task
