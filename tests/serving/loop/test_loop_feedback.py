"""Feedback on SQLite and PostgreSQL: single, bulk from files, late labels, corrections,
unknown request ids, all-or-nothing batches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.errors import InvalidInput, LimitExceeded, NotFound
from keel.monitoring._feedback import (
    SqlFeedbackStore,
    feedback,
    handle_feedback,
    read_feedback_file,
    upload_feedback,
)


@pytest.fixture
def store(db_url: str) -> SqlFeedbackStore:
    return SqlFeedbackStore(db_url)


def test_single_label_and_unknown_request_ids_are_accepted(store: SqlFeedbackStore) -> None:
    got = store.add("d", "never-logged", 1, at=1_000)
    assert (got.label, got.label_ms, got.updates) == (1, 1_000, 1)
    assert store.get("d", "never-logged") == got
    with pytest.raises(NotFound):
        store.get("other", "never-logged")  # labels belong to one deployment


def test_latest_label_wins_by_its_time(store: SqlFeedbackStore) -> None:
    store.add("d", "r1", "cat", at=datetime(2026, 1, 1, tzinfo=UTC))
    corrected = store.add("d", "r1", "dog", at=datetime(2026, 1, 8, tzinfo=UTC))
    assert (corrected.label, corrected.updates) == ("dog", 2)
    # A late-arriving older label (weeks later, about an earlier time) does not overwrite it.
    result = store.add_many("d", [("r1", "bird", datetime(2026, 1, 2))])
    assert result.to_dict() == {"received": 1, "applied": 0, "stale": 1}
    assert store.get("d", "r1").label == "dog"
    # Same time: the later arrival wins.
    store.add("d", "r1", "eel", at=datetime(2026, 1, 8, tzinfo=UTC))
    assert store.get("d", "r1").label == "eel"


def test_duplicates_inside_one_batch_keep_the_latest(store: SqlFeedbackStore) -> None:
    result = store.add_many("d", [("r1", 0, 5), ("r1", 1, 9), ("r1", 2, 7), ("r2", 1.5, None)])
    assert (result.received, result.applied, result.stale) == (4, 2, 2)
    assert store.get("d", "r1").label == 1
    assert store.get("d", "r2").label == 1.5


def test_a_bad_row_rejects_the_whole_batch(store: SqlFeedbackStore) -> None:
    with pytest.raises(InvalidInput) as info:
        store.add_many("d", [("r1", 1, None), ("r2", None, None)])
    assert info.value.field == "rows[1].label"
    with pytest.raises(InvalidInput) as info:
        store.add_many("d", [("r1", 1, "yesterday")])
    assert info.value.field == "rows[0].timestamp"
    with pytest.raises(InvalidInput) as info:
        store.add_many("d", [("x" * 129, 1, None)])
    assert info.value.field == "rows[0].request_id"
    with pytest.raises(InvalidInput) as info:
        store.add("../d", "r1", 1)
    assert info.value.field == "deployment"
    assert store.list("d") == []


def test_bulk_upload_from_csv_and_parquet(db_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    lines = ["request_id,label,timestamp"]
    lines += [f"{i:05d},{i % 2},2026-03-01T10:00:00+00:00" for i in range(1200)]
    csv.write_text("\n".join(lines) + "\n")
    result = upload_feedback("d", csv, uri=db_url)
    assert (result.received, result.applied) == (1200, 1200)
    store = SqlFeedbackStore(db_url)
    got = store.get("d", "00007")  # leading zeros survive: ids are read as text
    assert got.label == 1 and got.label_ms == int(
        datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp() * 1000
    )
    parquet = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": ["00007", "new"], "label": [0, 1]}), parquet)
    assert upload_feedback("d", parquet, uri=db_url).applied == 2  # no timestamp: now
    assert store.get("d", "00007").label == 0
    assert len(store.list("d")) == 1201
    assert [f.request_id for f in store.list("d", request_ids=["new", "zzz"])] == ["new"]


def test_bad_files_say_what_is_wrong(tmp_path: Path, sqlite_url: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,y\n1,2\n")
    with pytest.raises(InvalidInput) as info:
        read_feedback_file(bad)
    assert "request_id" in str(info.value) and info.value.field == "path"
    with pytest.raises(NotFound):
        upload_feedback("d", tmp_path / "missing.csv", uri=sqlite_url)


def test_python_api_uses_the_configured_store(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_TRACKING_URI", sqlite_url)
    reset_settings()
    got = feedback("d", "r1", True)
    assert got.label is True
    assert SqlFeedbackStore(sqlite_url).get("d", "r1").label is True


def test_route_handler_single_and_batch(store: SqlFeedbackStore) -> None:
    one = handle_feedback(store, {"deployment": "d", "request_id": "r1", "label": 3})
    assert one == {"deployment": "d", "received": 1, "applied": 1, "stale": 0}
    many = handle_feedback(
        store,
        {"deployment": "d", "items": [{"request_id": f"b{i}", "label": i} for i in range(5)]},
    )
    assert many["applied"] == 5
    for body, field in [
        ([], "body"),
        ({"request_id": "r", "label": 1}, "deployment"),
        ({"deployment": "d", "items": []}, "items"),
        ({"deployment": "d", "items": [1]}, "items[0]"),
        ({"deployment": "d", "request_id": "r"}, "rows[0].label"),
        ({"deployment": "d", "request_id": 5, "label": 1}, "rows[0].request_id"),
    ]:
        with pytest.raises(InvalidInput) as info:
            handle_feedback(store, body)
        assert info.value.field == field
    with pytest.raises(LimitExceeded):
        handle_feedback(
            store, {"deployment": "d", "items": [{"request_id": "x", "label": 1}] * 10_001}
        )


def test_concurrent_writers_keep_the_latest_label(store: SqlFeedbackStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ids = [f"r{i}" for i in range(40)]

    def send(t: int) -> int:
        return store.add_many("d", [(rid, t, 1_000 + t) for rid in ids]).applied

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(12)))  # the same new ids, racing, with different times
    labels = {f.request_id: (f.label, f.label_ms) for f in store.list("d")}
    assert labels == {rid: (11, 1_011) for rid in ids}
