"""Operations of a window: quantiles equal NumPy's per request (not per row), error rates with
and without a status column, per role / version / bucket, degenerate windows, and a window
read back from a log written by the real writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keel.artifacts import LocalBackend
from keel.errors import InvalidInput
from keel.monitoring import Window, assess_operations, read_window
from keel.serving._predlog import PredictionLogWriter, PredictionRow

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR


def log_table(
    latency: np.ndarray,
    *,
    rows_per_request: int = 1,
    status: np.ndarray | None = None,
    roles: list[str] | None = None,
    versions: list[str] | None = None,
    step_ms: int = 1000,
) -> pa.Table:
    """One request per latency value, each repeated over ``rows_per_request`` rows."""
    n = len(latency)
    k = rows_per_request
    columns: dict[str, Any] = {
        "request_id": pa.array(np.repeat([f"r{i}" for i in range(n)], k)),
        "deployment": pa.array(["d"] * n * k),
        "model": pa.array(["m"] * n * k),
        "model_version": pa.array(np.repeat(versions or ["1"] * n, k)),
        "role": pa.array(np.repeat(roles or ["champion"] * n, k)),
        "timestamp": pa.array(np.repeat(T0 + np.arange(n) * step_ms, k), pa.timestamp("ms", "UTC")),
        "latency_ms": pa.array(np.repeat(latency, k)),
        "row": pa.array(np.tile(np.arange(k), n), pa.int32()),
    }
    if status is not None:
        columns["status"] = pa.array(np.repeat(status, k), pa.int64())
    return pa.table(columns)


def test_latency_quantiles_equal_numpy_per_request() -> None:
    latency = np.random.default_rng(0).lognormal(1.0, 0.8, 5000)
    report = assess_operations(log_table(latency, rows_per_request=3))
    want = np.quantile(latency, [0.5, 0.95, 0.99])
    got = report.overall.latency_ms
    assert [got["p50"], got["p95"], got["p99"]] == pytest.approx(want.tolist(), rel=1e-12)
    q = report.quantities()
    assert q["latency.p99_ms"].value == pytest.approx(want[2], rel=1e-12)
    assert (q["requests"].value, q["requests"].n) == (5000, 5000)
    assert report.overall.rows == 15_000  # rows are counted apart from requests


def test_error_rates_with_and_without_a_status_column() -> None:
    latency = np.ones(1000)
    status = np.array([200] * 900 + [404] * 40 + [429] * 10 + [500] * 30 + [503] * 20)
    with_status = assess_operations(log_table(latency, status=status, rows_per_request=2))
    assert with_status.overall.error_rate == pytest.approx(0.05)
    assert with_status.overall.client_error_rate == pytest.approx(0.05)
    assert with_status.quantities()["error_rate"].value == pytest.approx(0.05)
    assert with_status.has_status
    without = assess_operations(log_table(latency))
    assert (without.overall.error_rate, without.overall.client_error_rate) == (0.0, 0.0)
    assert not without.has_status
    # older files (no status) unioned with newer ones: null cells mean 200
    mixed = log_table(latency[:4], status=np.array([200, 500, 200, 200]))
    mixed = mixed.set_column(
        mixed.schema.get_field_index("status"), "status", pa.array([200, 500, None, None])
    )
    assert assess_operations(mixed).overall.error_rate == pytest.approx(0.25)


def test_throughput_divides_by_the_window() -> None:
    table = log_table(np.ones(600), step_ms=500)  # 600 requests over 5 minutes
    assert assess_operations(table).overall.throughput_rps == pytest.approx(600 / 299.5)
    window = Window(T0, T0 + 600_000)
    report = assess_operations(table, window=window)
    assert report.quantities()["throughput_rps"].value == pytest.approx(1.0)
    assert report.to_dict()["window"]["end_ms"] == T0 + 600_000


def test_roles_versions_and_buckets() -> None:
    n = 400
    latency = np.arange(n, dtype=float)
    roles = ["champion" if i % 2 == 0 else "challenger" for i in range(n)]
    versions = ["3" if r == "champion" else "4" for r in roles]
    status = np.where(np.arange(n) % 4 == 1, 500, 200)  # every other challenger request fails
    table = log_table(latency, roles=roles, versions=versions, status=status, step_ms=60_000)
    report = assess_operations(table, bucket_ms=HOUR)
    champion = latency[::2]
    assert report.overall.requests == 200
    assert report.requests == 400
    assert report.overall.latency_ms["p50"] == pytest.approx(np.quantile(champion, 0.5))
    assert report.overall.error_rate == 0.0  # the headline is what clients saw
    assert report.roles["challenger"].error_rate == pytest.approx(0.5)
    assert report.versions["4"].requests == 200
    assert report.versions["3"].latency_ms["p99"] == pytest.approx(np.quantile(champion, 0.99))
    # 400 minutes -> 7 hour buckets aligned to the hour
    assert [b.start_ms - T0 for b in report.buckets] == [h * HOUR for h in range(7)]
    first = report.buckets[0]
    assert first.stats.requests == 30  # champion requests in the first hour
    assert first.stats.latency_ms["p95"] == pytest.approx(np.quantile(champion[:30], 0.95))
    assert sum(b.stats.rows for b in report.buckets) == 400
    json.dumps(report.to_dict(), allow_nan=False)


def test_degenerate_windows() -> None:
    empty = assess_operations(log_table(np.array([])))
    assert empty.requests == 0
    assert empty.overall.latency_ms == {"p50": None, "p95": None, "p99": None}
    assert empty.overall.error_rate is None and empty.overall.throughput_rps is None
    assert empty.quantities()["latency.p50_ms"].value is None
    one = assess_operations(log_table(np.array([7.5])))
    assert one.overall.latency_ms["p99"] == 7.5
    assert one.overall.throughput_rps is None  # no span to divide by without a window
    json.dumps(empty.to_dict(), allow_nan=False)
    with pytest.raises(InvalidInput) as err:
        assess_operations(pa.table({"x": [1]}))
    assert err.value.field == "log"
    with pytest.raises(InvalidInput) as err:
        assess_operations(log_table(np.ones(2)), bucket_ms=0)
    assert err.value.field == "bucket_ms"


def test_a_window_read_from_the_log(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "store")
    latencies = [float(i % 17) for i in range(120)]
    with PredictionLogWriter(backend, deployment="d") as writer:
        for i, lat in enumerate(latencies):
            writer.record(PredictionRow(f"r{i}", 1, {"x": i}, {"prediction": 0}, lat,
                                        timestamp_ms=T0 + i * 30_000))  # fmt: skip
    table = read_window("d", "1h", now_ms=T0 + HOUR, backend=backend, with_feedback=False)
    report = assess_operations(table, bucket_ms=15 * 60_000)
    assert report.window == Window(T0, T0 + HOUR)
    assert report.overall.throughput_rps == pytest.approx(120 / 3600)
    assert report.overall.latency_ms["p95"] == pytest.approx(np.quantile(latencies, 0.95))
    assert [b.stats.requests for b in report.buckets] == [30, 30, 30, 30]
    assert report.buckets[0].stats.throughput_rps == pytest.approx(30 / 900)
