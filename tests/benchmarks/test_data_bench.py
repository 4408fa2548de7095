"""Smoke test of ``benchmarks/data.py``: Keel's side only, at tiny sizes.

It runs the real driver and workers (generated folder, subprocesses, fresh folders, read-back
checks) so the benchmark cannot rot between full runs, but it makes no DVC virtualenv and
asserts no timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "data.py"


def test_keel_side_adds_hashes_and_profiles(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--sides",
        "keel",
        "--files",
        "12",
        "--total-mb",
        "1",
        "--rows",
        "2000",
        "--repeat",
        "1",
        "--add-repeat",
        "2",
        "--json",
        "--out",
        str(out),
    ]
    env = {**os.environ, "KEEL_BENCH_WORK": str(work)}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    payload = json.loads(out.read_text())
    assert json.loads(proc.stdout) == payload
    raw = payload["raw"]
    assert set(raw) == {"keel.hash", "keel.add", "keel.cli", "keel.floor", "keel.profile"}
    # The workers check digests, versions and read-back themselves; these are the counts.
    assert raw["keel.hash"]["files"] == 12
    assert raw["keel.add"]["files"] == 12
    # Each add task ran --add-repeat times; the CLI stored the same folder as the API.
    assert len(raw["keel.add"]["runs_s"]) == len(raw["keel.cli"]["runs_s"]) == 2
    assert raw["keel.cli"]["digest"] == raw["keel.add"]["digest"]
    assert raw["keel.add"]["bytes"] > 12 * ((1 << 20) // 12)  # the files plus the manifest
    # The floor copied the same bytes (no manifest), in the same rotation.
    assert raw["keel.floor"]["bytes"] == 12 * ((1 << 20) // 12)
    assert len(raw["keel.floor"]["runs_s"]) == 2
    (floor,) = [row for row in payload["results"] if row["peer"] == "plain durable copy"]
    assert floor["keel_s"] == raw["keel.add"]["seconds"]
    assert floor["peer_s"] == raw["keel.floor"]["seconds"]
    assert isinstance(payload["runs_kept_until_the_end"], bool)  # True with 2 GB free disk
    assert raw["keel.profile"]["rows"] == 2000 and raw["keel.profile"]["columns"] == 20
    assert all(row["peer_s"] is None for row in payload["results"] if row["peer"] == "dvc add")
    assert payload["folder"]["files"] == 12
    # The generated folder and the fresh folders are removed afterwards.
    assert not any(work.iterdir())
