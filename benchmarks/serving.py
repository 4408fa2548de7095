"""Online inference: `keel serve` vs `mlflow models serve` and BentoML, same model and load.

    python benchmarks/serving.py            # full sizes, writes benchmarks/results/serving.json
    python benchmarks/serving.py --quick    # a smoke run (writes nothing)
    python benchmarks/serving.py --sides keel,keel-logged,mlflow --requests 2000 --concurrency 1,16

The model is the same scikit-learn pipeline on every side (StandardScaler + LogisticRegression
on 20 numeric columns, trained from the same seeded data with the same scikit-learn version in
each side's interpreter; the driver checks that every server gives the same predictions for the
same probe rows). Each side is prepared by a worker in its own interpreter (Keel: registered with
``keel.models.log``; MLflow 3.17.2: ``mlflow.sklearn.save_model`` with a signature; BentoML:
``bentoml.models.create`` + a service file with adaptive batching written into the work folder),
then served in its own process on a free port of 127.0.0.1 with one worker:

- Keel: ``keel serve bench/1 --no-log`` (micro-batching, defaults: 32 rows, 2 ms; no prediction
  log: a plain model logs by default now);
- Keel logged (``keel-logged``): ``keel serve --deployment bench``, a deployment of the same
  version with the same batching, which writes every prediction to the Parquet prediction log
  (the driver counts the logged rows after the server stopped: all requests must be there);
- MLflow: ``mlflow models serve --env-manager local -w 1``;
- BentoML: ``bentoml serve`` of a ``@bentoml.service(workers=1)`` whose ``predict`` is
  ``batchable=True`` (max 32 rows, ``max_latency_ms`` 10,000 so that queueing, not the 503
  path, absorbs bursts: DESIGN.md, "Speed").

The load generator runs in the driver: asyncio, one keep-alive HTTP/1.1 connection per
concurrent client on raw sockets (no client library in the measured path), ``requests`` single-
row requests in total per concurrency level after a warm-up, each request's latency taken from
its first byte written to its last byte read. Keel and MLflow get the same
``{"dataframe_split": ...}`` body on ``/invocations``; BentoML gets ``{"data": [[...]]}`` on
``/predict`` (its array input). A non-200 answer counts as an error and is reported.

The server's added latency at concurrency 1 is its p50 minus the model's own predict time for
one row: the scikit-learn pipeline's ``predict`` on a one-row DataFrame that already exists (the
median of 2,000 calls in a fresh process of Keel's interpreter, after 50 warm-up calls). So
everything Keel does per request counts as added: HTTP, JSON parsing, the signature check,
building the DataFrame from the request, the hand-off to the predict thread, the response, the
prediction log. The predict time is measured right before and right after the concurrency-1
level (on a shared machine it moves with the load; the mean of the two is used, and both are in
the results), and the client's own floor (the same load generator against a server that only
answers) is reported beside it.

This file is also the worker: the driver runs it again as ``--worker TASK``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _harness as h

MLFLOW_VENV, MLFLOW_REQUIREMENTS = "mlflow-server", ["mlflow==3.17.2", "psycopg2-binary==2.9.11"]
BENTOML_VENV, BENTOML_REQUIREMENTS = (
    "bentoml",
    [
        "bentoml==1.4.39",
        "scikit-learn==1.9.1",
        "pandas==3.1.1",
    ],
)
PEERS = ("mlflow", "bentoml")
KEEL_SIDES = ("keel", "keel-logged")  # keel serve NAME/1; keel serve -d NAME (prediction log on)

N_FEATURES = 20
N_TRAIN = 2_000
SEED = 7
PROBE_ROWS = 8
DISTINCT_BODIES = 256

FULL: dict[str, Any] = {"requests": 10_000, "warmup": 300, "concurrency": [1, 16, 64]}
QUICK: dict[str, Any] = {"requests": 400, "warmup": 50, "concurrency": [1, 16]}
TARGETS = {"mlflow": 3.0, "bentoml": 1.0}  # Keel's requests/s over the peer's, at concurrency 16
ADDED_P50_TARGET_S = 1e-3


# --- the model (every side builds the same one) ----------------------------------------------


def columns() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


def dataset(n: int, seed: int) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)) * rng.uniform(0.5, 20, size=N_FEATURES)
    w = rng.normal(size=N_FEATURES)
    logits = (x / x.std(axis=0)) @ w + rng.normal(scale=0.5, size=n)
    return pd.DataFrame(x, columns=columns()), (logits > 0).astype("int64")


def train() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = dataset(N_TRAIN, SEED)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x, y)
    return model, x


def probe_rows() -> list[list[float]]:
    x, _ = dataset(PROBE_ROWS, SEED + 1)
    return [[float(v) for v in row] for row in x.to_numpy()]


def request_rows() -> list[list[float]]:
    x, _ = dataset(DISTINCT_BODIES, SEED + 2)
    return [[float(v) for v in row] for row in x.to_numpy()]


def one_row_predict_s(model: Any, x: Any, calls: int) -> float:
    row = x.iloc[[0]]
    for _ in range(50):
        model.predict(row)
    laps = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict(row)
        laps.append(time.perf_counter() - start)
    return statistics.median(laps)


# --- workers: prepare a side's model files ---------------------------------------------------


def keel_prepare(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    os.environ["KEEL_HOME"] = p["home"]
    import keel.models

    model, x = train()
    version = keel.models.log(model, "bench", signature_from=x)
    predict_s = one_row_predict_s(model, x, p["predict_calls"])
    import pandas as pd

    probe = model.predict(pd.DataFrame(probe_rows(), columns=columns())).tolist()
    if p.get("deployment"):
        # A deployment is what logs predictions: the same model and batching settings.
        cmd = [sys.executable, "-m", "keel", "deployments", "create", "bench", "--model"]
        cmd += ["bench", "--champion", str(version.version), "--max-batch-size", "32"]
        subprocess.run([*cmd, "--max-latency-ms", "2"], check=True, capture_output=True)
    return {"model": f"{version.name}/{version.version}", "predict_s": predict_s, "probe": probe}


def mlflow_prepare(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow.sklearn
    from mlflow.models import infer_signature

    model, x = train()
    signature = infer_signature(x, model.predict(x))
    mlflow.sklearn.save_model(model, p["path"], signature=signature)
    return {"model": p["path"]}


BENTO_SERVICE = '''
"""The benchmark's BentoML service: the same pipeline, adaptive batching on predict."""
import bentoml
import joblib
import numpy as np
import pandas as pd

COLUMNS = {columns!r}


@bentoml.service(workers=1, traffic={{"timeout": 60, "max_concurrency": 1024}})
class Bench:
    def __init__(self) -> None:
        ref = bentoml.models.get("bench:latest")
        self.model = joblib.load(ref.path_of("model.joblib"))

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=10000)
    def predict(self, data: np.ndarray) -> np.ndarray:
        return self.model.predict(pd.DataFrame(data, columns=COLUMNS))
'''


def bentoml_prepare(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    os.environ["BENTOML_HOME"] = p["home"]
    import bentoml
    import joblib

    model, _ = train()
    with bentoml.models.create("bench") as ref:
        joblib.dump(model, ref.path_of("model.joblib"))
    service = Path(p["service_dir"]) / "service.py"
    service.write_text(BENTO_SERVICE.format(columns=columns()))
    return {"model": str(ref.tag), "service": str(service)}


def keel_predict_time(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    """The same model's one-row predict time, now (bracketing a measured level)."""
    model, x = train()
    return {"predict_s": one_row_predict_s(model, x, p["predict_calls"])}


WORKERS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "keel:prepare": keel_prepare,
    "keel-logged:prepare": keel_prepare,
    "keel:predict": keel_predict_time,
    "mlflow:prepare": mlflow_prepare,
    "bentoml:prepare": bentoml_prepare,
}

DISTRIBUTION = {
    "keel": "keel-mlops",
    "keel-logged": "keel-mlops",
    "mlflow": "mlflow",
    "bentoml": "bentoml",
}


def worker_main(task: str, params: dict[str, Any], workdir: Path, out: Path) -> None:
    import importlib.metadata as md

    result = WORKERS[task](workdir, params)
    result["tool_version"] = md.version(DISTRIBUTION[task.split(":", 1)[0]])
    result["sklearn"] = md.version("scikit-learn")
    result["python"] = sys.version.split()[0]
    h.write_worker_result(out, result)


# --- servers ---------------------------------------------------------------------------------


@contextmanager
def serving(
    cmd: list[str], *, env: dict[str, str], health: str, port: int, workdir: Path, name: str
) -> Iterator[str]:
    log = workdir / f"{name}-server.log"
    child_env = {**os.environ, **env}
    child_env.pop("PYTHONPATH", None)
    # As if the side's virtualenv were activated: MLflow starts ``uvicorn`` from PATH.
    child_env["PATH"] = f"{Path(cmd[0]).parent}{os.pathsep}{child_env.get('PATH', '')}"
    child_env["VIRTUAL_ENV"] = str(Path(cmd[0]).parent.parent)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    try:
        h.wait_up(f"http://127.0.0.1:{port}{health}", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def start_side(
    side: str, pythons: dict[str, Path], workdir: Path, timeout_s: float, predict_calls: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Prepare ``side``'s model in its interpreter, serve it; yield its URL and the prepare
    worker's result."""
    script = Path(__file__).resolve()
    port = h.free_port()
    python = pythons[side]
    if side in KEEL_SIDES:
        home = workdir / "keel-home"
        logged = side == "keel-logged"
        params = {"home": str(home), "predict_calls": predict_calls, "deployment": logged}
        prep = h.run_task(python, script, f"{side}:prepare", params, timeout_s=timeout_s)
        cmd = [str(python), "-m", "keel", "serve", "--port", str(port)]
        cmd += ["--deployment", "bench"] if logged else [prep["model"], "--no-log"]
        env = {"KEEL_HOME": str(home)}
        health = "/v2/health/ready"
    elif side == "mlflow":
        path = workdir / "mlflow-model"
        prep = h.run_task(
            python, script, "mlflow:prepare", {"path": str(path)}, timeout_s=timeout_s
        )
        cmd = [
            str(python.with_name("mlflow")),
            "models",
            "serve",
            "-m",
            str(path),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ]
        env = {"GIT_PYTHON_REFRESH": "quiet", "MLFLOW_DISABLE_TELEMETRY": "true"}
        health = "/ping"
    else:
        home = workdir / "bentoml-home"
        prep = h.run_task(
            python,
            script,
            "bentoml:prepare",
            {"home": str(home), "service_dir": str(workdir)},
            timeout_s=timeout_s,
        )
        cmd = [
            str(python.with_name("bentoml")),
            "serve",
            "service:Bench",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        health = "/readyz"
    with serving(cmd, env=env, health=health, port=port, workdir=workdir, name=side) as url:
        yield url, prep


# --- the load generator ----------------------------------------------------------------------


def bodies(side: str, rows: list[list[float]]) -> tuple[str, list[bytes]]:
    """The route and the single-row request bodies of ``side``."""
    if side == "bentoml":
        return "/predict", [json.dumps({"data": [row]}).encode() for row in rows]
    cols = columns()
    return "/invocations", [
        json.dumps({"dataframe_split": {"columns": cols, "data": [row]}}).encode() for row in rows
    ]


def predictions(side: str, payload: Any) -> list[Any]:
    return list(payload) if side == "bentoml" else list(payload["predictions"])


def request_bytes(route: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, body
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    raise h.TaskFailed(f"a response without a length: {head!r}")


async def load(
    port: int, route: str, payloads: list[bytes], *, total: int, concurrency: int
) -> dict[str, Any]:
    """``total`` requests over ``concurrency`` keep-alive connections; latencies and errors."""
    requests = [request_bytes(route, port, b) for b in payloads]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(total))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        try:
            for i in counter:
                start = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status, _ = await read_response(reader)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_s": latencies[len(latencies) // 2],
        "p90_s": latencies[int(len(latencies) * 0.90)],
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


def probe(url: str, side: str) -> list[Any]:
    """The server's predictions for the probe rows, one request each."""
    route, payloads = bodies(side, probe_rows())
    out = []
    for body in payloads:
        req = urllib.request.Request(
            url + route, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            out.extend(predictions(side, json.loads(r.read())))
    return [int(v) for v in out]


def measure_side(
    side: str,
    pythons: dict[str, Path],
    sizes: dict[str, Any],
    timeout_s: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    with h.fresh_dir(f"serving-{side}-") as workdir:
        with start_side(side, pythons, workdir, timeout_s, sizes["predict_calls"]) as (
            url,
            prep,
        ):
            port = int(url.rsplit(":", 1)[1])
            answers = probe(url, side)
            route, payloads = bodies(side, request_rows())
            asyncio.run(load(port, route, payloads, total=sizes["warmup"], concurrency=4))
            levels = []
            for c in sizes["concurrency"]:
                log(f"  {side}: {sizes['requests']:,} requests at concurrency {c} ...")
                bracket = side in KEEL_SIDES and c == 1
                if bracket:
                    before = predict_now(pythons[side], sizes, timeout_s)
                run = load(port, route, payloads, total=sizes["requests"], concurrency=c)
                levels.append(asyncio.run(run))
                if bracket:
                    after = predict_now(pythons[side], sizes, timeout_s)
                    levels[-1].update(
                        predict_s=(before + after) / 2,
                        predict_s_before=before,
                        predict_s_after=after,
                    )
        result = {**prep, "probe_answers": answers, "levels": levels}
        if side == "keel-logged":  # the server has stopped: its last batch is flushed
            result["predictions_sent"] = (
                len(answers) + sizes["warmup"] + sum(lv["requests"] for lv in levels)
            )
            result["predictions_logged"] = logged_rows(workdir / "keel-home")
        return result


def predict_now(python: Path, sizes: dict[str, Any], timeout_s: float) -> float:
    """The model's own one-row predict time, measured now in a fresh process."""
    script = Path(__file__).resolve()
    params = {"predict_calls": sizes["predict_calls"]}
    return float(
        h.run_task(python, script, "keel:predict", params, timeout_s=timeout_s)["predict_s"]
    )


def logged_rows(home: Path) -> int:
    """Rows in the prediction log files a deployment wrote under ``home``'s artifacts."""
    import pyarrow.parquet as pq

    files = sorted(home.glob("artifacts/predictions/**/*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


# --- the client's own floor ------------------------------------------------------------------

# A server that does nothing but answer: the same client against it gives the latency of the
# client and the loopback alone, which the "added over predict" figures include.
FLOOR_SERVER = r"""
import asyncio, socket, sys
BODY = b'{"predictions":[0]}'
RESP = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY), BODY)

async def handle(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    size = int(line.split(b":", 1)[1])
            await reader.readexactly(size)
            writer.write(RESP)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def client_floor(requests: int) -> dict[str, Any]:
    """The load generator at concurrency 1 against ``FLOOR_SERVER`` (no parsing, no model)."""
    port = h.free_port()
    with h.fresh_dir("serving-floor-") as workdir:
        cmd = [sys.executable, "-c", FLOOR_SERVER, str(port)]
        with serving(cmd, env={}, health="/", port=port, workdir=workdir, name="floor"):
            route, payloads = bodies("keel", request_rows())
            asyncio.run(load(port, route, payloads, total=min(requests, 300), concurrency=4))
            return asyncio.run(load(port, route, payloads, total=requests, concurrency=1))


# --- the driver ------------------------------------------------------------------------------


def level(raw: dict[str, Any], side: str, c: int) -> dict[str, Any] | None:
    for lv in raw.get(side, {}).get("levels", []):
        if lv["concurrency"] == c:
            return dict(lv)
    return None


def rows(raw: dict[str, Any], sizes: dict[str, Any]) -> list[h.Row]:
    out = []
    n = sizes["requests"]
    keel = "keel-logged" if "keel-logged" in raw else "keel"
    for peer in PEERS:
        for c in sizes["concurrency"]:
            k, p = level(raw, keel, c), level(raw, peer, c)
            out.append(
                h.Row(
                    f"c={c}: {n:,} requests (wall)",
                    k["seconds"] if k else None,
                    peer,
                    p["seconds"] if p else None,
                    TARGETS[peer] if c == 16 else None,
                    f"Keel side: {keel}; ratio = Keel's requests/s over the peer's",
                )
            )
    return out


def print_levels(raw: dict[str, Any], sizes: dict[str, Any], summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Serving one scikit-learn pipeline: single-row requests on loopback")
    for col in ("side", "concurrency", "requests/s", "p50", "p99", "errors"):
        table.add_column(col, justify="left" if col == "side" else "right")
    for side in raw:
        for lv in raw[side]["levels"]:
            errs = sum(lv["errors"].values())
            table.add_row(
                side,
                str(lv["concurrency"]),
                f"{lv['rps']:,.0f}",
                h.fmt_seconds(lv["p50_s"]),
                h.fmt_seconds(lv["p99_s"]),
                f"{errs:,}" if errs else "0",
            )
    console = Console()
    console.print(table)
    for key, value in summary.items():
        console.print(f"  {key}: {value}")


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keel in KEEL_SIDES:
        k1 = level(raw, keel, 1)
        if k1 is None:
            continue
        # Measured around this very level when it was (older results: at preparation).
        predict_s = k1.get("predict_s", raw.get(keel, {}).get("predict_s"))
        if predict_s is None:
            continue
        out[f"{keel}_predict_one_row_s"] = predict_s
        added = k1["p50_s"] - predict_s
        out[f"{keel}_added_p50_at_c1_s"] = added
        out[f"{keel}_added_p50_at_c1_target_met"] = added <= ADDED_P50_TARGET_S
        for peer in PEERS:
            k, p = level(raw, keel, 16), level(raw, peer, 16)
            if k and p:
                rate = k["rps"] / p["rps"]
                out[f"{keel}_over_{peer}_rps_at_c16"] = round(rate, 2)
                out[f"{keel}_over_{peer}_rps_at_c16_target_met"] = rate >= TARGETS[peer]
    floor = raw.get("client_floor")
    if floor is not None:
        out["client_floor_p50_at_c1_s"] = floor["p50_s"]
        for keel in KEEL_SIDES:
            if f"{keel}_added_p50_at_c1_s" in out:
                net = out[f"{keel}_added_p50_at_c1_s"] - floor["p50_s"]
                out[f"{keel}_added_p50_at_c1_net_of_client_s"] = net
    if "keel-logged" in raw:
        logged = raw["keel-logged"]
        out["keel-logged_predictions_logged"] = (
            f"{logged['predictions_logged']:,} of {logged['predictions_sent']:,} requests"
        )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = h.bench_parser(
        __doc__, peer="mlflow", default_out="benchmarks/results/serving.json", timeout=900
    )
    ap.set_defaults(sides="keel,keel-logged,mlflow,bentoml")
    ap.add_argument("--requests", type=int, help="requests per concurrency level")
    ap.add_argument("--concurrency", help="comma-separated concurrency levels (e.g. 1,16,64)")
    ap.add_argument("--warmup", type=int, help="warm-up requests before measuring")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, json.loads(args.params), args.workdir, args.out)
        return 0
    sizes = dict(QUICK if args.quick else FULL)
    if args.requests is not None:
        sizes["requests"] = args.requests
    if args.warmup is not None:
        sizes["warmup"] = args.warmup
    if args.concurrency:
        sizes["concurrency"] = [int(c) for c in args.concurrency.split(",") if c.strip()]
    sizes["predict_calls"] = 200 if args.quick else 2_000
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if set(sides) - {*KEEL_SIDES, *PEERS}:
        raise SystemExit(f"unknown side(s) in {args.sides!r}: keel, keel-logged, mlflow, bentoml")
    pythons = {side: Path(sys.executable) for side in KEEL_SIDES}
    if "mlflow" in sides:
        pythons["mlflow"] = h.ensure_venv(MLFLOW_VENV, MLFLOW_REQUIREMENTS, quiet=args.json)
    if "bentoml" in sides:
        pythons["bentoml"] = h.ensure_venv(BENTOML_VENV, BENTOML_REQUIREMENTS, quiet=args.json)

    def log(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    machine = h.machine_info()
    source = h.git_state("src")
    raw: dict[str, Any] = {}
    floor: dict[str, Any] | None = None
    started = time.perf_counter()
    if any(side in KEEL_SIDES for side in sides):
        log("running the client's floor (a server that only answers) ...")
        floor = client_floor(sizes["requests"])
    for side in sides:
        log(f"running {side} ...")
        raw[side] = measure_side(side, pythons, sizes, args.timeout, log)
    answers = {side: r["probe_answers"] for side, r in raw.items()}
    for side in KEEL_SIDES:
        if side in raw:
            answers["in-process"] = [int(v) for v in raw[side]["probe"]]
    if len({json.dumps(a) for a in answers.values()}) != 1:
        raise SystemExit(f"the servers disagree on the probe rows: {answers}")

    table = rows(raw, sizes)
    summary = summarise({**raw, "client_floor": floor} if floor else raw)
    versions = {"python": sys.version.split()[0]}
    versions.update({side: r["tool_version"] for side, r in raw.items()})
    versions.update({f"scikit-learn ({side})": r["sklearn"] for side, r in raw.items()})
    payload = h.result_payload(
        "serving",
        started=started,
        machine=machine,
        versions=versions,
        source=source,
        fields={
            "servers": {
                "keel": "keel serve NAME/1 --no-log (1 worker; micro-batching 32 rows / 2 ms; "
                "no prediction log)",
                "keel-logged": "keel serve --deployment NAME (1 worker; the same batching; every "
                "prediction logged to Parquet in the artifact store)",
                "mlflow": "mlflow models serve --env-manager local -w 1",
                "bentoml": "bentoml serve, workers=1, batchable predict (32 rows, "
                "max_latency_ms 10000)",
            },
            "model": f"StandardScaler + LogisticRegression, {N_FEATURES} float columns",
            "sizes": sizes,
            "summary": summary,
            "requests_per_s": {
                f"{side}.c{lv['concurrency']}": round(lv["rps"])
                for side, r in raw.items()
                for lv in r["levels"]
            },
            "results": [row.to_dict() for row in table],
            "client_floor": floor,
            "raw": raw,
        },
    )
    out = args.out
    full = (
        not args.quick
        and set(sides) == {*KEEL_SIDES, *PEERS}
        and sizes["requests"] == FULL["requests"]
    )
    if out is None and full:
        out = h.RESULTS_DIR / "serving.json"
    if h.publish(payload, out, as_json=args.json):
        print_levels(raw, sizes, summary)
        for peer in PEERS:
            peer_rows = [r for r in table if r.peer == peer and r.peer_s is not None]
            if peer_rows:
                h.print_table(f"Keel vs {peer}", peer_rows, peer_name=peer)
        if out is not None:
            print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
