"""``keel monitor``: drift between a reference and current data, monitoring runs of a
deployment (run, history, report), recurring monitors (schedule, schedules, unschedule,
worker) and the Prometheus export (metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.monitoring._monitor import MonitorResult

app = typer.Typer(
    help="Monitor data and predictions: drift, monitoring runs, reports, schedules, metrics.",
    no_args_is_help=True,
)


@app.command("drift")
def drift(  # noqa: PLR0917 - Typer passes every option positionally
    reference: Annotated[
        str,
        typer.Argument(help="Dataset ref (NAME@vN), a CSV/Parquet file, or a saved profile .json."),
    ],
    current: Annotated[str, typer.Argument(help="Dataset ref (NAME@vN) or a CSV/Parquet file.")],
    columns: Annotated[
        list[str] | None, typer.Option("--columns", "-c", help="Column to test (repeatable).")
    ] = None,
    test: Annotated[
        str | None,
        typer.Option(
            "--test",
            help="One test for every column it fits: ks, chi2, psi, "
            "wasserstein, jensenshannon (default: chosen per column).",
        ),
    ] = None,
    multivariate: Annotated[
        bool, typer.Option("--multivariate", help="Add the domain-classifier test.")
    ] = False,
    save_reference: Annotated[
        Path | None,
        typer.Option("--save-reference", help="Also write the reference profile as JSON here."),
    ] = None,
    drift_share: Annotated[
        float,
        typer.Option(
            "--drift-share",
            min=0.0,
            max=1.0,
            help="Share of drifted columns that is dataset drift.",
        ),
    ] = 0.5,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 2 when the dataset drifted.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Test each column of CURRENT for drift from REFERENCE and print the verdicts."""
    from keel.monitoring import assess_drift
    from keel.monitoring._sources import read_reference, read_table, write_reference

    profile = read_reference(reference)
    label, data = read_table(current, field="current")
    report = assess_drift(
        profile,
        data,
        columns=columns,
        tests=test,
        multivariate=multivariate,
        drift_share=drift_share,
        current_name=label,
    )
    if save_reference is not None:
        write_reference(profile, save_reference)
    if json:
        print_json(report.to_dict())
    else:
        table(
            f"Drift: {report.current} against {report.reference}",
            ["column", "type", "test", "score", "threshold", "verdict", "reason"],
            [
                [c.column, c.type, c.test, c.score, c.threshold, c.status, c.reason]
                for c in report.columns
            ],
        )
        tested = len(report.tested)
        console.print(
            f"Drifted: {len(report.drifted_columns)} of {tested} tested columns "
            f"({report.drift_share:.0%}; dataset drift at {report.drift_share_threshold:.0%}): "
            + ("[bold red]DRIFT[/]" if report.dataset_drift else "[green]no dataset drift[/]"),
            highlight=False,
        )
        m = report.multivariate
        if m is not None:
            auc = "n/a" if m.auc is None else f"{m.auc:.3f} ± {m.auc_std or 0:.3f}"
            top = ", ".join(f"{k} {v:.2f}" for k, v in m.importances[:5])
            console.print(
                f"Domain classifier: AUC {auc} (threshold {m.threshold}) {m.status}"
                + (f"; relies on {top}" if top else "")
                + (f"; {m.reason}" if m.status == "insufficient_data" else ""),
                highlight=False,
            )
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(2)


_Deployment = Annotated[str, typer.Argument(help="The deployment whose prediction log to watch.")]
_Window = Annotated[
    str | None,
    typer.Option("--window", "-w", help="Log window: 24h, 90m, 7d, or START..END (ISO)."),
]
_Reference = Annotated[
    str | None,
    typer.Option(
        "--reference",
        "-r",
        help="NAME@vN, profile:PATH.json, log:24h (the window before) or log:7d..1d "
        "(default: the champion's training dataset from lineage).",
    ),
]
_Columns = Annotated[
    list[str] | None, typer.Option("--columns", "-c", help="Input column to test (repeatable).")
]
_Test = Annotated[
    str | None,
    typer.Option("--test", help="One drift test for every column: ks, chi2, psi, wasserstein, "
                 "jensenshannon (default: chosen per column)."),
]  # fmt: skip
_Task = Annotated[
    str | None,
    typer.Option("--task", help="classification or regression (default: inferred from labels)."),
]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if pct:
        return f"{value:.1%}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_summary(result: MonitorResult) -> None:
    s = result.summary
    w = s["window"]
    perf = s["performance"]
    rows = [
        ["window", f"{w['start']} .. {w['end']} ({s['rows']} rows)"],
        ["reference", s["reference"] or "none"],
        [
            "drift share",
            f"{_fmt(s['drift_share'], pct=True)} of {s['tested_columns']} tested columns"
            + (" - DATASET DRIFT" if s["dataset_drift"] else ""),
        ],
        [
            "most drifted",
            ", ".join(
                f"{c['column']} ({c['test']} {_fmt(c['statistic'])})" for c in s["top_drifted"]
            )
            or "-",
        ],
        [
            "prediction drift",
            ", ".join(f"{k}: {'drift' if v else 'ok'}" for k, v in s["prediction_drift"].items())
            or "-",
        ],
        [
            "performance",
            "n/a"
            if perf is None
            else f"{perf['metric']} {_fmt(perf['value'])} on {perf['n']} labelled rows",
        ],
        ["label coverage", _fmt(s["label_coverage"], pct=True)],
        ["latency p99", f"{_fmt(s['latency_p99_ms'])} ms"],
        ["error rate", _fmt(s["error_rate"], pct=True)],
        ["requests", _fmt(s["requests"])],
        ["alerts", str(s["alerts"])],
    ]
    table(f"Monitor {result.deployment} (result {result.id})", ["", ""], rows)
    if result.drift is not None:
        table(
            "Data drift per column",
            ["column", "type", "test", "statistic", "p-value", "threshold", "verdict", "reason"],
            [
                [c.column, c.type, c.test, c.statistic, c.p_value, c.threshold, c.status, c.reason]
                for c in result.drift.columns
            ],
        )
    if result.alerts:
        table(
            "Alerts",
            ["rule", "event", "quantity", "value", "severity"],
            [[a.rule, a.kind, a.quantity, a.value, a.severity] for a in result.alerts],
        )
    for note in s["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command("run")
def run(  # noqa: PLR0917 - Typer passes every option positionally
    deployment: _Deployment,
    window: _Window = None,
    last_rows: Annotated[
        int | None, typer.Option("--last-rows", min=1, help="The newest N rows instead.")
    ] = None,
    reference: _Reference = None,
    columns: _Columns = None,
    test: _Test = None,
    multivariate: Annotated[
        bool, typer.Option("--multivariate", help="Add the domain-classifier test.")
    ] = False,
    drift_share: Annotated[
        float, typer.Option("--drift-share", min=0.0, max=1.0, help="Drift share = dataset drift.")
    ] = 0.5,
    task: _Task = None,
    slices: Annotated[
        list[str] | None, typer.Option("--slice", help="Input column to slice by (repeatable).")
    ] = None,
    save_reference: Annotated[
        Path | None,
        typer.Option("--save-reference", help="Write the reference profile used as JSON here."),
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 2 when the dataset drifted.")
    ] = False,
    json: _Json = False,
) -> None:
    """Monitor DEPLOYMENT over a window of its prediction log, store the result, evaluate the
    alert rules, and print the summary."""
    from keel.monitoring._monitor import run_monitor
    from keel.monitoring._sources import write_reference

    result = run_monitor(
        deployment,
        window=window,
        last_rows=last_rows,
        reference=reference,
        columns=columns,
        tests=test,
        multivariate=multivariate,
        drift_share=drift_share,
        task=task,
        slices=slices or (),
    )
    if save_reference is not None:
        if result.reference.profile is None:
            raise typer.BadParameter(
                "no reference was found to save", param_hint="--save-reference"
            )
        write_reference(result.reference.profile, save_reference)
    if json:
        print_json(result.to_dict() | {"summary": result.summary})
    else:
        _print_summary(result)
    if fail_on_drift and result.drift is not None and result.drift.dataset_drift:
        raise typer.Exit(2)


@app.command("history")
def history(
    deployment: _Deployment,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="Runs.")] = 20,
    json: _Json = False,
) -> None:
    """List the stored monitoring results of DEPLOYMENT, newest first."""
    from keel import _time
    from keel.monitoring._monitor import monitor_history

    runs = monitor_history(deployment, limit=limit)
    if json:
        print_json([r.to_dict() for r in runs])
        return
    rows = []
    for r in runs:
        s = r.summary
        perf = s.get("performance") or {}
        rows.append(
            [
                _time.format_ms(r.created_ms),
                r.status,
                _fmt(s.get("drift_share"), pct=True) if r.status == "ok" else "",
                f"{perf.get('metric')} {_fmt(perf.get('value'))}" if perf else "",
                _fmt(s.get("label_coverage"), pct=True) if r.status == "ok" else "",
                _fmt(s.get("latency_p99_ms")) if r.status == "ok" else "",
                _fmt(s.get("error_rate"), pct=True) if r.status == "ok" else "",
                s.get("alerts", ""),
                r.error or r.id,
            ]
        )
    table(
        f"Monitoring history of {deployment}",
        ["when", "status", "drift", "performance", "coverage", "p99 ms", "errors", "alerts",
         "result"],
        rows,
    )  # fmt: skip
    if not runs:
        console.print(f"No stored results yet; run: keel monitor run {deployment}", highlight=False)


@app.command("report")
def report(
    deployment: _Deployment,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default: monitor-NAME.html).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    result_id: Annotated[
        str | None, typer.Option("--result", help="A stored result id (default: the newest).")
    ] = None,
    runs: Annotated[
        int, typer.Option("--history", min=1, max=10_000, help="Stored runs charted over time.")
    ] = 50,
) -> None:
    """Write a self-contained HTML report (and optionally JSON) of DEPLOYMENT's newest (or a
    chosen) monitoring result with its history."""
    from keel.monitoring._report import write_report

    html = out if out is not None else Path(f"monitor-{deployment}.html")
    write_report(deployment, out=html, json_out=json_out, result_id=result_id, history=runs)
    console.print(f"Wrote {html}" + (f" and {json_out}" if json_out else ""), highlight=False)


@app.command("schedule")
def schedule(  # noqa: PLR0917 - Typer passes every option positionally
    deployment: _Deployment,
    every: Annotated[str, typer.Option("--every", help="How often: 15m, 1h, 1d.")],
    window: _Window = None,
    reference: _Reference = None,
    columns: _Columns = None,
    test: _Test = None,
    task: _Task = None,
    json: _Json = False,
) -> None:
    """Run DEPLOYMENT's monitor every --every (a keel monitor worker runs due monitors)."""
    from keel.monitoring._monitor_worker import describe, schedule_monitor

    found = schedule_monitor(
        deployment,
        every=every,
        window=window,
        reference=reference,
        columns=columns,
        tests=test,
        task=task,
    )
    if json:
        print_json(describe([found])[0])
    else:
        console.print(
            f"Monitoring {deployment} every {every}; first run due now. "
            "Start a worker with: keel monitor worker",
            highlight=False,
        )


@app.command("schedules")
def schedules(json: _Json = False) -> None:
    """List the recurring monitors."""
    from keel.monitoring._monitor_worker import describe, list_schedules

    rows = describe(list_schedules())
    if json:
        print_json(rows)
        return
    table(
        "Monitor schedules",
        ["deployment", "every", "options", "next due", "last run", "status", "runs", "failures",
         "last error"],
        [
            [r["deployment"], f"{r['every_ms'] // 60_000}m", r["options"] or "", r["next_due"],
             r["last_run"], r["last_status"], r["runs"], r["failures"], r["last_error"]]
            for r in rows
        ],
    )  # fmt: skip


@app.command("unschedule")
def unschedule(deployment: _Deployment) -> None:
    """Stop running DEPLOYMENT's monitor on a schedule (stored results stay)."""
    from keel.monitoring._monitor_worker import unschedule as remove

    remove(deployment)
    console.print(f"Removed the monitor schedule of {deployment}", highlight=False)


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    poll: Annotated[str, typer.Option("--poll", help="Pause between checks: 10s, 1m.")] = "10s",
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="Serve /metrics on this port."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Run due monitors; several workers may share one database. Ctrl-C or SIGTERM stops
    after the current run."""
    import signal

    from keel.monitoring._monitor_sql import open_monitor_store
    from keel.monitoring._monitor_worker import MonitorWorker, RunOutcome
    from keel.monitoring._windows import parse_duration

    poll_s = parse_duration(poll, field="poll") / 1000

    def report_run(outcome: RunOutcome) -> None:
        if outcome.error is None:
            console.print(f"{outcome.deployment}: stored {outcome.result_id}", highlight=False)
        else:
            console.print(f"[red]{outcome.deployment}: failed[/] {outcome.error}", highlight=False)

    store = open_monitor_store()
    runner = MonitorWorker(store, on_run=report_run)
    server = None
    if metrics_port is not None:
        from keel.monitoring._prometheus import serve_metrics

        server = serve_metrics(metrics_port, host=metrics_host, store=store)
        console.print(f"Serving /metrics on {metrics_host}:{metrics_port}", highlight=False)

    def stop(signum: int, _frame: object) -> None:
        if runner.stopping:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        console.print("Stopping after the current run...", highlight=False)
        runner.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if once:
            done = runner.run_due()
            console.print(f"Ran {len(done)} due monitor(s)", highlight=False)
        else:
            console.print(f"Worker {runner.owner} polling every {poll}", highlight=False)
            runner.run_forever(poll_s=poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
            server.server_close()
        store.close()


@app.command("metrics")
def metrics(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write atomically here (node_exporter textfile)."),
    ] = None,
) -> None:
    """Print (or write) the latest stored results in the Prometheus exposition format."""
    import sys

    from keel.monitoring._prometheus import metrics_text, write_metrics

    if out is None:
        sys.stdout.write(metrics_text())
    else:
        write_metrics(out)
        console.print(f"Wrote {out}", highlight=False)
