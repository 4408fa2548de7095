"""Many processes writing to one run at once: nothing lost, nothing duplicated, params race-free.

Each worker is a separate Python process (not a thread, not a fork) that imports Keel, opens
its own store, waits at a file barrier so that all start together, then writes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keel.db import connect
from keel.tracking._records import Metric
from keel.tracking._sql import SqlTrackingStore
from keel.tracking._tables import latest_metrics, metrics

WORKERS = 8
POINTS = 10_000
BATCH = 500

WORKER = r"""
import json, sys, time
from pathlib import Path

mode, url, sync, index, run_id, arg = sys.argv[1:7]
from keel.errors import ParamConflict
from keel.tracking._records import Metric
from keel.tracking._sql import SqlTrackingStore

store = SqlTrackingStore(url)
w = int(index)
Path(sync, f"ready-{w}").touch()
while not Path(sync, "go").exists():
    time.sleep(0.001)
if mode == "metrics":
    n, batch = (int(x) for x in arg.split(","))
    for start in range(0, n, batch):
        points = [Metric("m", float(i), w * n + i, i) for i in range(start, min(n, start + batch))]
        store.log_batch(run_id, metrics=points)
    print(json.dumps("ok"))
else:
    out = []
    # The same value from every process first (all must succeed), then a different one each.
    for key, value in (("shared", "same"), ("lr", arg)):
        try:
            store.log_batch(run_id, params={key: value})
            out.append("ok")
        except ParamConflict as exc:
            out.append(f"conflict {exc.field}")
    print(json.dumps(" ".join(out)))
"""


def run_workers(tmp_path: Path, mode: str, url: str, run_id: str, args: list[str]) -> list[str]:
    """Start one process per arg, release them together, and return what each printed."""
    sync = tmp_path / f"sync-{mode}"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, mode, url, str(sync), str(i), run_id, arg],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, arg in enumerate(args)
    ]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < len(procs):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    (sync / "go").touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out.strip().strip('"'))
    return outputs


def test_eight_processes_logging_10000_points_each_lose_and_duplicate_nothing(
    db_url: str, tmp_path: Path
) -> None:
    store = SqlTrackingStore(db_url)
    run = store.create_run(project="p")
    outputs = run_workers(tmp_path, "metrics", db_url, run.id, [f"{POINTS},{BATCH}"] * WORKERS)
    assert outputs == ["ok"] * WORKERS
    total = WORKERS * POINTS
    with connect(db_url).connect() as conn:
        count, distinct, lowest, highest = conn.execute(
            select(
                func.count(),
                func.count(metrics.c.step.distinct()),
                func.min(metrics.c.step),
                func.max(metrics.c.step),
            ).where(metrics.c.run_id == run.id)
        ).one()
        latest = conn.execute(
            select(latest_metrics.c.step, latest_metrics.c.value).where(
                latest_metrics.c.run_id == run.id
            )
        ).all()
    assert (count, distinct, lowest, highest) == (total, total, 0, total - 1)
    assert [tuple(r) for r in latest] == [(total - 1, float(POINTS - 1))]
    history = store.metric_history(run.id, "m")
    assert [m.step for m in history] == list(range(total))
    assert store.get_run(run.id).metrics == {"m": float(POINTS - 1)}


def test_eight_processes_logging_one_param(db_url: str, tmp_path: Path) -> None:
    """The same value from all succeeds; different values: exactly one wins, the rest get
    ParamConflict naming the key."""
    store = SqlTrackingStore(db_url)
    run = store.create_run(project="p")
    values = [f"0.{i}" for i in range(1, WORKERS + 1)]
    outputs = run_workers(tmp_path, "param", db_url, run.id, values)
    assert all(out.startswith("ok ") for out in outputs), outputs
    results = [out.split(" ", 1)[1] for out in outputs]
    winners = [v for v, res in zip(values, results, strict=True) if res == "ok"]
    assert len(winners) == 1, outputs
    assert sorted(results) == ["conflict params.lr"] * (WORKERS - 1) + ["ok"]
    assert store.get_run(run.id).params == {"lr": winners[0], "shared": "same"}


@pytest.mark.parametrize("batch", [1, 3])
def test_latest_metric_across_interleaved_batches(db_url: str, batch: int) -> None:
    """The upsert keeps the greatest (step, timestamp) whatever the arrival order."""
    store = SqlTrackingStore(db_url)
    run = store.create_run(project="p")
    points = [Metric("m", float(s), s, t) for s, t in [(5, 1), (9, 0), (2, 7), (9, 3), (8, 9)]]
    for start in range(0, len(points), batch):
        store.log_batch(run.id, metrics=points[start : start + batch])
    assert store.get_run(run.id).metrics == {"m": 9.0}
    history = store.metric_history(run.id, "m")
    assert [(m.step, m.timestamp_ms) for m in history] == [(2, 7), (5, 1), (8, 9), (9, 0), (9, 3)]
