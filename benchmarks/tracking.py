"""Experiment tracking, Keel against MLflow, side by side on one machine.

    python benchmarks/tracking.py            # full sizes, writes benchmarks/results/tracking.json
    python benchmarks/tracking.py --quick    # smaller sizes, a smoke run (writes nothing)
    python benchmarks/tracking.py --json     # print the results as JSON only

Three measurements, each side in a fresh subprocess of its own interpreter (Keel: the one running
this script; MLflow: ``benchmarks/.venvs/mlflow``, made on first run) with a fresh SQLite
database, timed in-process around the work only, and read back complete afterwards:

1. ``metrics``: N ``log_metric`` calls to one run, including the final flush. MLflow three ways:
   synchronous calls, asynchronous calls (``synchronous=False`` + ``flush_async_logging``), and
   ``MlflowClient.log_batch`` (chunks of 1,000 metrics: MLflow's per-call limit).
2. ``runs``: R runs made with the fluent API, each with 10 params and 10 metrics, ended.
3. ``search``: S runs are stored first (untimed, each tool's fastest path), then a search with
   a metric filter, a param filter and an order is timed ``repeat`` times (median); both tools
   must find the same runs.

This file is also the worker: the driver runs it again as ``--worker TASK`` in each interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _harness as h

MLFLOW_REQUIREMENT = "mlflow==3.17.2"

FULL = {"metric_calls": 10_000, "runs": 1_000, "search_runs": 10_000, "repeat": 5}
QUICK = {"metric_calls": 1_000, "runs": 100, "search_runs": 1_000, "repeat": 3}

SEARCH_FILTER = "metrics.auc > 0.9 and params.C = '0.5'"
PARAMS_PER_RUN = 10
METRICS_PER_RUN = 10
MLFLOW_BATCH_LIMIT = 1_000  # MLflow rejects log_batch calls with more metrics than this
TARGETS = {"metrics": 100.0, "metrics_async": 1.0, "metrics_batch": 1.0, "runs": 5.0, "search": 5.0}


# --- the data both tools store ---------------------------------------------------------------


def metric_values(n: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(n)]


def run_data(i: int) -> tuple[dict[str, str], dict[str, float]]:
    """Params and metrics of run ``i``: the same for both tools, whatever the order of calls."""
    rng = random.Random(i)
    params = {"C": rng.choice(["0.1", "0.5", "1.0", "2.0"])}
    params.update({f"p{j}": str(rng.randint(0, 99)) for j in range(1, PARAMS_PER_RUN)})
    metrics = {"auc": round(rng.uniform(0.5, 1.0), 6)}
    metrics.update({f"m{j}": round(rng.random(), 6) for j in range(1, METRICS_PER_RUN)})
    return params, metrics


def expected_matches(n: int) -> list[str]:
    """Names of the runs SEARCH_FILTER selects, best auc first."""
    hits = []
    for i in range(n):
        params, metrics = run_data(i)
        if metrics["auc"] > 0.9 and params["C"] == "0.5":
            hits.append((-metrics["auc"], f"run-{i}"))
    return [name for _, name in sorted(hits)]


def digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"read-back check failed: {message}")


def check_history(points: list[tuple[int, float]], n: int) -> None:
    """``points`` as (step, value): exactly one per step 0..n-1, with the logged values."""
    values = metric_values(n)
    check(len(points) == n, f"{len(points)} metric points stored, {n} logged")
    points = sorted(points)
    check(
        all(step == i and value == values[i] for i, (step, value) in enumerate(points)),
        "stored steps/values differ from the logged ones",
    )


@contextmanager
def unsynced_sqlite() -> Iterator[None]:
    """``PRAGMA synchronous=OFF`` on every SQLite connection either tool checks out meanwhile.

    Only the untimed storing of runs before the search benchmark uses it, on both sides alike:
    it takes one fsync off every commit, so storing 10,000 runs takes seconds instead of minutes,
    and it cannot change what the timed, read-only search finds or how fast it reads.
    """
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def off(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA synchronous=OFF")

    event.listen(Pool, "checkout", off)
    try:
        yield
    finally:
        event.remove(Pool, "checkout", off)


# --- Keel side -------------------------------------------------------------------------------


def keel_setup(workdir: Path) -> Any:
    home = workdir / "keel-home"
    home.mkdir()
    os.environ["KEEL_HOME"] = str(home)
    os.environ["KEEL_TRACKING_URI"] = f"sqlite:///{home / 'keel.db'}"
    import keel

    return keel


def keel_search_all(keel: Any, project: str, query: str, order_by: Sequence[str]) -> list[Any]:
    """Every matching run, page after page (both tools cap one page at 50,000 runs)."""
    found: list[Any] = []
    token = None
    while True:
        page = keel.search_runs(
            query,
            projects=[project],
            order_by=list(order_by),
            max_results=50_000,
            page_token=token,
        )
        found.extend(page.items)
        token = page.next_token
        if not token:
            return found


def keel_metrics(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_setup(workdir)
    n = p["metric_calls"]
    values = metric_values(n)
    with keel.start_run(project="bench", name="metrics") as run, h.timed() as calls:
        for i in range(n):
            keel.log_metric("loss", values[i], step=i)
        with h.timed() as flush:
            keel.flush()
    history = keel.Client().metric_history(run.id, "loss")
    check_history([(m.step, m.value) for m in history], n)
    return {"seconds": calls.seconds, "flush_s": flush.seconds, "points": len(history)}


def keel_runs(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_setup(workdir)
    n = p["runs"]
    data = [run_data(i) for i in range(n)]
    # One untimed run elsewhere, so lazy imports and the schema are not in the figure.
    with keel.start_run(project="warmup", name="warmup"):
        keel.log_params({"x": "1"})
    with h.timed() as t:
        for i, (params, metrics) in enumerate(data):
            with keel.start_run(project="bench", name=f"run-{i}"):
                keel.log_params(params)
                keel.log_metrics(metrics, step=0)
    stored = keel_search_all(keel, "bench", "", ())
    check(len(stored) == n, f"{len(stored)} runs stored, {n} made")
    by_name = {r.name: r for r in stored}
    for i, (params, metrics) in enumerate(data):
        run = by_name[f"run-{i}"]
        check(str(run.status) == "FINISHED", f"run-{i} is {run.status}")
        check(dict(run.params) == params, f"params of run-{i}")
        check(dict(run.metrics) == metrics, f"metrics of run-{i}")
    return {"seconds": t.seconds, "runs": len(stored)}


def keel_populate(keel: Any, n: int) -> None:
    """Store ``n`` runs the way ``mlflow_populate`` does: create, one ``log_batch``, end (the
    environment is captured once, as MLflow's client captures none)."""
    from keel.tracking import Metric
    from keel.tracking._env import capture_env

    client = keel.Client()
    env = capture_env()
    for i in range(n):
        params, metrics = run_data(i)
        run = client.create_run("bench", f"run-{i}", env=env)
        now = int(time.time() * 1000)
        client.log_batch(
            run.id,
            metrics=[Metric(k, v, step=0, timestamp_ms=now) for k, v in metrics.items()],
            params=params,
        )
        client.end_run(run.id)


def keel_search(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_setup(workdir)
    n = p["search_runs"]
    with h.timed() as populate, unsynced_sqlite():
        keel_populate(keel, n)
    order = ["-metrics.auc"]
    median, laps, found = h.repeat_median(
        lambda: keel_search_all(keel, "bench", SEARCH_FILTER, order), p["repeat"]
    )
    names = [r.name for r in found]
    check(names == expected_matches(n), "search results differ from the expected runs")
    check(all(len(r.params) == PARAMS_PER_RUN for r in found), "incomplete params in results")
    return {
        "seconds": median,
        "laps": laps,
        "count": len(names),
        "digest": digest(names),
        "populate_s": populate.seconds,
    }


# --- MLflow side -----------------------------------------------------------------------------


def mlflow_setup(workdir: Path, experiment: str = "bench") -> tuple[Any, Any, str]:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    # Creates the database and runs MLflow's migrations, outside any timed region.
    experiment_id = mlflow.set_experiment(experiment).experiment_id
    return mlflow, MlflowClient(), experiment_id


def mlflow_metrics(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client, _ = mlflow_setup(workdir)
    from mlflow.entities import Metric

    mode = p["mode"]
    n = p["metric_calls"]
    values = metric_values(n)
    flush_s = 0.0
    with mlflow.start_run(run_name="metrics") as run:
        run_id = run.info.run_id
        with h.timed() as t:
            if mode == "sync":
                for i in range(n):
                    mlflow.log_metric("loss", values[i], step=i)
            elif mode == "async":
                for i in range(n):
                    mlflow.log_metric("loss", values[i], step=i, synchronous=False)
                with h.timed() as flush:
                    mlflow.flush_async_logging()
                flush_s = flush.seconds
            elif mode == "batch":
                for start in range(0, n, MLFLOW_BATCH_LIMIT):
                    now = int(time.time() * 1000)
                    chunk = [
                        Metric(key="loss", value=values[i], timestamp=now, step=i)
                        for i in range(start, min(n, start + MLFLOW_BATCH_LIMIT))
                    ]
                    client.log_batch(run_id, metrics=chunk, synchronous=True)
            else:
                raise ValueError(f"unknown mode {mode!r}")
    history = client.get_metric_history(run_id, "loss")
    check_history([(m.step, m.value) for m in history], n)
    return {"seconds": t.seconds, "flush_s": flush_s, "points": len(history), "mode": mode}


def mlflow_search_all(
    client: Any, experiment_id: str, query: str, order_by: Sequence[str]
) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=query,
            order_by=list(order_by),
            max_results=50_000,
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


def mlflow_runs(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    mlflow, client, experiment_id = mlflow_setup(workdir, "warmup")
    n = p["runs"]
    data = [run_data(i) for i in range(n)]
    with mlflow.start_run(run_name="warmup"):
        mlflow.log_params({"x": "1"})
    experiment_id = mlflow.set_experiment("bench").experiment_id
    with h.timed() as t:
        for i, (params, metrics) in enumerate(data):
            with mlflow.start_run(run_name=f"run-{i}"):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics, step=0)
    stored = mlflow_search_all(client, experiment_id, "", ())
    check(len(stored) == n, f"{len(stored)} runs stored, {n} made")
    by_name = {r.info.run_name: r for r in stored}
    for i, (params, metrics) in enumerate(data):
        run = by_name[f"run-{i}"]
        check(run.info.status == "FINISHED", f"run-{i} is {run.info.status}")
        check(run.data.params == params, f"params of run-{i}")
        check(run.data.metrics == metrics, f"metrics of run-{i}")
    return {"seconds": t.seconds, "runs": len(stored)}


def mlflow_populate(client: Any, experiment_id: str, n: int) -> None:
    """Store ``n`` runs the fastest way MLflow's client offers: one ``log_batch`` per run."""
    from mlflow.entities import Metric, Param

    for i in range(n):
        params, metrics = run_data(i)
        run = client.create_run(experiment_id, run_name=f"run-{i}")
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(key=k, value=v, timestamp=now, step=0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            synchronous=True,
        )
        client.set_terminated(run.info.run_id)


def mlflow_search(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    _, client, experiment_id = mlflow_setup(workdir)
    n = p["search_runs"]
    with h.timed() as populate, unsynced_sqlite():
        mlflow_populate(client, experiment_id, n)
    order = ["metrics.auc DESC"]
    median, laps, found = h.repeat_median(
        lambda: mlflow_search_all(client, experiment_id, SEARCH_FILTER, order), p["repeat"]
    )
    names = [r.info.run_name for r in found]
    check(names == expected_matches(n), "search results differ from the expected runs")
    check(all(len(r.data.params) == PARAMS_PER_RUN for r in found), "incomplete params")
    return {
        "seconds": median,
        "laps": laps,
        "count": len(names),
        "digest": digest(names),
        "populate_s": populate.seconds,
    }


WORKERS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "keel:metrics": keel_metrics,
    "keel:runs": keel_runs,
    "keel:search": keel_search,
    "mlflow:metrics": mlflow_metrics,
    "mlflow:runs": mlflow_runs,
    "mlflow:search": mlflow_search,
}


def worker_main(task: str, params: dict[str, Any], workdir: Path, out: Path) -> None:
    side = task.split(":", 1)[0]
    result = WORKERS[task](workdir, params)
    result["tool_version"] = tool_version(side)
    result["sqlite"] = sqlite3.sqlite_version
    result["python"] = sys.version.split()[0]
    h.write_worker_result(out, result)


def tool_version(side: str) -> str:
    from importlib.metadata import version

    return version("keel-mlops" if side == "keel" else "mlflow")


# --- the driver ------------------------------------------------------------------------------


def plan(sizes: dict[str, int], sides: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(result key, worker task, params) for every measurement. The two sides of a benchmark
    run back to back, so that a change in the machine's load skews a ratio as little as it can."""
    metric = {"metric_calls": sizes["metric_calls"]}
    runs = {"runs": sizes["runs"]}
    search = {"search_runs": sizes["search_runs"], **_rep(sizes)}
    items = [
        ("keel.metrics", "keel:metrics", metric),
        ("mlflow.metrics_sync", "mlflow:metrics", {**metric, "mode": "sync"}),
        ("mlflow.metrics_async", "mlflow:metrics", {**metric, "mode": "async"}),
        ("mlflow.metrics_batch", "mlflow:metrics", {**metric, "mode": "batch"}),
        ("keel.runs", "keel:runs", runs),
        ("mlflow.runs", "mlflow:runs", runs),
        ("keel.search", "keel:search", search),
        ("mlflow.search", "mlflow:search", search),
    ]
    return [item for item in items if item[1].split(":", 1)[0] in sides]


def _rep(sizes: dict[str, int]) -> dict[str, int]:
    return {"repeat": sizes["repeat"]}


def rows(raw: dict[str, dict[str, Any]], sizes: dict[str, int]) -> list[h.Row]:
    def sec(key: str) -> float | None:
        return raw[key]["seconds"] if key in raw else None

    m, r, s = sizes["metric_calls"], sizes["runs"], sizes["search_runs"]
    log = f"{m:,} log_metric + flush"
    batch_note = f"log_batch in chunks of {MLFLOW_BATCH_LIMIT:,} (MLflow's limit)"
    return [
        h.Row(log, sec("keel.metrics"), "sync", sec("mlflow.metrics_sync"), TARGETS["metrics"]),
        h.Row(
            log,
            sec("keel.metrics"),
            "async + flush",
            sec("mlflow.metrics_async"),
            TARGETS["metrics_async"],
        ),
        h.Row(
            log,
            sec("keel.metrics"),
            "log_batch",
            sec("mlflow.metrics_batch"),
            TARGETS["metrics_batch"],
            batch_note,
        ),
        h.Row(
            f"{r:,} runs x {PARAMS_PER_RUN} params + {METRICS_PER_RUN} metrics",
            sec("keel.runs"),
            "fluent",
            sec("mlflow.runs"),
            TARGETS["runs"],
        ),
        h.Row(
            f"search over {s:,} runs (median of {sizes['repeat']})",
            sec("keel.search"),
            "MlflowClient",
            sec("mlflow.search"),
            TARGETS["search"],
            f"filter {SEARCH_FILTER!r}, ordered by auc",
        ),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = h.bench_parser(
        __doc__, peer="mlflow", default_out="benchmarks/results/tracking.json", timeout=3600
    )
    ap.add_argument("--metric-calls", type=int, help="override benchmark 1's size")
    ap.add_argument("--runs", type=int, help="override benchmark 2's size")
    ap.add_argument("--search-runs", type=int, help="override benchmark 3's size")
    ap.add_argument("--repeat", type=int, help="repetitions of the timed search")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, json.loads(args.params), args.workdir, args.out)
        return 0

    sizes = dict(QUICK if args.quick else FULL)
    for key in ("metric_calls", "runs", "search_runs", "repeat"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    sides = h.parse_sides(args.sides, peer="mlflow")
    pythons = {"keel": Path(sys.executable)}
    if "mlflow" in sides:
        pythons["mlflow"] = h.ensure_venv("mlflow", [MLFLOW_REQUIREMENT], quiet=args.json)

    script = Path(__file__).resolve()
    machine = h.machine_info()
    source = h.git_state("src")
    raw: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for key, task, params in plan(sizes, sides):
        if not args.json:
            print(f"running {key} {params} ...", file=sys.stderr, flush=True)
        side = task.split(":", 1)[0]
        raw[key] = h.run_task(pythons[side], script, task, params, timeout_s=args.timeout)
    if "keel.search" in raw and "mlflow.search" in raw:
        k, m = raw["keel.search"], raw["mlflow.search"]
        if (k["count"], k["digest"]) != (m["count"], m["digest"]):
            raise SystemExit(f"search results disagree: Keel {k['count']}, MLflow {m['count']}")

    table = rows(raw, sizes)
    versions = {"python": sys.version.split()[0]}
    for key, result in raw.items():
        versions[key.split(".", 1)[0]] = result["tool_version"]
    payload = h.result_payload(
        "tracking",
        started=started,
        machine=machine,
        versions=versions,
        source=source,
        fields={
            "backend": "SQLite files, no server, one fresh folder per task",
            "sizes": sizes,
            "search_filter": SEARCH_FILTER,
            "results": [row.to_dict() for row in table],
            "raw": raw,
        },
    )
    out = args.out
    if out is None and not args.quick and set(sides) == {"keel", "mlflow"} and sizes == FULL:
        out = h.RESULTS_DIR / "tracking.json"
    if h.publish(payload, out, as_json=args.json):
        h.print_table("Keel vs MLflow: experiment tracking", table, peer_name="MLflow")
        if out is not None:
            print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
