"""The newest stored monitoring result of every deployment in the Prometheus exposition format,
for existing dashboards: ``keel monitor metrics`` (a file for node_exporter's textfile
collector), ``keel monitor worker --metrics-port`` (``/metrics``), or ``metrics_text()`` for a
server route.

Gauges (one sample per deployment and quantity; a quantity without a value has no
``keel_monitor_value`` sample but keeps its ``keel_monitor_samples``)::

    keel_monitor_value{deployment="churn",quantity="drift.share"} 0.25
    keel_monitor_samples{deployment="churn",quantity="drift.share"} 800
    keel_monitor_last_run_timestamp_seconds{deployment="churn"} 1.79e+09

The store is read at each scrape (one query), so a long-running exporter always shows the
latest stored result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from keel.monitoring._monitor_sql import SqlMonitorStore, StoredResult


class MonitorCollector:
    """A prometheus-client collector over the stored results at ``uri``."""

    def __init__(self, uri: str | None = None, *, store: SqlMonitorStore | None = None) -> None:
        self.uri = uri
        self.store = store

    def _latest(self) -> list[StoredResult]:
        from keel.monitoring._monitor_sql import open_monitor_store

        if self.store is not None:  # the caller's (a worker's) store, shared, not closed here
            return self.store.latest_results()
        store = open_monitor_store(self.uri)
        try:
            return store.latest_results()
        finally:
            store.close()

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        value = GaugeMetricFamily(
            "keel_monitor_value",
            "Latest value of a monitored quantity (keel.monitoring._quantities names).",
            labels=["deployment", "quantity"],
        )
        samples = GaugeMetricFamily(
            "keel_monitor_samples",
            "Rows, requests or labels behind the latest value of a monitored quantity.",
            labels=["deployment", "quantity"],
        )
        last = GaugeMetricFamily(
            "keel_monitor_last_run_timestamp_seconds",
            "When the latest stored monitoring result was computed (Unix time).",
            labels=["deployment"],
        )
        for result in self._latest():
            for name, q in sorted(result.quantities.items()):
                if q.value is not None:
                    value.add_metric([result.deployment, name], q.value)
                samples.add_metric([result.deployment, name], float(q.n))
            last.add_metric([result.deployment], result.created_ms / 1000.0)
        yield value
        yield samples
        yield last


def registry(uri: str | None = None, *, store: SqlMonitorStore | None = None) -> CollectorRegistry:
    """A registry holding only the monitor collector (no process metrics)."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(MonitorCollector(uri, store=store))
    return reg


def metrics_text(uri: str | None = None) -> str:
    """The exposition text of the latest stored results."""
    from prometheus_client import generate_latest

    return generate_latest(registry(uri)).decode()


def write_metrics(path: str | Path, *, uri: str | None = None) -> Path:
    """Write the exposition text to ``path`` atomically (temp file, fsync, rename), as the
    textfile collector requires: it must never read a half-written file."""
    from keel.monitoring._monitor_files import write_atomically

    return write_atomically(path, metrics_text(uri).encode())


def serve_metrics(
    port: int,
    *,
    host: str = "127.0.0.1",
    uri: str | None = None,
    store: SqlMonitorStore | None = None,
) -> Any:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread, reading ``store`` (default:
    one opened per scrape at ``uri``); returns the server (call ``shutdown()`` to stop it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry(uri, store=store))
    return server
