"""The prediction log writer: completeness across hour partitions (local and S3), bounded
buffer under a stalled store, sampling, exclusions, atomic files."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from keel.artifacts import ArtifactBackend, BackendWriter, LocalBackend, open_backend
from keel.errors import InvalidInput, StoreUnavailable
from keel.monitoring._predlog import read_predictions
from keel.serving._predlog import PredictionLogWriter, PredictionRow, sampled

HOUR_MS = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS  # an hour boundary in 2026


def rec(i: int, *, at: int | None = None, **extra: object) -> PredictionRow:
    return PredictionRow(
        request_id=f"r{i}",
        model_version=3,
        inputs={"x": float(i), "ssn": f"000-{i}", **extra},
        outputs={"y": i % 2, "proba": [0.25, 0.75]},
        latency_ms=1.5,
        model="churn",
        timestamp_ms=T0 + i * 1000 if at is None else at,
    )


def log_rows(backend: ArtifactBackend, deployment: str = "d") -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for info in backend.iter_keys(f"predictions/deployment={deployment}"):
        with backend.open_reader(info.key) as f:
            rows.extend(pq.read_table(io.BytesIO(f.read())).to_pylist())
    return rows


def keys(backend: ArtifactBackend) -> list[str]:
    return sorted(i.key for i in backend.iter_keys("predictions"))


def test_every_record_is_written_across_hours(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "store")
    writer = PredictionLogWriter(backend, deployment="d", batch_rows=100, flush_interval_s=60)
    n = 1000
    for i in range(n):  # 10.8 s apart: 1000 records span three hours
        assert writer.record(rec(i, at=T0 + i * 10_800))
    writer.close()
    assert (writer.logged, writer.dropped, writer.pending) == (n, 0, 0)
    rows = log_rows(backend)
    assert sorted(r["request_id"] for r in rows) == sorted(f"r{i}" for i in range(n))
    hours = {k.split("/")[3] for k in keys(backend)}
    assert hours == {"hour=" + f"{(T0 // HOUR_MS + h) % 24:02d}" for h in range(3)}
    assert all(k.endswith(".parquet") and "/date=" in k for k in keys(backend))
    first = next(r for r in rows if r["request_id"] == "r7")
    assert first["input.x"] == 7.0 and first["output.proba"] == [0.25, 0.75]
    assert first["deployment"] == "d" and first["role"] == "champion"
    assert first["model_version"] == "3" and first["row"] == 0


def test_interval_flush_without_close(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    with PredictionLogWriter(backend, deployment="d", flush_interval_s=0.05) as writer:
        writer.record(rec(1))
        deadline = time.monotonic() + 5
        while writer.logged == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.logged == 1
        assert len(keys(backend)) == 1


def test_flush_writes_what_was_recorded(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d", flush_interval_s=3600)
    for i in range(10):
        writer.record(rec(i))
    assert writer.flush(timeout=10)
    assert len(log_rows(backend)) == 10
    writer.close()
    assert not writer.record(rec(99))  # closed: dropped, never an exception
    assert writer.dropped == 1


def test_s3_completeness(s3_env: str) -> None:
    backend = open_backend(s3_env)
    writer = PredictionLogWriter(backend, deployment="churn-prod", batch_rows=50)
    for i in range(300):
        writer.record(rec(i, at=T0 + i * 30_000))  # 2.5 hours
    writer.close()
    assert writer.logged == 300
    assert len(log_rows(backend, "churn-prod")) == 300
    assert len({k.split("/")[3] for k in keys(backend)}) == 3
    table = read_predictions(
        "churn-prod", start=T0, end=T0 + 3 * HOUR_MS, backend=backend, with_feedback=False
    )
    assert table.num_rows == 300
    backend.close()


class StalledBackend(LocalBackend):
    """A real local store whose writes wait until released, like an unreachable bucket."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()

    def open_writer(self, key: str) -> BackendWriter:
        self.release.wait()
        return super().open_writer(key)


def test_a_stalled_store_never_blocks_record_and_drops_are_counted(tmp_path: Path) -> None:
    backend = StalledBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d", batch_rows=10, max_buffer=100)
    started = time.perf_counter()
    results = [writer.record(rec(i)) for i in range(1000)]
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # 1000 calls against a store that answers nothing
    kept = sum(results)
    # The buffer, plus the one batch the writer's thread took before stalling: it takes the
    # whole buffer, which is 10 rows or (when that thread woke late, on a loaded machine) 100.
    assert 100 <= kept <= 200
    assert writer.dropped == 1000 - kept
    backend.release.set()
    writer.close()
    assert writer.logged == kept and writer.logged + writer.dropped == 1000
    assert len(log_rows(backend)) == kept


def test_close_with_a_stalled_store_returns_after_its_timeout(tmp_path: Path) -> None:
    backend = StalledBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d")
    writer.record(rec(1))
    started = time.monotonic()
    writer.close(timeout=0.2)
    assert time.monotonic() - started < 2
    assert writer.pending == 1
    backend.release.set()
    writer.close()
    assert writer.logged == 1


class FailingBackend(LocalBackend):
    """Fails the first ``failures`` file writes half-way through, like a dropped connection."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def open_writer(self, key: str) -> BackendWriter:
        inner = super().open_writer(key)
        if self.failures <= 0:
            return inner
        self.failures -= 1
        return _BreakingWriter(inner)


class _BreakingWriter(BackendWriter):
    def __init__(self, inner: BackendWriter) -> None:
        super().__init__(inner.key)
        self.inner = inner

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(bytes(data)[: len(data) // 2])  # half the file reaches the store
        raise StoreUnavailable("connection reset")

    def _commit(self) -> None:
        self.inner.commit()

    def _abort(self) -> None:
        self.inner.abort()


def test_a_crash_mid_write_leaves_no_partial_file(tmp_path: Path) -> None:
    backend = FailingBackend(tmp_path, failures=1)
    writer = PredictionLogWriter(backend, deployment="d", flush_interval_s=3600)
    for i in range(5):
        writer.record(rec(i))
    writer.flush(timeout=10)
    assert (writer.logged, writer.dropped, writer.write_errors) == (0, 5, 1)
    assert keys(backend) == []  # nothing half-written is visible
    assert list(tmp_path.rglob("*.parquet")) == []
    for i in range(5, 8):  # the writer goes on after the failure
        writer.record(rec(i))
    writer.close()
    assert writer.logged == 3
    assert sorted(r["request_id"] for r in log_rows(backend)) == ["r5", "r6", "r7"]


def test_a_killed_process_leaves_no_partial_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = f"""
import os, threading
from keel.artifacts import LocalBackend
from keel.serving._predlog import PredictionLogWriter, PredictionRow
class Dying(LocalBackend):
    def open_writer(self, key):
        w = super().open_writer(key)
        real = w._write
        def die(data):
            real(bytes(data)[: len(data) // 2])
            os._exit(9)
        w._write = die
        return w
writer = PredictionLogWriter(Dying({str(tmp_path)!r}), deployment="d")
writer.record(PredictionRow("r1", 1, {{"x": 1}}, {{"y": 2}}, 0.1))
writer.flush(timeout=10)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 9, proc.stderr
    assert keys(LocalBackend(tmp_path)) == []
    assert list(tmp_path.rglob("*.parquet")) == []


def test_sampling_is_stable_and_near_its_rate(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d", sample_rate=0.25)
    kept = [writer.record(rec(i)) for i in range(4000)]
    writer.close()
    assert 800 < sum(kept) < 1200
    assert writer.sampled_out == 4000 - sum(kept) and writer.dropped == 0
    assert writer.logged == sum(kept)
    assert all(sampled(f"r{i}", 0.25) == kept[i] for i in range(4000))  # same ids, same choice
    nothing = PredictionLogWriter(backend, deployment="e", sample_rate=0.0)
    assert not nothing.record(rec(1))
    nothing.close()


def test_excluded_columns_are_never_written(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d", exclude_columns=("ssn", "output.proba"))
    writer.record(rec(1, email="a@b.c"))
    writer.close()
    (row,) = log_rows(backend)
    assert "input.ssn" not in row and "output.proba" not in row
    assert row["input.email"] == "a@b.c" and row["output.y"] == 1
    for path in tmp_path.rglob("*.parquet"):
        assert b"000-1" not in path.read_bytes()


def test_mixed_value_types_are_kept_as_json_text(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d")
    writer.record(rec(1, extra=1))
    writer.record(rec(2, extra="two"))
    writer.close()
    values = sorted(str(r["input.extra"]) for r in log_rows(backend))
    assert values == ['"two"', "1"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"deployment": "../x"}, "deployment"),
        ({"batch_rows": 0}, "batch_rows"),
        ({"max_buffer": 5, "batch_rows": 10}, "max_buffer"),
        ({"flush_interval_s": 0}, "flush_interval_s"),
        ({"sample_rate": 1.5}, "sample_rate"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"deployment": "d", **kwargs}
    with pytest.raises(InvalidInput) as info:
        PredictionLogWriter(LocalBackend(tmp_path), **values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_serving_apps_request_records_become_rows(tmp_path: Path) -> None:
    import numpy as np

    from keel.serving._payload import Inputs
    from keel.serving._record import PredictionRecord

    table_request = PredictionRecord(
        request_id="q1",
        model="churn",
        version="3",
        route="/invocations",
        inputs=Inputs(
            rows=3, columns={"age": np.array([30, 40, 50]), "plan": np.array(["a", "b", "c"])}
        ),
        outputs=np.array([0, 1, 1]),
        latency_ms=4.0,
        timestamp_ms=T0,
    )
    tensor_request = PredictionRecord(
        request_id="q2",
        model="net",
        version="1",
        route="/v2/models/net/infer",
        inputs=Inputs(rows=2, tensor=np.zeros((2, 3), dtype=np.float32)),
        outputs=np.array([[0.1, 0.9], [0.8, 0.2]]),
        latency_ms=2.0,
        timestamp_ms=T0,
    )
    backend = LocalBackend(tmp_path)
    writer = PredictionLogWriter(backend, deployment="d", max_buffer=4, batch_rows=4)
    assert writer(table_request)  # the writer is the app's on_prediction hook
    assert not writer(tensor_request)  # 3 + 2 rows > max_buffer=4: dropped, counted in rows
    assert writer.dropped == 2
    writer.flush(timeout=10)
    assert writer(tensor_request)
    writer.close()
    assert writer.logged == 5
    rows = sorted(log_rows(backend), key=lambda r: (str(r["request_id"]), int(r["row"])))  # type: ignore[call-overload]
    assert [(r["request_id"], r["row"]) for r in rows] == [
        ("q1", 0), ("q1", 1), ("q1", 2), ("q2", 0), ("q2", 1),
    ]  # fmt: skip
    assert (rows[1]["input.age"], rows[1]["input.plan"], rows[1]["output.prediction"]) == (
        40,
        "b",
        1,
    )
    assert rows[1]["model_version"] == "3" and rows[1]["model"] == "churn"
    assert rows[4]["input.tensor"] == [0.0, 0.0, 0.0]
    assert rows[4]["output.prediction"] == [0.8, 0.2]


def test_a_failed_upload_on_s3_leaves_no_partial_object(s3_env: str) -> None:
    from keel.artifacts._s3 import S3Backend

    class FailingS3(S3Backend):
        failures = 1

        def open_writer(self, key: str) -> BackendWriter:
            inner = super().open_writer(key)
            if self.failures <= 0:
                return inner
            self.failures -= 1
            return _BreakingWriter(inner)

    base = open_backend(s3_env)
    assert isinstance(base, S3Backend)
    backend = FailingS3(base.uri)
    writer = PredictionLogWriter(backend, deployment="d", flush_interval_s=3600)
    writer.record(rec(1))
    writer.flush(timeout=30)
    assert (writer.dropped, writer.write_errors) == (1, 1)
    assert keys(backend) == []
    writer.record(rec(2))
    writer.close()
    assert [r["request_id"] for r in log_rows(backend)] == ["r2"]
    backend.close()
    base.close()
