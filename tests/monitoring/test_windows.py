"""Windows of the prediction log: parsing the text users write, buckets, and reading a window
(by time or by its newest N rows) from a log written by the real writer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.artifacts import LocalBackend
from keel.errors import InvalidInput
from keel.monitoring import Window, parse_window, read_window, split_buckets
from keel.monitoring._feedback import SqlFeedbackStore
from keel.monitoring._windows import parse_duration, window_of
from keel.serving._predlog import PredictionLogWriter, PredictionRow

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR  # an hour boundary in 2026


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "length"),
    [("24h", 24 * HOUR), ("90m", 90 * 60_000), ("7d", 7 * 24 * HOUR), ("2h30m", 150 * 60_000),
     ("45s", 45_000), ("1w", 7 * 24 * HOUR), (" 2H ", 2 * HOUR)],
)  # fmt: skip
def test_durations_count_back_from_now(text: str, length: int) -> None:
    assert parse_window(text, now_ms=T0) == Window(T0 - length, T0)
    assert parse_duration(text) == length


def test_explicit_ranges_are_iso_and_naive_means_utc() -> None:
    w = parse_window("2026-11-01T00:00..2026-11-02T00:00")
    assert (w.start_ms, w.end_ms) == (ms("2026-11-01T00:00"), ms("2026-11-02T00:00"))
    aware = parse_window("2026-11-01T01:00+01:00..2026-11-01T02:00Z")
    assert aware == Window(ms("2026-11-01T00:00"), ms("2026-11-01T02:00"))
    assert parse_window(w) is w
    assert w.to_dict()["start"] == "2026-11-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "text",
    ["", "24", "h", "24x", "-1h", "0h", "1.5h", "yesterday", "2026-11-02..2026-11-01",
     "2026-11-01..", "..2026-11-01", "2026-13-01..2026-11-02", "2026-11-01..2026-11-01"],
)  # fmt: skip
def test_bad_windows_name_the_field_and_the_fix(text: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_window(text, now_ms=T0)
    assert err.value.field == "window"
    assert any(hint in str(err.value) for hint in ("24h", "START..END", "earlier", "zero"))


def test_buckets_are_aligned_to_the_epoch_and_clipped() -> None:
    w = Window(T0 + 30 * 60_000, T0 + 3 * HOUR + 15 * 60_000)
    got = split_buckets(w, "1h")
    assert [(b.start_ms - T0, b.end_ms - T0) for b in got] == [
        (30 * 60_000, HOUR),
        (HOUR, 2 * HOUR),
        (2 * HOUR, 3 * HOUR),
        (3 * HOUR, 3 * HOUR + 15 * 60_000),
    ]
    assert split_buckets(Window(T0, T0 + HOUR), 15 * 60_000)[1] == Window(
        T0 + 15 * 60_000, T0 + 30 * 60_000
    )
    with pytest.raises(InvalidInput) as err:
        split_buckets(Window(T0, T0 + 365 * 24 * HOUR), "1m")
    assert err.value.field == "every"


def _log(backend: LocalBackend, times: list[int]) -> None:
    with PredictionLogWriter(backend, deployment="d", batch_rows=10_000) as writer:
        for i, t in enumerate(times):
            writer.record(
                PredictionRow(f"r{i}", 1, {"x": float(i)}, {"prediction": i % 2}, 2.0,
                              timestamp_ms=t)
            )  # fmt: skip


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


@pytest.fixture
def store(sqlite_url: str) -> SqlFeedbackStore:
    return SqlFeedbackStore(sqlite_url)


def test_read_window_by_time_records_the_window(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    # 30 requests, one every 10 minutes over 5 hours, in 6 hour folders
    _log(backend, [T0 + i * 600_000 for i in range(30)])
    store.add("d", "r29", 1)
    end = T0 + 30 * 600_000
    table = read_window("d", "2h", now_ms=end, backend=backend, feedback_store=store)
    assert table.column("request_id").to_pylist() == [f"r{i}" for i in range(18, 30)]
    assert window_of(table) == Window(end - 2 * HOUR, end)
    assert table.column("label").to_pylist()[-1] == 1
    bare = read_window("d", Window(T0, T0 + HOUR), backend=backend, with_feedback=False)
    assert bare.num_rows == 6
    assert "label" not in bare.column_names


def test_last_rows_walks_back_through_hour_folders(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    _log(backend, [T0 + i * 600_000 for i in range(30)])
    end = T0 + 30 * 600_000
    table = read_window("d", last_rows=14, now_ms=end, backend=backend, feedback_store=store)
    # the newest 14 rows span three hour folders; older rows are not kept
    assert table.column("request_id").to_pylist() == [f"r{i}" for i in range(16, 30)]
    assert window_of(table) == Window(T0 + 16 * 600_000, end)
    # rows at or after now_ms are not counted: the 5 newest rows lie past this now
    earlier = read_window(
        "d", last_rows=4, now_ms=T0 + 25 * 600_000, backend=backend, feedback_store=store
    )
    assert earlier.column("request_id").to_pylist() == ["r21", "r22", "r23", "r24"]
    # asking for more rows than exist returns them all
    everything = read_window("d", last_rows=1000, now_ms=end, backend=backend,
                             feedback_store=store)  # fmt: skip
    assert everything.num_rows == 30


def test_last_rows_of_an_empty_log_is_an_empty_table(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    table = read_window("d", last_rows=5, now_ms=T0, backend=backend, feedback_store=store)
    assert table.num_rows == 0
    assert {"request_id", "label", "timestamp"} <= set(table.column_names)


@pytest.mark.parametrize(
    ("window", "kwargs", "field"),
    [
        (None, {}, "window"),
        ("24h", {"last_rows": 3}, "window"),
        (None, {"last_rows": 0}, "last_rows"),
        (None, {"last_rows": True}, "last_rows"),
        ("24x", {}, "window"),
    ],
)
def test_read_window_rejects_bad_arguments(
    backend: LocalBackend, window: str | None, kwargs: dict[str, int], field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        read_window("d", window, backend=backend, now_ms=T0, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
