"""read_predictions: time range, hour pruning, the feedback join (checked against a plain
Python join), pandas output, S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.artifacts import LocalBackend
from keel.errors import InvalidInput
from keel.monitoring._feedback import SqlFeedbackStore
from keel.monitoring._predlog import partition_keys, read_predictions
from keel.serving._predlog import PredictionLogWriter, PredictionRow

HOUR_MS = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS - 2 * HOUR_MS  # 22:00 the day before


def write_log(backend: LocalBackend, n: int = 600, deployment: str = "d") -> None:
    # 600 requests a minute apart over 10 hours (crossing midnight); the challenger shadows
    # every third one under the same request id.
    with PredictionLogWriter(backend, deployment=deployment, batch_rows=64) as writer:
        for i in range(n):
            at = T0 + i * 60_000
            writer.record(PredictionRow(f"r{i}", 1, {"x": i}, {"y": i % 3}, 2.0, timestamp_ms=at))
            if i % 3 == 0:
                writer.record(
                    PredictionRow(
                        f"r{i}", 2, {"x": i}, {"y": 0}, 3.0, role="challenger", timestamp_ms=at
                    )
                )


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    b = LocalBackend(tmp_path / "store")
    write_log(b)
    write_log(b, n=50, deployment="other")
    return b


def test_range_and_join_match_a_plain_python_join(backend: LocalBackend, db_url: str) -> None:
    store = SqlFeedbackStore(db_url)
    labels = {f"r{i}": i % 2 for i in range(0, 600, 7)}
    store.add_many("d", [(k, v, None) for k, v in labels.items()])
    store.add("other", "r1", 99)  # another deployment's label must not leak in
    start, end = T0 + 90 * 60_000, T0 + 400 * 60_000  # 23:30 .. 04:40 next day
    table = read_predictions("d", start=start, end=end, backend=backend, feedback_store=store)
    rows = table.to_pylist()
    expected_ids = [i for i in range(90, 400)]
    expected = sum(2 if i % 3 == 0 else 1 for i in expected_ids)
    assert len(rows) == expected
    for row in rows:
        i = int(str(row["request_id"])[1:])
        assert 90 <= i < 400
        assert row["label"] == labels.get(f"r{i}")
        assert (row["label_timestamp"] is None) == (f"r{i}" not in labels)
    times = [row["timestamp"] for row in rows]
    assert times == sorted(times)
    roles = {(row["request_id"], row["role"]) for row in rows}
    assert ("r90", "challenger") in roles and ("r90", "champion") in roles
    assert table.column_names[:8] == [
        "request_id", "deployment", "model", "model_version", "role", "timestamp", "latency_ms",
        "row",
    ]  # fmt: skip
    assert {"input.x", "output.y", "label", "label_timestamp"} <= set(table.column_names)


def test_only_hours_in_range_are_opened(backend: LocalBackend) -> None:
    every = partition_keys(backend, "d", T0 - HOUR_MS, T0 + 12 * HOUR_MS)
    some = partition_keys(backend, "d", T0 + 3 * HOUR_MS, T0 + 5 * HOUR_MS)
    assert len({tuple(k.split("/")[2:4]) for k in every}) == 10  # 10 hours
    assert {k.split("/")[3] for k in some} == {
        f"hour={((T0 // HOUR_MS) + h) % 24:02d}" for h in (3, 4)
    }


def test_without_feedback_and_as_pandas(backend: LocalBackend) -> None:
    frame = read_predictions(
        "d", start=T0, end=T0 + HOUR_MS, backend=backend, with_feedback=False, as_="pandas"
    )
    assert len(frame) == 60 + 20
    assert "label" not in frame.columns
    assert frame["input.x"].max() == 59


def test_empty_range_and_bad_arguments(backend: LocalBackend, sqlite_url: str) -> None:
    store = SqlFeedbackStore(sqlite_url)
    empty = read_predictions(
        "d", start=T0 - 10 * HOUR_MS, end=T0 - 9 * HOUR_MS, backend=backend, feedback_store=store
    )
    assert empty.num_rows == 0 and "label" in empty.column_names
    assert read_predictions("nobody", start=T0, end=T0 + 1, backend=backend).num_rows == 0
    with pytest.raises(InvalidInput) as info:
        read_predictions("d", start=T0, end=T0, backend=backend)
    assert info.value.field == "end"
    with pytest.raises(InvalidInput) as info:
        read_predictions("d/../x", start=T0, end=T0 + 1, backend=backend)
    assert info.value.field == "deployment"
    with pytest.raises(InvalidInput) as info:
        read_predictions("d", start=T0, end=T0 + 1, backend=backend, as_="polars")  # type: ignore[arg-type]
    assert info.value.field == "as_"


def test_default_stores_and_iso_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel import _time
    from keel.artifacts import open_backend
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_ARTIFACTS_URI", str(tmp_path / "art"))
    reset_settings()
    backend = open_backend()
    assert isinstance(backend, LocalBackend)
    write_log(backend, n=10)
    from keel.monitoring._feedback import feedback

    feedback("d", "r3", "yes")
    start = _time.to_datetime(T0).isoformat()
    table = read_predictions("d", start=start, end=T0 + HOUR_MS)
    assert table.num_rows == 10 + 4
    assert {r["label"] for r in table.to_pylist() if r["request_id"] == "r3"} == {"yes"}
