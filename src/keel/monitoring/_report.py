"""The monitoring report of a deployment: one self-contained HTML page (inline SVG, inline CSS,
no script and no external asset) and the same content as JSON.

It shows the newest stored result (or a chosen one) in detail: the summary, every column's
drift verdict, per-feature distributions reference vs current, performance and label coverage
per time bucket, latency and error rate per bucket, and the alerts; and the stored history
over time: drift share and the most drifted columns' scores, the main performance metric,
label coverage, p99 latency and error rate. Every user string (column names, categories,
deployment) is escaped by Jinja2's autoescape or by the SVG helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import _time
from keel.errors import NotFound

if TYPE_CHECKING:
    from keel.monitoring._monitor_sql import SqlMonitorStore

FORMAT = "keel.monitor-report/1"
_TEMPLATES = Path(__file__).parent / "templates"
HISTORY = 50
TOP_COLUMNS = 5
_PERFORMANCE = ("accuracy", "f1", "rmse", "mae", "r2")


def build_report(
    deployment: str,
    *,
    result_id: str | None = None,
    history: int = HISTORY,
    uri: str | None = None,
) -> dict[str, Any]:
    """The report's JSON document: the chosen (default newest ok) result in full, and the
    deployment's stored history (oldest first, at most ``history`` runs)."""
    from keel.monitoring._monitor_sql import open_monitor_store
    from keel.monitoring._predlog import check_name

    check_name(deployment, "deployment")
    store = open_monitor_store(uri)
    try:
        return report_document(
            store,
            deployment,
            result_id=result_id,
            history=history,
            run_hint=f"keel monitor run {deployment}",
        )
    finally:
        store.close()


def report_document(
    store: SqlMonitorStore,
    deployment: str,
    *,
    result_id: str | None,
    history: int,
    run_hint: str,
) -> dict[str, Any]:
    """``build_report`` on an open store; ``run_hint`` says how to run the monitor when there
    is no result yet."""
    from keel.monitoring._monitor_sql import OK

    if result_id is None:
        newest = store.list_results(deployment, limit=1, status=OK, full=True)
        if not newest:
            raise NotFound(
                f"no monitoring result for {deployment!r} yet; run the monitor first ({run_hint})"
            )
        chosen = newest[0]
    else:
        chosen = store.get_result(result_id)
        if chosen.deployment != deployment:
            raise NotFound(f"result {result_id!r} is not one of {deployment!r}")
        if chosen.result is None or chosen.status != OK:
            raise NotFound(f"result {result_id!r} is a failed run: it has no report")
    runs = store.list_results(deployment, limit=history)
    return {
        "format": FORMAT,
        "deployment": deployment,
        "generated_ms": _time.now_ms(),
        "result": chosen.result,
        "history": [
            {
                "id": r.id,
                "created_ms": r.created_ms,
                "status": r.status,
                "error": r.error,
                "quantities": {k: q.to_dict() for k, q in r.quantities.items()},
            }
            for r in reversed(runs)
        ],
    }


def _value(quantities: Mapping[str, Any], name: str) -> float | None:
    q = quantities.get(name)
    return None if q is None else q.get("value")


def _series(history: Sequence[Mapping[str, Any]], name: str) -> list[tuple[int, float | None]]:
    return [
        (int(h["created_ms"]), _value(h["quantities"], name))
        for h in history
        if h["status"] == "ok"
    ]


def _charts(report: Mapping[str, Any]) -> dict[str, Any]:
    """The SVG charts, marked safe for the template (the helpers escape what they draw)."""
    from markupsafe import Markup

    from keel.models._card_svg import bar_chart
    from keel.monitoring import _report_svg as svg

    result = report["result"]
    history = report["history"]
    drift = result.get("drift") or {}
    charts: dict[str, Any] = {"distributions": [], "time": []}
    scored = [
        (c["column"], c["statistic"])
        for c in drift.get("columns", [])
        if c.get("statistic") is not None
    ]
    if scored:
        charts["scores"] = Markup(bar_chart("Drift statistic per column", scored))  # noqa: S704
    for column, d in (result.get("distributions") or {}).items():
        title = f"{column}: reference vs current"
        if d["kind"] == "numeric":
            drawn = svg.histogram_pair(
                title,
                d["edges"],
                d["reference"],
                d["current"],
                reference_outside=d["reference_outside"],
                current_outside=d["current_outside"],
            )
        else:
            drawn = svg.categories_pair(
                title,
                d["categories"],
                d["reference"],
                d["current"],
                reference_other=d["reference_other"],
                current_other=d["current_other"],
            )
        charts["distributions"].append(Markup(drawn))  # noqa: S704
    latest_q = result.get("quantities") or {}
    top = sorted(
        (k for k in latest_q if k.startswith("drift.column.")),
        key=lambda k: -(_value(latest_q, k) or 0.0),
    )[:TOP_COLUMNS]
    time_charts = [
        ("Drift share over time", [("drift share", _series(history, "drift.share"))]),
        (
            "Drift statistic over time (most drifted columns)",
            [(k[len("drift.column.") :], _series(history, k)) for k in top],
        ),
    ]
    metric = next((m for m in _PERFORMANCE if f"performance.{m}" in latest_q), None)
    if metric is not None:
        time_charts.append(
            (f"{metric} over time", [(metric, _series(history, f"performance.{metric}"))])
        )
    time_charts += [
        ("Label coverage over time", [("coverage", _series(history, "label_coverage"))]),
        (
            "Latency over time (ms)",
            [
                ("p50", _series(history, "latency.p50_ms")),
                ("p99", _series(history, "latency.p99_ms")),
            ],
        ),
        ("Error rate over time", [("5xx share", _series(history, "error_rate"))]),
    ]
    charts["time"] = [Markup(svg.line_chart(t, s)) for t, s in time_charts]  # noqa: S704
    charts["buckets"] = [Markup(c) for c in _bucket_charts(result, metric)]  # noqa: S704
    return charts


def _bucket_charts(result: Mapping[str, Any], metric: str | None) -> list[str]:
    """Series inside the window: performance and coverage, latency and error rate."""
    from keel.monitoring import _report_svg as svg

    out = []
    perf = result.get("performance") or {}
    buckets = perf.get("buckets") or []
    if buckets:
        series = [("label coverage", [(b["start_ms"], b.get("label_coverage")) for b in buckets])]
        if metric is not None:
            series.insert(
                0, (metric, [(b["start_ms"], (b.get("values") or {}).get(metric)) for b in buckets])
            )
        out.append(svg.line_chart("Performance and label coverage in the window", series))
    ops = result.get("operations") or {}
    op_buckets = ops.get("buckets") or []
    if op_buckets:

        def latency(b: Mapping[str, Any], key: str) -> float | None:
            value = (b.get("latency_ms") or {}).get(key)
            return None if value is None else float(value)

        out.append(
            svg.line_chart(
                "Latency in the window (ms)",
                [
                    ("p50", [(b["start_ms"], latency(b, "p50")) for b in op_buckets]),
                    ("p99", [(b["start_ms"], latency(b, "p99")) for b in op_buckets]),
                ],
            )
        )
        out.append(
            svg.line_chart(
                "Error rate in the window",
                [("5xx share", [(b["start_ms"], b.get("error_rate")) for b in op_buckets])],
            )
        )
    return out


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def render_html(report: Mapping[str, Any]) -> str:
    """The self-contained HTML page of a ``build_report`` document."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from keel.monitoring._monitor import summarise

    env = Environment(
        loader=FileSystemLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "" if v is None else f"{v:.1%}"
    env.filters["when"] = _time.format_ms
    result = report["result"]
    return env.get_template("monitor_report.html.j2").render(
        report=report,
        r=result,
        s=summarise(result),
        drift=result.get("drift") or {},
        charts=_charts(report),
        generated=_time.format_ms(report["generated_ms"]),
    )


def write_report(
    deployment: str,
    *,
    out: str | Path | None = None,
    json_out: str | Path | None = None,
    result_id: str | None = None,
    history: int = HISTORY,
    uri: str | None = None,
) -> dict[str, Any]:
    """Build the report and write the HTML page to ``out`` and/or the JSON to ``json_out``
    (each atomically); returns the JSON document."""
    import json

    from keel.monitoring._monitor_files import write_atomically

    report = build_report(deployment, result_id=result_id, history=history, uri=uri)
    if out is not None:
        write_atomically(out, render_html(report).encode())
    if json_out is not None:
        text = json.dumps(report, allow_nan=False, indent=2)
        write_atomically(json_out, text.encode())
    return report
