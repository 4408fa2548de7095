"""Smoke test of ``benchmarks/monitoring.py``: Keel's side only, at a tiny size.

It runs the real driver and worker (generated Parquet, a subprocess, fresh folders) so the
benchmark cannot rot between full runs; it makes no Evidently virtualenv and asserts no timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "monitoring.py"


def test_keel_side_profiles_and_assesses(tmp_path: Path) -> None:
    out = tmp_path / "monitoring.json"
    work = tmp_path / "work"
    cmd = [sys.executable, str(SCRIPT), "--sides", "keel", "--rows", "3000"]
    cmd += ["--repeat", "1", "--json", "--out", str(out)]
    env = {**os.environ, "KEEL_BENCH_WORK": str(work)}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    payload = json.loads(out.read_text())
    assert json.loads(proc.stdout) == payload
    keel = payload["raw"]["keel.drift.3000"]
    assert (keel["rows"], keel["columns"]) == (3000, 25)
    # The five columns the generator shifts, and only those, are found drifting.
    assert sorted(keel["drifted"]) == sorted(payload["data"]["drifting"])
    assert keel["auc"] > 0.55
    assert keel["peak_mib"] is not None and keel["peak_mib"] >= 0
    assert payload["agreement"] == []  # no peer ran
    assert all(row.get("peer_s", row.get("peer_mib")) is None for row in payload["results"])
    assert not any(work.iterdir())
