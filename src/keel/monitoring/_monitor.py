"""One monitoring run of a deployment: read a window of its prediction log, measure data drift
against a reference, prediction drift, performance on the delayed labels and operations, store
the result as history, and hand its quantities to the alert rules (``docs/monitoring-runs.md``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel import _time
from keel.errors import InvalidInput
from keel.monitoring._monitor_reference import OUTPUT, Reference, window_text
from keel.monitoring._quantities import Quantity
from keel.monitoring._windows import Window

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.artifacts import ArtifactBackend
    from keel.monitoring._alerts_records import AlertEvent
    from keel.monitoring._feedback import SqlFeedbackStore
    from keel.monitoring._monitor_sql import SqlMonitorStore, StoredResult
    from keel.monitoring._operations import OperationsReport
    from keel.monitoring._performance import PerformanceReport
    from keel.monitoring._records import ColumnDrift, DriftReport
    from keel.monitoring._reference import ReferenceProfile

logger = logging.getLogger("keel.monitoring.monitor")

DEFAULT_WINDOW = "24h"
FORMAT = "keel.monitor-result/1"
TOP_DRIFTED = 5
PREDICTION = "output.prediction"
_MINUTE = 60_000
# Series buckets: the smallest of these giving at most ~48 points over the window.
_BUCKETS = (_MINUTE, 5 * _MINUTE, 15 * _MINUTE, 60 * _MINUTE, 360 * _MINUTE, 1440 * _MINUTE)


def bucket_for(duration_ms: int) -> int:
    """A readable series step for a window of ``duration_ms``."""
    for step in _BUCKETS:
        if duration_ms / step <= 48:
            return step
    return 7 * _BUCKETS[-1]


@dataclass(frozen=True)
class MonitorResult:
    """What one run found. ``drift`` is None when there was no reference or no rows (see
    ``notes``); ``distributions`` are reference-vs-current bins per tested column for charts;
    ``alerts`` the events the alert rules raised on this result."""

    id: str
    deployment: str
    created_ms: int
    window: Window
    rows: int
    reference: Reference
    drift: DriftReport | None
    prediction_drift: tuple[ColumnDrift, ...]
    operations: OperationsReport | None
    performance: PerformanceReport | None = None
    distributions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    alerts: tuple[AlertEvent, ...] = ()

    def quantities(self) -> dict[str, Quantity]:
        """Every monitored number, by the names of ``keel.monitoring._quantities``."""
        out: dict[str, Quantity] = {}
        d = self.drift
        if d is not None:
            n = d.rows_current
            tested = len(d.tested)
            out["drift.share"] = Quantity(d.drift_share if tested else None, n)
            out["drift.drifted_columns"] = Quantity(float(len(d.drifted_columns)), n)
            for c in d.columns:
                out[f"drift.column.{c.column}"] = Quantity(c.statistic, c.current_count)
            m = d.multivariate
            if m is not None:
                out["drift.multivariate.auc"] = Quantity(m.auc, m.rows_current)
        for c in self.prediction_drift:
            name = c.column[len(OUTPUT) :] if c.column.startswith(OUTPUT) else c.column
            out[f"prediction_drift.{name}"] = Quantity(c.statistic, c.current_count)
        if self.performance is not None:
            out.update(self.performance.quantities())
        if self.operations is not None:
            out.update(self.operations.quantities())
        return out

    @property
    def summary(self) -> dict[str, Any]:
        """What a person reads first (see ``summarise``)."""
        return summarise(self.to_dict(alerts=True))

    def to_dict(self, *, alerts: bool = True) -> dict[str, Any]:
        """The JSON-safe document (stored first without ``alerts``; they are attached once
        the alert rules have judged the stored result)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "id": self.id,
            "deployment": self.deployment,
            "created_ms": self.created_ms,
            "created": _time.format_ms(self.created_ms),
            "window": self.window.to_dict(),
            "rows": self.rows,
            "reference": self.reference.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "prediction_drift": [c.to_dict() for c in self.prediction_drift],
            "performance": None if self.performance is None else self.performance.to_dict(),
            "operations": None if self.operations is None else self.operations.to_dict(),
            "distributions": {k: dict(v) for k, v in self.distributions.items()},
            "quantities": {k: q.to_dict() for k, q in self.quantities().items()},
            "notes": list(self.notes),
        }
        if alerts:
            out["alerts"] = [e.to_dict() for e in self.alerts]
        return out


def _main_metric(quantities: Mapping[str, Any]) -> tuple[str, Any] | None:
    for name in ("accuracy", "f1", "rmse", "mae", "r2"):
        q = quantities.get(f"performance.{name}")
        if q is not None:
            return name, q
    return None


def summarise(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The headline of a result document: drift share and the most drifted columns, the main
    performance metric with its label coverage, p99 latency, error rate and alerts."""
    q: Mapping[str, Any] = doc.get("quantities") or {}

    def value(name: str) -> Any:
        found = q.get(name)
        return None if found is None else found.get("value")

    drift = doc.get("drift") or {}
    drifted = [c for c in drift.get("columns", []) if c.get("drifted")]
    # Most drifted first: the smallest p-value, then the largest distance relative to its bar.
    drifted.sort(key=_severity, reverse=True)
    metric = _main_metric(q)
    return {
        "deployment": doc.get("deployment"),
        "created_ms": doc.get("created_ms"),
        "window": doc.get("window"),
        "rows": doc.get("rows"),
        "reference": (doc.get("reference") or {}).get("source") or None,
        "drift_share": value("drift.share"),
        "tested_columns": sum(
            1 for c in drift.get("columns", []) if c.get("status") != "insufficient_data"
        ),
        "dataset_drift": drift.get("dataset_drift"),
        "top_drifted": [
            {"column": c["column"], "test": c.get("test"), "statistic": c.get("statistic")}
            for c in drifted[:TOP_DRIFTED]
        ],
        "prediction_drift": {
            c["column"]: c.get("drifted") for c in doc.get("prediction_drift") or []
        },
        "performance": None
        if metric is None
        else {"metric": metric[0], "value": metric[1].get("value"), "n": metric[1].get("n")},
        "label_coverage": value("label_coverage"),
        "latency_p99_ms": value("latency.p99_ms"),
        "error_rate": value("error_rate"),
        "requests": value("requests"),
        "alerts": len(doc.get("alerts") or []),
        "notes": list(doc.get("notes") or []),
    }


def _severity(column: Mapping[str, Any]) -> float:
    p, stat, thr = column.get("p_value"), column.get("statistic"), column.get("threshold")
    if p is not None:
        return 10.0 + (1.0 - float(p))
    if stat is not None and thr:
        return float(stat) / float(thr)
    return 0.0


def _prediction_drift(
    profile: ReferenceProfile, current: pa.Table, thresholds: Mapping[str, float] | None
) -> tuple[ColumnDrift, ...]:
    from keel.monitoring._drift import assess_drift

    outputs = [n for n in current.column_names if n.startswith(OUTPUT) and n in profile.columns]
    if not outputs:
        return ()
    report = assess_drift(profile, current, columns=outputs, thresholds=_known(thresholds, outputs))
    return report.columns


def _known(thresholds: Mapping[str, float] | None, columns: Sequence[str]) -> dict[str, float]:
    """The thresholds that apply: per-test ones, and per-column ones of ``columns``."""
    from keel.monitoring._drift import ALIASES, TESTS

    out: dict[str, float] = {}
    for key, value in (thresholds or {}).items():
        if key in columns or ALIASES.get(key.lower(), key.lower()) in TESTS:
            out[key] = value
    return out


@dataclass(frozen=True)
class _DriftOptions:
    columns: Sequence[str] | None
    tests: str | Mapping[str, str] | None
    thresholds: Mapping[str, float] | None
    multivariate: bool
    drift_share: float


def _drift_part(
    ref: Reference, current: pa.Table, options: _DriftOptions, *, name: str
) -> tuple[DriftReport | None, tuple[ColumnDrift, ...], dict[str, dict[str, Any]], list[str]]:
    """Data drift, prediction drift, the charts' distributions and the notes on what could
    not be measured."""
    from keel.monitoring._drift import assess_drift
    from keel.monitoring._monitor_dist import distributions

    if ref.profile is None:
        return None, (), {}, [f"no drift: {ref.reason}"]
    if not current.num_rows:
        return None, (), {}, ["no drift: the window has no champion predictions"]
    notes: list[str] = []
    profile = ref.profile
    inputs = [n for n in current.column_names if not n.startswith(OUTPUT) and n in profile.columns]
    chosen = list(options.columns) if options.columns is not None else inputs
    drift = None
    if not chosen:
        notes.append(f"no drift: no input column of the log is in the reference {ref.source}")
    else:
        drift = assess_drift(
            profile,
            current,
            columns=chosen,
            tests=options.tests,
            thresholds=_known(options.thresholds, chosen),
            multivariate=options.multivariate,
            drift_share=options.drift_share,
            current_name=name,
        )
    predictions = _prediction_drift(profile, current, options.thresholds)
    if not predictions and ref.kind == "dataset":
        notes.append(
            "no prediction drift: a dataset has no model outputs; use a log window "
            "reference (log:7d..1d) or a profile saved from one"
        )
    shown = [*(chosen if drift is not None else []), *(c.column for c in predictions)]
    return drift, predictions, distributions(profile.columns, current, shown), notes


def _store_result(
    result: MonitorResult, store: SqlMonitorStore | None, *, uri: str | None
) -> dict[str, Quantity]:
    """Store ``result`` as history; returns its quantities."""
    from keel.monitoring._monitor_sql import OK, open_monitor_store

    monitors = open_monitor_store(uri) if store is None else store
    try:
        doc = result.to_dict(alerts=False)
        quantities = result.quantities()
        monitors.add_result(
            id=result.id,
            deployment=result.deployment,
            created_ms=result.created_ms,
            window=(result.window.start_ms, result.window.end_ms),
            status=OK,
            summary=summarise(doc),
            quantities=quantities,
            result=doc,
        )
        return quantities
    finally:
        if store is None:
            monitors.close()


def run_monitor(
    deployment: str,
    *,
    window: str | Window | None = None,
    last_rows: int | None = None,
    reference: str | ReferenceProfile | None = None,
    now_ms: int | None = None,
    columns: Sequence[str] | None = None,
    tests: str | Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    multivariate: bool = False,
    drift_share: float = 0.5,
    task: str | None = None,
    positive_label: Any = None,
    slices: Sequence[str] = (),
    business: Mapping[str, Any] | None = None,
    bucket_ms: int | None = None,
    store: SqlMonitorStore | None = None,
    backend: ArtifactBackend | None = None,
    feedback_store: SqlFeedbackStore | None = None,
    uri: str | None = None,
    evaluate_alerts: bool = True,
) -> MonitorResult:
    """Monitor ``deployment`` over ``window`` (default ``24h`` back from ``now_ms``) or its
    newest ``last_rows`` rows, store the result and evaluate the alert rules on it.

    ``reference`` is a ``ReferenceProfile`` or text (``docs/monitoring-runs.md``: a dataset
    ref, ``profile:PATH``, ``log:24h``, ``log:7d..1d``; default: the champion's training data
    from lineage). ``columns``, ``tests``, ``thresholds``, ``multivariate`` and
    ``drift_share`` go to ``assess_drift``; ``task``, ``positive_label``, ``slices`` and
    ``business`` to ``assess_performance`` (labelled rows only). ``store``, ``backend`` and
    ``feedback_store`` default to the configured stores (``uri`` names the metadata store)."""
    from keel.monitoring._monitor_reference import monitored_columns, resolve_reference
    from keel.monitoring._operations import assess_operations
    from keel.monitoring._performance import assess_performance
    from keel.monitoring._predlog import check_name
    from keel.monitoring._windows import read_window, window_of

    check_name(deployment, "deployment")
    if window is not None and last_rows is not None:
        raise InvalidInput("give either a window or last_rows, not both", field="window")
    if window is None and last_rows is None:
        window = DEFAULT_WINDOW
    now = _time.now_ms() if now_ms is None else int(now_ms)
    own_feedback = feedback_store is None and uri is not None
    if own_feedback:
        from keel.monitoring._feedback import open_feedback_store

        feedback_store = open_feedback_store(uri)
    if backend is None:
        from keel.artifacts import open_backend

        backend = open_backend()
    try:

        def read_log(span: Window | str | None, rows: int | None = None) -> pa.Table:
            return read_window(
                deployment,
                span,
                last_rows=rows,
                now_ms=now,
                backend=backend,
                feedback_store=feedback_store,
            )

        log = read_log(window, last_rows)
        span = window_of(log)
        assert span is not None  # read_window records it
        ref = resolve_reference(reference, current=log, window=span, read_log=read_log)
        current = monitored_columns(log)
        options = _DriftOptions(columns, tests, thresholds, multivariate, drift_share)
        drift, predictions, dists, notes = _drift_part(
            ref, current, options, name=f"{deployment} {window_text(span)}"
        )
        step = bucket_ms if bucket_ms is not None else bucket_for(span.duration_ms)
        operations = assess_operations(log, bucket_ms=step, window=span)
        performance = None
        if PREDICTION in log.column_names:
            performance = assess_performance(
                log,
                task=task,
                positive_label=positive_label,
                slices=slices,
                business=business,
                bucket_ms=step,
                window=span,
            )
            if performance.reason:
                notes.append(f"performance: {performance.reason}")
        else:
            notes.append(f"no performance: the window has no {PREDICTION} column (no rows)")
        result = MonitorResult(
            id=uuid.uuid4().hex,
            deployment=deployment,
            created_ms=now,
            window=span,
            rows=log.num_rows,
            reference=ref,
            drift=drift,
            prediction_drift=predictions,
            operations=operations,
            performance=performance,
            distributions=dists,
            notes=tuple(notes),
        )
        quantities = _store_result(result, store, uri=uri)
    finally:
        if own_feedback and feedback_store is not None:
            feedback_store.close()
    if evaluate_alerts:
        events = _evaluate(result, quantities, uri=uri)
        if events:
            result = _with_alerts(result, events)
            _attach(result, store, uri=uri)
    return result


def _attach(result: MonitorResult, store: SqlMonitorStore | None, *, uri: str | None) -> None:
    from keel.monitoring._monitor_sql import open_monitor_store

    monitors = open_monitor_store(uri) if store is None else store
    try:
        monitors.attach_alerts(result.id, [e.to_dict() for e in result.alerts])
    finally:
        if store is None:
            monitors.close()


def _with_alerts(result: MonitorResult, events: Sequence[AlertEvent]) -> MonitorResult:
    from dataclasses import replace

    return replace(result, alerts=tuple(events))


def _evaluate(
    result: MonitorResult, quantities: dict[str, Quantity], *, uri: str | None
) -> list[AlertEvent]:
    """The alert rules' verdicts on this result (``keel.monitoring._alerts``)."""
    from keel.monitoring._alerts import evaluate_result

    return list(
        evaluate_result(
            result.deployment,
            result.id,
            quantities,
            window_ms=result.window.duration_ms,
            at_ms=result.created_ms,
            uri=uri,
        )
    )


def monitor_history(
    deployment: str,
    *,
    limit: int = 50,
    since_ms: int | None = None,
    full: bool = False,
    uri: str | None = None,
) -> list[StoredResult]:
    """The stored runs of ``deployment``, newest first (``full`` includes each document)."""
    from keel.monitoring._monitor_sql import open_monitor_store
    from keel.monitoring._predlog import check_name

    check_name(deployment, "deployment")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput("must be within 1..10000", field="limit")
    store = open_monitor_store(uri)
    try:
        return store.list_results(deployment, limit=limit, since_ms=since_ms, full=full)
    finally:
        store.close()
