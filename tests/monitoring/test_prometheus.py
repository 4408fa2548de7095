"""The Prometheus export: the newest ok result per deployment, parsed back with
prometheus_client's own parser; the textfile written atomically; /metrics served."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keel.monitoring._monitor_sql import ERROR, OK, open_monitor_store
from keel.monitoring._prometheus import metrics_text, serve_metrics, write_metrics
from keel.monitoring._quantities import Quantity
from live_server import free_port


def _store_results() -> None:
    store = open_monitor_store()
    try:
        for i, (deployment, share) in enumerate([("churn", 0.1), ("churn", 0.4), ("fraud", 0.0)]):
            store.add_result(
                id=f"r{i}",
                deployment=deployment,
                created_ms=1_790_000_000_000 + i * 1000,
                window=(0, 1),
                status=OK,
                summary={},
                quantities={
                    "drift.share": Quantity(share, 800),
                    'drift.column.we"ird\\name': Quantity(0.5, 10),
                    "latency.p99_ms": Quantity(None, 0),
                },
                result={},
            )
        store.add_result(  # a later failed run does not hide the last good values
            id="bad",
            deployment="churn",
            created_ms=1_790_000_999_000,
            window=None,
            status=ERROR,
            summary={},
            quantities={},
            result={},
            error="x",
        )
    finally:
        store.close()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_latest_quantities_parse_as_prometheus_text() -> None:
    _store_results()
    samples = _samples(metrics_text())
    key = (("deployment", "churn"), ("quantity", "drift.share"))
    assert samples[("keel_monitor_value", key)] == 0.4  # the newest ok result
    assert samples[("keel_monitor_samples", key)] == 800
    fraud = (("deployment", "fraud"), ("quantity", "drift.share"))
    assert samples[("keel_monitor_value", fraud)] == 0.0
    weird = (("deployment", "churn"), ("quantity", 'drift.column.we"ird\\name'))
    assert samples[("keel_monitor_value", weird)] == 0.5  # label escaping round-trips
    none = (("deployment", "churn"), ("quantity", "latency.p99_ms"))
    assert ("keel_monitor_value", none) not in samples  # no value: no sample
    assert samples[("keel_monitor_samples", none)] == 0
    last = ("keel_monitor_last_run_timestamp_seconds", (("deployment", "churn"),))
    assert samples[last] == 1_790_000_001.0


def test_textfile_is_written_whole_and_metrics_are_served(tmp_path: Path) -> None:
    assert metrics_text().count("keel_monitor_value{") == 0  # empty store: families, no samples
    _store_results()
    out = tmp_path / "textfile"
    out.mkdir()
    path = write_metrics(out / "keel.prom")
    assert path.read_text() == metrics_text()
    assert [p.name for p in out.iterdir()] == ["keel.prom"]  # no temp file left
    port = free_port()
    server = serve_metrics(port)
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        server.server_close()
    assert _samples(body) == _samples(metrics_text())
