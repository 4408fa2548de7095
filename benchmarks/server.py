"""The team server, Keel against ``mlflow server``, side by side under the same client load.

    python benchmarks/server.py            # full sizes, writes benchmarks/results/server.json
    python benchmarks/server.py --quick    # smaller sizes, a smoke run (writes nothing)
    python benchmarks/server.py --backends sqlite --sides keel   # one backend, one side

For each metadata backend (SQLite, PostgreSQL) and each measurement, a fresh server is started
in its own process on a free port of 127.0.0.1 with a fresh, empty database: Keel as
``uvicorn keel.server:create_app`` (1 worker, auth on, an admin token made through keel.auth,
the per-minute rate limit off), MLflow 3.17.2 as ``mlflow server --workers 1`` from
``benchmarks/.venvs/mlflow-server``. The client is a fresh subprocess of the side's own
interpreter, timed in-process around the work only, and reads everything back afterwards:

1. ``points``: N metric points to one run through the server. Keel: the SDK's
   ``Client.log_metric`` (asynchronous, batched, one HTTP request per batch) plus the final
   flush. MLflow: ``MlflowClient.log_batch`` in chunks of 1,000 (its per-call limit; its
   fastest path to a server).
2. ``runs``: R runs created and ended one after the other (the client-side latency of a run's
   life cycle: Keel's ``Client.create_run`` + ``end_run``, MLflow's ``create_run`` +
   ``set_terminated``); the median per run.
3. ``search``: S runs stored first (untimed), then a search with a metric filter, a param
   filter and an order, timed ``repeat`` times (median); both must find the same runs.

This file is also the worker: the driver runs it again as ``--worker TASK``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _harness as h

import tracking as t

MLFLOW_REQUIREMENTS = ["mlflow==3.17.2", "psycopg2-binary==2.9.11"]
PG_ADMIN = os.environ.get("KEEL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ADMIN_PASSWORD = "Bench-Operator-Passphrase-42"

FULL = {"points": 100_000, "runs": 200, "search_runs": 1_000, "repeat": 5}
QUICK = {"points": 5_000, "runs": 20, "search_runs": 100, "repeat": 2}
TARGETS = {"points": 10.0, "runs": None, "search": None}


# --- servers ---------------------------------------------------------------------------------


@contextmanager
def database(backend: str, workdir: Path, side: str) -> Iterator[str]:
    """A fresh, empty metadata database (SQLAlchemy URL of the side's driver)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{side}.db'}"
        return
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"bench_{side}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN.rsplit("/", 1)[0]
    if side == "mlflow":
        base = base.replace("postgresql+psycopg://", "postgresql+psycopg2://")
    try:
        yield f"{base}/{name}"
    finally:
        from keel.db import dispose_all

        dispose_all()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def keel_server(db_url: str, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A Keel server on ``db_url``; yields its URL and the client's environment."""
    from keel.auth import Role, open_auth_store

    auth = open_auth_store(db_url)
    try:
        auth.bootstrap_admin(ADMIN_PASSWORD)
        token, _ = auth.create_token("admin", name="bench", role=Role.ADMIN)
    finally:
        auth.close()
    from keel.db import dispose_all

    dispose_all()
    port = h.free_port()
    env = {
        **os.environ,
        "KEEL_SERVER_TRACKING_URI": db_url,
        "KEEL_SERVER_ARTIFACTS_URI": str(workdir / "server-artifacts"),
        "KEEL_SERVER_RATE_PER_MINUTE": "0",  # one client sends thousands of requests a minute
        "KEEL_HOME": str(workdir / "server-home"),
    }
    log = workdir / "keel-server.log"
    cmd = [sys.executable, "-m", "uvicorn", "keel.server:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        h.wait_up(f"{url}/api/v1/health", proc, log)
        yield (
            url,
            {
                "KEEL_TRACKING_URI": url,
                "KEEL_TOKEN": token,
                # For the points worker's CPU split (client, server, PostgreSQL backends).
                "KEEL_BENCH_SERVER_PID": str(proc.pid),
                "KEEL_BENCH_DB_URL": db_url,
            },
        )
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def mlflow_server(python: Path, db_url: str, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = h.free_port()
    mlflow = python.with_name("mlflow")
    cmd = [str(mlflow), "server", "--backend-store-uri", db_url]
    cmd += ["--default-artifact-root", str(workdir / "mlflow-artifacts")]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("VIRTUAL_ENV", None)
    log = workdir / "mlflow-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        h.wait_up(f"{url}/health", proc, log)
        yield url, {"MLFLOW_TRACKING_URI": url}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --- Keel side (workers) ---------------------------------------------------------------------


def keel_client(workdir: Path) -> Any:
    home = workdir / "keel-home"
    home.mkdir(exist_ok=True)
    os.environ["KEEL_HOME"] = str(home)
    import keel

    return keel


def keel_points(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_client(workdir)
    client = keel.Client()
    run = client.create_run("bench", "points")
    n = p["points"]
    values = t.metric_values(n)
    before = _cpu_seconds(time.process_time())
    with h.timed() as timer:
        for i in range(n):
            client.log_metric(run.id, "loss", values[i], step=i)
        client.flush()
    after = _cpu_seconds(time.process_time())
    history = client.metric_history(run.id, "loss")
    t.check_history([(m.step, m.value) for m in history], n)
    client.end_run(run.id)
    client.close()
    cpu = {k: round(after[k] - before.get(k, 0.0), 3) for k in after}
    return {"seconds": timer.seconds, "points": n, "points_per_s": n / timer.seconds, "cpu_s": cpu}


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(client: float) -> dict[str, float]:
    """CPU used so far by this client, the server process and the database's PostgreSQL
    backends (Linux /proc; on a busy machine a steadier figure than the wall time)."""
    out = {"client": client}
    pid, db_url = os.environ.get("KEEL_BENCH_SERVER_PID"), os.environ.get("KEEL_BENCH_DB_URL")
    if pid is None or not Path("/proc/self/stat").exists():
        return out
    out["server"] = _proc_cpu(int(pid))
    if db_url and db_url.startswith("postgresql"):
        import sqlalchemy as sa

        engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            pids = [row[0] for row in conn.execute(sa.text(query))]
            mine = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        engine.dispose()
        out["postgresql"] = sum(_proc_cpu(b) for b in pids if b != mine)
    return out


def keel_runs(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_client(workdir)
    client = keel.Client()
    for i in range(3):  # warm-up: connections, lazy imports
        client.end_run(client.create_run("warmup", f"w{i}").id)
    laps = []
    for i in range(p["runs"]):
        start = time.perf_counter()
        run = client.create_run("bench", f"run-{i}")
        client.end_run(run.id)
        laps.append(time.perf_counter() - start)
    stored = t.keel_search_all(keel, "bench", "", ())
    t.check(len(stored) == p["runs"], f"{len(stored)} runs stored, {p['runs']} made")
    t.check(all(str(r.status) == "FINISHED" for r in stored), "a run is not FINISHED")
    client.close()
    return {"seconds": statistics.median(laps), "mean_s": statistics.fmean(laps), "runs": len(laps)}


def keel_search(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel = keel_client(workdir)
    n = p["search_runs"]
    with h.timed() as populate:
        t.keel_populate(keel, n)
    order = ["-metrics.auc"]
    median, laps, found = h.repeat_median(
        lambda: t.keel_search_all(keel, "bench", t.SEARCH_FILTER, order), p["repeat"]
    )
    names = [r.name for r in found]
    t.check(names == t.expected_matches(n), "search results differ from the expected runs")
    t.check(all(len(r.params) == t.PARAMS_PER_RUN for r in found), "incomplete params")
    return {
        "seconds": median,
        "laps": laps,
        "count": len(names),
        "digest": t.digest(names),
        "populate_s": populate.seconds,
    }


# --- MLflow side (workers) -------------------------------------------------------------------


def mlflow_client() -> tuple[Any, Any, str]:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow
    from mlflow import MlflowClient

    experiment_id = mlflow.set_experiment("bench").experiment_id
    return mlflow, MlflowClient(), experiment_id


def mlflow_points(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    _, client, experiment_id = mlflow_client()
    from mlflow.entities import Metric

    run_id = client.create_run(experiment_id, run_name="points").info.run_id
    n = p["points"]
    values = t.metric_values(n)
    with h.timed() as timer:
        for start in range(0, n, t.MLFLOW_BATCH_LIMIT):
            now = int(time.time() * 1000)
            chunk = [
                Metric(key="loss", value=values[i], timestamp=now, step=i)
                for i in range(start, min(n, start + t.MLFLOW_BATCH_LIMIT))
            ]
            client.log_batch(run_id, metrics=chunk, synchronous=True)
    history = client.get_metric_history(run_id, "loss")
    t.check_history([(m.step, m.value) for m in history], n)
    client.set_terminated(run_id)
    return {"seconds": timer.seconds, "points": n, "points_per_s": n / timer.seconds}


def mlflow_runs(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    _, client, experiment_id = mlflow_client()
    for i in range(3):
        client.set_terminated(client.create_run(experiment_id, run_name=f"w{i}").info.run_id)
    bench = client.create_experiment("runs")
    laps = []
    for i in range(p["runs"]):
        start = time.perf_counter()
        run = client.create_run(bench, run_name=f"run-{i}")
        client.set_terminated(run.info.run_id)
        laps.append(time.perf_counter() - start)
    stored = t.mlflow_search_all(client, bench, "", ())
    t.check(len(stored) == p["runs"], f"{len(stored)} runs stored, {p['runs']} made")
    t.check(all(r.info.status == "FINISHED" for r in stored), "a run is not FINISHED")
    return {"seconds": statistics.median(laps), "mean_s": statistics.fmean(laps), "runs": len(laps)}


def mlflow_search(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    _, client, experiment_id = mlflow_client()
    n = p["search_runs"]
    with h.timed() as populate:
        t.mlflow_populate(client, experiment_id, n)
    order = ["metrics.auc DESC"]
    median, laps, found = h.repeat_median(
        lambda: t.mlflow_search_all(client, experiment_id, t.SEARCH_FILTER, order), p["repeat"]
    )
    names = [r.info.run_name for r in found]
    t.check(names == t.expected_matches(n), "search results differ from the expected runs")
    t.check(all(len(r.data.params) == t.PARAMS_PER_RUN for r in found), "incomplete params")
    return {
        "seconds": median,
        "laps": laps,
        "count": len(names),
        "digest": t.digest(names),
        "populate_s": populate.seconds,
    }


WORKERS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "keel:points": keel_points,
    "keel:runs": keel_runs,
    "keel:search": keel_search,
    "mlflow:points": mlflow_points,
    "mlflow:runs": mlflow_runs,
    "mlflow:search": mlflow_search,
}


def worker_main(task: str, params: dict[str, Any], workdir: Path, out: Path) -> None:
    result = WORKERS[task](workdir, params)
    result["tool_version"] = t.tool_version(task.split(":", 1)[0])
    result["python"] = sys.version.split()[0]
    h.write_worker_result(out, result)


# --- the driver ------------------------------------------------------------------------------


def measure(
    side: str,
    measurement: str,
    backend: str,
    params: dict[str, Any],
    pythons: dict[str, Path],
    timeout_s: float,
) -> dict[str, Any]:
    """Start a fresh server of ``side`` on a fresh ``backend`` database, run one worker."""
    script = Path(__file__).resolve()
    with (
        h.fresh_dir(f"server-{side}-{backend}-") as workdir,
        database(backend, workdir, side) as db_url,
    ):
        server = (
            keel_server(db_url, workdir)
            if side == "keel"
            else mlflow_server(pythons["mlflow"], db_url, workdir)
        )
        with server as (_url, env):
            return h.run_task(
                pythons[side], script, f"{side}:{measurement}", params, timeout_s=timeout_s, env=env
            )


def rows(raw: dict[str, dict[str, Any]], sizes: dict[str, int], backend: str) -> list[h.Row]:
    def sec(key: str) -> float | None:
        key = f"{backend}.{key}"
        return raw[key]["seconds"] if key in raw else None

    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    return [
        h.Row(
            f"{label}: {sizes['points']:,} metric points through the server",
            sec("keel.points"),
            "log_batch x1,000",
            sec("mlflow.points"),
            TARGETS["points"],
            "Keel: Client.log_metric (async batches) + flush; MLflow: MlflowClient.log_batch",
        ),
        h.Row(
            f"{label}: create + end one run (median of {sizes['runs']})",
            sec("keel.runs"),
            "create_run + set_terminated",
            sec("mlflow.runs"),
            TARGETS["runs"],
        ),
        h.Row(
            f"{label}: search over {sizes['search_runs']:,} runs (median of {sizes['repeat']})",
            sec("keel.search"),
            "MlflowClient.search_runs",
            sec("mlflow.search"),
            TARGETS["search"],
            f"filter {t.SEARCH_FILTER!r}, ordered by auc",
        ),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = h.bench_parser(
        __doc__, peer="mlflow", default_out="benchmarks/results/server.json", timeout=1800
    )
    ap.add_argument("--backends", default="sqlite,postgresql", help="sqlite and/or postgresql")
    ap.add_argument("--points", type=int, help="override benchmark 1's size")
    ap.add_argument("--runs", type=int, help="override benchmark 2's size")
    ap.add_argument("--search-runs", type=int, help="override benchmark 3's size")
    ap.add_argument("--repeat", type=int, help="repetitions of the timed search")
    ap.add_argument(
        "--measurements",
        default="points,runs,search",
        help="comma-separated subset of points, runs, search (A/B runs of one of them)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, json.loads(args.params), args.workdir, args.out)
        return 0
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("points", "runs", "search_runs", "repeat"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    sides = h.parse_sides(args.sides, peer="mlflow")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "postgresql"}:
        raise SystemExit(f"unknown backend(s) in {args.backends!r}")
    wanted = [m.strip() for m in args.measurements.split(",") if m.strip()]
    if not wanted or set(wanted) - {"points", "runs", "search"}:
        raise SystemExit(f"unknown measurement(s) in {args.measurements!r}")
    pythons = {"keel": Path(sys.executable)}
    if "mlflow" in sides:
        pythons["mlflow"] = h.ensure_venv("mlflow-server", MLFLOW_REQUIREMENTS, quiet=args.json)

    machine = h.machine_info()
    source = h.git_state("src")
    raw: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    plan = [
        (measurement, params)
        for measurement, params in (
            ("points", {"points": sizes["points"]}),
            ("runs", {"runs": sizes["runs"]}),
            ("search", {"search_runs": sizes["search_runs"], "repeat": sizes["repeat"]}),
        )
        if measurement in wanted
    ]
    for backend in backends:
        for measurement, params in plan:
            for side in sides:  # back to back, so load changes skew a ratio least
                key = f"{backend}.{side}.{measurement}"
                if not args.json:
                    print(f"running {key} {params} ...", file=sys.stderr, flush=True)
                raw[key] = measure(side, measurement, backend, params, pythons, args.timeout)
            k, m = raw.get(f"{backend}.keel.search"), raw.get(f"{backend}.mlflow.search")
            if (
                measurement == "search"
                and k
                and m
                and (k["count"], k["digest"])
                != (
                    m["count"],
                    m["digest"],
                )
            ):
                raise SystemExit(f"search results disagree on {backend}")

    table = [row for backend in backends for row in rows(raw, sizes, backend)]
    versions = {"python": sys.version.split()[0]}
    for key, result in raw.items():
        versions[key.split(".")[1]] = result["tool_version"]
    payload = h.result_payload(
        "server",
        started=started,
        machine=machine,
        versions=versions,
        source=source,
        fields={
            "servers": {
                "keel": "uvicorn keel.server:create_app, 1 worker, token auth, rate limit off",
                "mlflow": "mlflow server --workers 1 (no auth)",
            },
            "backends": backends,
            "sizes": sizes,
            "points_per_s": {
                key: round(result["points_per_s"])
                for key, result in raw.items()
                if "points_per_s" in result
            },
            "results": [row.to_dict() for row in table],
            "raw": raw,
        },
    )
    out = args.out
    full = (
        not args.quick
        and set(sides) == {"keel", "mlflow"}
        and sizes == FULL
        and len(wanted) == len(plan) == 3
    )
    if out is None and full and set(backends) == {"sqlite", "postgresql"}:
        out = h.RESULTS_DIR / "server.json"
    if h.publish(payload, out, as_json=args.json):
        h.print_table("Keel vs MLflow: the tracking server", table, peer_name="MLflow")
        for key, rate in payload["points_per_s"].items():
            cpu = raw[key].get("cpu_s")
            split = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) if cpu else ""
            print(f"  {key}: {rate:,} points/s" + (f" (CPU seconds: {split})" if split else ""))
        if out is not None:
            print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
