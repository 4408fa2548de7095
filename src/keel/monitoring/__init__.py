"""Monitoring: drift between a reference and current data (``docs/monitoring.md``), the
prediction log read back with its delayed labels, performance and operations over windows of it
(``docs/monitoring-performance.md``), stored monitor runs, schedules, reports and the Prometheus
export (``docs/monitoring-runs.md``), and alert rules and channels (``docs/alerts.md``).

``assess_drift(reference, current)`` tests each column with a test chosen by its type and the
sample sizes (overridable), from summaries binned on edges fixed by the reference, so a
``ReferenceProfile`` is computed once, stored as JSON, and reused for every window. NumPy,
pyarrow, SciPy and scikit-learn load on first use, not on ``import keel.monitoring``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring._alerts import (
        ack_alert,
        add_channel,
        add_rule,
        evaluate_result,
        list_alert_events,
        list_alerts,
        list_rules,
    )
    from keel.monitoring._detectors import ChangePoint, detect_changes
    from keel.monitoring._drift import (
        DEFAULT_THRESHOLDS,
        TESTS,
        assess_column,
        assess_drift,
        assess_prediction_drift,
        default_test,
    )
    from keel.monitoring._monitor import MonitorResult, monitor_history, run_monitor
    from keel.monitoring._monitor_worker import (
        MonitorWorker,
        list_schedules,
        schedule_monitor,
        unschedule,
    )
    from keel.monitoring._operations import OperationsReport, assess_operations
    from keel.monitoring._performance import PerformanceReport, assess_performance
    from keel.monitoring._predlog import read_predictions
    from keel.monitoring._prometheus import metrics_text
    from keel.monitoring._records import ColumnDrift, DriftReport, MultivariateDrift
    from keel.monitoring._reference import ColumnSummary, ReferenceProfile
    from keel.monitoring._report import build_report, write_report
    from keel.monitoring._windows import Window, parse_window, read_window, split_buckets

_LAZY = {
    "ack_alert": "keel.monitoring._alerts",
    "add_channel": "keel.monitoring._alerts",
    "add_rule": "keel.monitoring._alerts",
    "evaluate_result": "keel.monitoring._alerts",
    "list_alert_events": "keel.monitoring._alerts",
    "list_alerts": "keel.monitoring._alerts",
    "list_rules": "keel.monitoring._alerts",
    "assess_drift": "keel.monitoring._drift",
    "assess_column": "keel.monitoring._drift",
    "assess_prediction_drift": "keel.monitoring._drift",
    "default_test": "keel.monitoring._drift",
    "DEFAULT_THRESHOLDS": "keel.monitoring._drift",
    "TESTS": "keel.monitoring._drift",
    "ColumnDrift": "keel.monitoring._records",
    "DriftReport": "keel.monitoring._records",
    "MultivariateDrift": "keel.monitoring._records",
    "read_predictions": "keel.monitoring._predlog",
    "Window": "keel.monitoring._windows",
    "parse_window": "keel.monitoring._windows",
    "read_window": "keel.monitoring._windows",
    "split_buckets": "keel.monitoring._windows",
    "assess_performance": "keel.monitoring._performance",
    "PerformanceReport": "keel.monitoring._performance",
    "detect_changes": "keel.monitoring._detectors",
    "ChangePoint": "keel.monitoring._detectors",
    "assess_operations": "keel.monitoring._operations",
    "OperationsReport": "keel.monitoring._operations",
    "ColumnSummary": "keel.monitoring._reference",
    "run_monitor": "keel.monitoring._monitor",
    "monitor_history": "keel.monitoring._monitor",
    "MonitorResult": "keel.monitoring._monitor",
    "schedule_monitor": "keel.monitoring._monitor_worker",
    "list_schedules": "keel.monitoring._monitor_worker",
    "unschedule": "keel.monitoring._monitor_worker",
    "MonitorWorker": "keel.monitoring._monitor_worker",
    "build_report": "keel.monitoring._report",
    "write_report": "keel.monitoring._report",
    "metrics_text": "keel.monitoring._prometheus",
    "ReferenceProfile": "keel.monitoring._reference",
}

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TESTS",
    "ChangePoint",
    "ColumnDrift",
    "ColumnSummary",
    "DriftReport",
    "MonitorResult",
    "MonitorWorker",
    "MultivariateDrift",
    "OperationsReport",
    "PerformanceReport",
    "ReferenceProfile",
    "Window",
    "ack_alert",
    "add_channel",
    "add_rule",
    "assess_column",
    "assess_drift",
    "assess_operations",
    "assess_performance",
    "assess_prediction_drift",
    "build_report",
    "default_test",
    "detect_changes",
    "evaluate_result",
    "list_alert_events",
    "list_alerts",
    "list_rules",
    "list_schedules",
    "metrics_text",
    "monitor_history",
    "parse_window",
    "read_predictions",
    "read_window",
    "run_monitor",
    "schedule_monitor",
    "split_buckets",
    "unschedule",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.monitoring' has no attribute {name!r}")
