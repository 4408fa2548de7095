"""Smoke test of ``benchmarks/serving.py``: Keel's sides only (with and without the prediction
log), at tiny sizes.

It runs the real driver: the prepare worker registers the pipeline, a real ``keel serve``
process (and one serving a deployment, which logs predictions) answers the load generator on
a free loopback port, and the probe rows must match the model's in-process predictions. It
makes no peer virtualenv and asserts no timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"


def test_keel_side_serves_the_pipeline_under_load(tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    work = tmp_path / "work"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--sides", "keel,keel-logged"]
    cmd += ["--requests", "60"]
    cmd += ["--concurrency", "1,8", "--warmup", "10", "--json", "--out", str(out)]
    env = {**os.environ, "KEEL_BENCH_WORK": str(work)}
    for var in ("KEEL_TRACKING_URI", "KEEL_ARTIFACTS_URI", "KEEL_TOKEN"):
        env.pop(var, None)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]

    payload = json.loads(out.read_text())
    assert json.loads(proc.stdout) == payload
    assert set(payload["raw"]) == {"keel", "keel-logged"}
    logged = payload["raw"]["keel-logged"]
    # Every request the deployment answered is in its prediction log after the shutdown flush.
    assert logged["predictions_logged"] == logged["predictions_sent"] == 8 + 10 + 2 * 60
    keel = payload["raw"]["keel"]
    # The served answers equal the pipeline's own for the probe rows (checked by the driver too).
    assert keel["probe_answers"] == [int(v) for v in keel["probe"]]
    assert [lv["concurrency"] for lv in keel["levels"]] == [1, 8]
    for lv in keel["levels"]:
        assert lv["requests"] == 60
        assert lv["errors"] == {}
        assert 0 < lv["p50_s"] <= lv["p99_s"]
    assert keel["predict_s"] > 0
    assert {"keel_added_p50_at_c1_s", "keel-logged_added_p50_at_c1_s"} <= set(payload["summary"])
    assert payload["machine"]["load_average_at_start"] is not None
    # The client's own floor (a server that only answers) is measured with the same client.
    assert payload["client_floor"]["requests"] == 60 and payload["client_floor"]["errors"] == {}
    assert "keel_added_p50_at_c1_net_of_client_s" in payload["summary"]
    assert all(row["peer_s"] is None for row in payload["results"])
    assert not any(work.iterdir())  # fresh folders are removed after each task
