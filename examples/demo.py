"""Keel's end-to-end demo: version and validate a bundled dataset, train two models on it,
track both with the dataset as their input, compare; register the better one, evaluate it on a
held-out dataset version, pass the promotion gates (with a reviewer's approval) to make it the
champion, and write its model card; then serve it through a deployment with `keel serve`,
measure it, send it traffic that shifts halfway (a recalibrated instrument), post feedback (true
labels) for some of its predictions, monitor both halves (drift, performance on the delayed
labels, latency), raise alerts, and write the HTML monitoring report.

Run with `make demo`. Everything is stored locally (SQLite + files) under ./.keel/.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KEEL_HOME", str(Path.cwd() / ".keel"))

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel
import keel.data
import keel.models
from keel.config import get_settings
from keel.errors import NotFound

PROJECT = "demo-breast-cancer"
MODEL = "breast-cancer"
METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REVIEWER = "demo-reviewer"  # a second person: authors cannot approve their own models
# The gates a version must pass to become champion (a project declares them under
# [gates.champion] in keel.toml; the demo passes them in code to leave your folder alone).
GATES = {
    "champion": {
        "metrics": {"roc_auc": ">= 0.95", "f1": ">= 0.9"},
        # Not worse than the current champion by more than 0.01 AUC: the lower bound of the
        # paired-bootstrap interval of the difference must stay above -0.01.
        "beat": {"metric": "roc_auc", "margin": -0.01, "resamples": 500},
        "max_p95_latency_ms": 50,
        "latency_calls": 50,
        "max_size_mb": 5,
        "approvals": 1,
    }
}
console = Console()


def evaluate(model: object, x: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    proba = model.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
    pred = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "log_loss": float(log_loss(y, proba)),
    }


def register_data() -> tuple[keel.data.DatasetVersion, pd.DataFrame]:
    """The bundled data as a dataset version, checked against a contract inferred from it."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.insert(0, "patient_id", range(len(frame)))
    ds = keel.data.add(
        frame, name="breast-cancer", key="patient_id", source_uri="sklearn.datasets:breast_cancer"
    )
    try:
        contract = keel.data.load_contract(ds.name)
    except NotFound:
        contract = keel.data.infer_dataset_contract(ds.ref)
        keel.data.save_contract(ds.name, contract)
    report, _ = keel.data.validate_dataset(ds.ref, contract=contract)
    if not report.passed:
        raise SystemExit(f"{ds.ref} breaks its contract: {report.failures}")
    checks = len(report.results)
    console.print(f"Data: {ds.ref} ({'unchanged, ' if ds.existed else ''}{len(frame)} rows, "
                  f"{checks} contract checks passed)")  # fmt: skip
    return ds, frame


def train_logistic(ds, x_tr, y_tr, x_te, y_te) -> str:  # type: ignore[no-untyped-def]
    params = {"C": 0.5, "max_iter": 500}
    with keel.start_run(project=PROJECT, name="logistic-regression", inputs=[ds]) as run:
        keel.log_params(params)
        model = make_pipeline(StandardScaler(), LogisticRegression(**params))
        model.fit(x_tr, y_tr)
        keel.log_metrics(evaluate(model, x_te, y_te))
        keel.models.log(model, signature_from=x_tr)  # skops, never pickle; not registered yet
        return run.id


def train_boosting(ds, x_tr, y_tr, x_te, y_te) -> str:  # type: ignore[no-untyped-def]
    params = {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 2}
    with keel.start_run(project=PROJECT, name="gradient-boosting", inputs=[ds]) as run:
        keel.log_params(params)
        model = GradientBoostingClassifier(random_state=0, **params).fit(x_tr, y_tr)
        # A learning curve: validation loss after every boosting stage.
        for step, proba in enumerate(model.staged_predict_proba(x_te)):
            keel.log_metric("val_log_loss", float(log_loss(y_te, proba[:, 1])), step=step)
        keel.log_metrics(evaluate(model, x_te, y_te))
        keel.models.log(model, signature_from=x_tr)
        return run.id


def release(best: keel.tracking.Run, holdout: keel.data.DatasetVersion) -> None:
    """Register the best run's model, evaluate it on the held-out version, gate it into
    champion with a reviewer's approval, and write its model card."""
    version = keel.models.register(f"runs:/{best.id}/model", MODEL)
    evaluation = keel.models.evaluate(version.uri, holdout.ref, "target")
    keel.models.set_card(
        MODEL,
        version.version,
        intended_use="Demo only: shows how Keel gates a classifier of tumour measurements.",
        limitations="569 patients from one 1995 study (scikit-learn's bundled copy); "
        "not validated on other populations and not for clinical use.",
    )
    keel.models.approve(MODEL, version.version, user=REVIEWER, comment="demo review")
    decision = keel.models.promote(
        MODEL, version.version, "champion", gates=GATES, data=holdout.ref, target="target"
    )
    table = Table(title=f"Gates: {MODEL} v{version.version} -> champion", header_style="bold")
    for column in ("gate", "observed", "CI", "result"):
        table.add_column(column)
    for gate in decision.gates:
        ci = "" if gate.ci_low is None else f"[{gate.ci_low:.4f}, {gate.ci_high:.4f}]"
        observed = "" if gate.observed is None else f"{gate.observed:.4g}"
        table.add_row(gate.gate, observed, ci, "pass" if gate.passed else "FAIL")
    console.print(table)
    if not decision.moved:
        raise SystemExit(f"{version.uri} did not pass its gates: {decision.failed_gates}")
    cards = keel.models.write_card(version.uri, get_settings().home / "cards")
    console.print(
        f"Champion: [bold]{MODEL}@champion[/] -> v{version.version} "
        f"(ROC AUC {evaluation.metrics['roc_auc']:.4f} on {holdout.ref})"
    )
    for path in cards:
        console.print(f"Model card: {path}", soft_wrap=True)


def wait_ready(http: Any, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(f"keel serve exited: {server.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if http.get("/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("keel serve did not become ready in 60 s")
        time.sleep(0.1)


def logged_predictions() -> int:
    """Rows in the prediction log files under the artifact store (local in the demo)."""
    import pyarrow.parquet as pq

    root = Path(get_settings().artifacts_uri)
    return sum(pq.ParquetFile(f).metadata.num_rows for f in root.glob("predictions/**/*.parquet"))


def recalibrated(rows: pd.DataFrame) -> pd.DataFrame:
    """The injected shift: the same patients, measured by an instrument whose "worst ..."
    readings come out 40% high (a third of the columns move; the true labels do not)."""
    out = rows.copy()
    worst = [c for c in out.columns if c.startswith("worst ")]
    out[worst] = out[worst] * 1.4
    return out


def serve_champion(
    rows: pd.DataFrame, labels: np.ndarray, *, requests: int = 300
) -> tuple[int, int, int]:
    """Serve the champion through a deployment (which logs every prediction) with `keel serve
    --deployment` on a free loopback port, send single-row requests over one keep-alive
    connection (the second half through the recalibrated instrument), check the answers
    against the registered model, post the true labels of some as feedback, print the latency,
    and stop the server with SIGTERM (a graceful shutdown). Returns the epoch-ms bounds of
    the calm and the shifted half."""
    import httpx

    champion = keel.models.resolve_uri(f"{MODEL}@champion")
    create = [sys.executable, "-m", "keel", "deployments", "create", MODEL, "--model", MODEL]
    subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [*create, "--champion", str(champion.version)], check=True, capture_output=True
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "keel", "serve", "--deployment", MODEL, "--port", str(port)]
    server = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            wait_ready(http, server)
            model = keel.models.load(f"{MODEL}@champion")
            shifted = recalibrated(rows)
            expected = [model.predict(rows), model.predict(shifted)]
            cols = list(rows.columns)
            data = [rows.to_numpy().tolist(), shifted.to_numpy().tolist()]
            laps, served, request_ids = [], [], []
            bounds = [int(time.time() * 1000)]
            for i in range(requests):
                half = 0 if i < requests // 2 else 1
                if i == requests // 2:
                    bounds.append(int(time.time() * 1000))
                row = data[half][i % len(rows)]
                body = {"dataframe_split": {"columns": cols, "data": [row]}}
                start = time.perf_counter()
                answer = http.post("/invocations", json=body)
                laps.append(time.perf_counter() - start)
                answer.raise_for_status()
                served.append(answer.json()["predictions"][0])
                request_ids.append(answer.headers["keel-request-id"])
            bounds.append(int(time.time() * 1000) + 1)
            # Ground truth arrives later in real life; here, the true label of every third one.
            items = [
                {"request_id": request_ids[i], "label": int(labels[i % len(rows)])}
                for i in range(0, requests, 3)
            ]
            posted = http.post("/feedback", json={"deployment": MODEL, "items": items})
            posted.raise_for_status()
            feedback = posted.json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    want = [expected[0 if i < requests // 2 else 1][i % len(rows)].item() for i in range(requests)]
    laps.sort()
    p50, p99 = laps[len(laps) // 2] * 1e3, laps[int(len(laps) * 0.99)] * 1e3
    console.print(
        f"Served {MODEL}@champion with keel serve --deployment {MODEL} on {base}: "
        f"{requests} single-row requests, "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {statistics.fmean(laps) * 1e3:.1f} ms",
        highlight=False,
        soft_wrap=True,
    )
    agree = sum(a == b for a, b in zip(served, want, strict=True))
    # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done.
    if server.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"keel serve exited {server.returncode} on SIGTERM")
    console.print(
        f"Answers matching the registered model: {agree}/{requests}; server stopped (SIGTERM)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Feedback: {feedback['applied']} true labels posted to POST /feedback for deployment "
        f"{MODEL}; {logged_predictions()} predictions in the prediction log",
        highlight=False,
        soft_wrap=True,
    )
    return bounds[0], bounds[1], bounds[2]


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def monitor(calm_start: int, shift_start: int, end: int) -> None:
    """Monitor the deployment over each half of the traffic against the champion's training
    data (found through lineage), with alert rules on drift and on accuracy over the delayed
    labels; print both summaries and the alerts, and write the HTML and JSON report."""
    from keel.monitoring import run_monitor, write_report
    from keel.monitoring._alerts import add_rule, list_alerts
    from keel.monitoring._windows import Window

    # Stored rules (`keel alerts rules add` does the same); no channel, so alerts are only
    # recorded here. `window="any"`: these monitors run over explicit time ranges.
    add_rule("demo-drift", deployment=MODEL, quantity="drift.share", operator=">=",
             threshold=0.2, window="any", min_samples=30, replace=True)  # fmt: skip
    add_rule("demo-accuracy", deployment=MODEL, quantity="performance.accuracy", operator="<",
             threshold=0.9, window="any", min_samples=30, replace=True)  # fmt: skip
    halves = {
        "calm": run_monitor(MODEL, window=Window(calm_start, shift_start)),
        "shifted": run_monitor(MODEL, window=Window(shift_start, end)),
    }
    table = Table(title=f"Monitoring {MODEL}: each half of the traffic", header_style="bold")
    table.add_column("")
    for name in halves:
        table.add_column(name, justify="right")
    summaries = [r.summary for r in halves.values()]
    perf = [s["performance"] or {} for s in summaries]
    lines = {
        "requests": [_fmt(s["requests"], ".0f") for s in summaries],
        "drifted columns": [
            f"{round((s['drift_share'] or 0) * s['tested_columns'])}/{s['tested_columns']}"
            for s in summaries
        ],
        "drift share": [_fmt(s["drift_share"]) for s in summaries],
        "accuracy (labelled rows)": [f"{_fmt(p.get('value'))} (n={p.get('n', 0)})" for p in perf],
        "label coverage": [_fmt(s["label_coverage"], ".0%") for s in summaries],
        "latency p99 (ms)": [_fmt(s["latency_p99_ms"], ".1f") for s in summaries],
        "alerts raised": [str(s["alerts"]) for s in summaries],
    }
    for label, values in lines.items():
        table.add_row(label, *values)
    console.print(table)
    top = [c["column"] for c in halves["shifted"].summary["top_drifted"]]
    console.print(f"Most drifted in the shifted half: {', '.join(top)}", soft_wrap=True)
    for alert in list_alerts(state="open", deployment=MODEL):
        console.print(
            f"Alert open: {alert.rule} ({alert.quantity} = {_fmt(alert.value)})",
            highlight=False,
            soft_wrap=True,
        )
    reports = Path(get_settings().home) / "reports"
    html, doc = reports / f"{MODEL}-monitoring.html", reports / f"{MODEL}-monitoring.json"
    write_report(MODEL, out=html, json_out=doc)
    console.print(f"Monitoring report: {html}", soft_wrap=True)


def main() -> None:
    ds, frame = register_data()
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame["target"])
    # The held-out rows as their own version: the gates evaluate on data no model trained on.
    holdout = keel.data.add(
        test.reset_index(drop=True), name="breast-cancer-holdout", key="patient_id"
    )
    x_tr, x_te = (part.drop(columns=["patient_id", "target"]) for part in (train, test))
    y_tr, y_te = train["target"].to_numpy(), test["target"].to_numpy()
    with console.status("Training and tracking two models..."):
        ids = [
            train_logistic(ds, x_tr, y_tr, x_te, y_te),
            train_boosting(ds, x_tr, y_tr, x_te, y_te),
        ]

    runs = keel.search_runs(
        f"id in ({', '.join(repr(i) for i in ids)})",
        projects=[PROJECT],
        order_by=["-metrics.roc_auc"],
    ).items
    # One column per run, best first: metrics, then every param either run set.
    table = Table(title=f"{PROJECT}: two runs, best ROC AUC first", header_style="bold")
    table.add_column("")
    for run in runs:
        table.add_column(f"{run.name}\n{run.id[:8]}", justify="right")
    for metric in METRICS:
        table.add_row(metric, *(f"{run.metrics[metric]:.4f}" for run in runs))
    for key in sorted({k for run in runs for k in run.params}):
        table.add_row(f"param {key}", *(run.params.get(key, "-") for run in runs))
    console.print(table)

    best = runs[0]
    history = keel.Client().metric_history(ids[1], "val_log_loss")
    settings = get_settings()
    console.print(
        f"Best: [bold]{best.name}[/] ({best.id[:8]}), ROC AUC {best.metrics['roc_auc']:.4f}"
    )
    console.print(f"Learning curve of gradient-boosting: {len(history)} points of val_log_loss")
    console.print(f"Runs that used {ds.ref}: {len(keel.Client().store.runs_using(ds.ref))}")
    release(best, holdout)
    monitor(*serve_champion(x_te.reset_index(drop=True), y_te))
    console.print(f"Metadata:  {settings.tracking_uri}")
    console.print(f"Artifacts: {settings.artifacts_uri}")
    console.print('Try: keel runs search "metrics.roc_auc > 0.9" --order-by -metrics.roc_auc')
    console.print(f"     keel runs compare {ids[0][:8]} {ids[1][:8]}")
    console.print(f"     keel data show {ds.ref}")
    console.print(f"     keel models decisions {MODEL}")
    console.print(f"     keel serve --deployment {MODEL}")
    console.print(f"     keel monitor history {MODEL}; keel alerts ls")


if __name__ == "__main__":
    main()
