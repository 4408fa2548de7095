"""run_monitor on a real prediction log: drift against the champion's training data from
lineage (shifted traffic drifts, unshifted does not), log-window references with prediction
drift, degenerate windows, and every result stored as history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.monitoring._monitor import monitor_history, run_monitor
from keel.monitoring._monitor_sql import open_monitor_store
from keel.monitoring._quantities import Quantity
from keel.monitoring._reference import ReferenceProfile
from monitoring.monitor_support import HOUR_MS, NOW_MS, label, register_model, send, training_frame

DAY = 24 * HOUR_MS


def _results_ids(alerts: tuple[object, ...]) -> set[str | None]:
    return {getattr(a, "result_id", None) for a in alerts}


@pytest.fixture
def two_days() -> str:
    """A registered model, a day of unshifted traffic, then a day with x and z shifted."""
    ref = register_model()
    calm = send("churn", rows=800, start_ms=NOW_MS - DAY, end_ms=NOW_MS, seed=1)
    label("churn", calm, share=0.5)
    send("churn", rows=800, start_ms=NOW_MS, end_ms=NOW_MS + DAY, shift=1.0, seed=2, prefix="s")
    return ref


def test_shifted_inputs_drift_and_unshifted_do_not(two_days: str) -> None:
    calm = run_monitor("churn", now_ms=NOW_MS)
    assert calm.reference.kind == "dataset" and calm.reference.source == two_days
    assert calm.drift is not None and calm.rows == 800
    assert calm.drift.drifted_columns == () and not calm.drift.dataset_drift
    # Half the calm day was labelled, all correctly: performance over those rows only.
    q = calm.quantities()
    assert q["label_coverage"] == Quantity(0.5, 800)
    assert q["performance.accuracy"] == Quantity(1.0, 400)
    assert calm.summary["performance"] == {"metric": "accuracy", "value": 1.0, "n": 400}
    shifted = run_monitor("churn", window="24h", now_ms=NOW_MS + DAY)
    assert shifted.drift is not None
    assert set(shifted.drift.drifted_columns) == {"x", "z"}  # c was not shifted
    assert shifted.drift.dataset_drift
    q = shifted.quantities()
    assert q["drift.share"].value == pytest.approx(2 / 3) and q["drift.share"].n == 800
    assert q["drift.column.x"].value is not None and q["drift.column.x"].n == 800
    assert q["requests"].value == 800 and q["latency.p99_ms"].value == pytest.approx(5.0)
    summary = shifted.summary
    assert summary["drift_share"] == pytest.approx(2 / 3)
    assert [c["column"] for c in summary["top_drifted"]] == ["x", "z"]
    assert summary["latency_p99_ms"] == pytest.approx(5.0) and summary["error_rate"] == 0.0
    # The label column of the training data is not an input: it is not tested.
    assert {c.column for c in shifted.drift.columns} == {"x", "z", "c"}
    # A dataset has no outputs: prediction drift is explained, not faked.
    assert shifted.prediction_drift == ()
    assert any("no prediction drift" in n for n in shifted.notes)
    doc = shifted.to_dict()
    json.dumps(doc, allow_nan=False)  # JSON-safe
    assert set(doc["distributions"]) == {"x", "z", "c"}
    x = doc["distributions"]["x"]
    assert len(x["reference"]) == len(x["current"]) == len(x["edges"]) - 1
    assert sum(x["reference"]) + sum(x["reference_outside"]) == 3_000
    assert sum(x["current"]) + sum(x["current_outside"]) == 800


def test_results_are_stored_and_listed_in_order(two_days: str) -> None:
    first = run_monitor("churn", now_ms=NOW_MS)
    second = run_monitor("churn", now_ms=NOW_MS + DAY)
    third = run_monitor("churn", now_ms=NOW_MS + DAY + HOUR_MS, window="2h")
    history = monitor_history("churn")
    assert [h.id for h in history] == [third.id, second.id, first.id]
    assert history[1].summary == second.summary | {"alerts": 0}
    assert history[1].quantities == second.quantities()
    assert history[1].window_start_ms == NOW_MS and history[1].window_end_ms == NOW_MS + DAY
    assert [h.id for h in monitor_history("churn", limit=1)] == [third.id]
    store = open_monitor_store()
    try:
        stored = store.get_result(second.id).result
    finally:
        store.close()
    assert stored == second.to_dict(alerts=False)
    with pytest.raises(InvalidInput):
        monitor_history("churn", limit=0)


def test_log_window_reference_gives_prediction_drift(two_days: str) -> None:
    # The previous day of the log as reference: inputs and the model's outputs drift.
    result = run_monitor("churn", now_ms=NOW_MS + DAY, reference="log:24h")
    assert result.reference.kind == "log"
    assert result.reference.window is not None
    assert result.reference.window.end_ms == NOW_MS
    assert result.drift is not None and set(result.drift.drifted_columns) == {"x", "z"}
    assert [c.column for c in result.prediction_drift] == ["output.prediction"]
    assert result.prediction_drift[0].drifted  # x > 0 became far more common
    assert "prediction_drift.prediction" in result.quantities()
    # Same range written as durations back from now, and as ISO times.
    same = run_monitor("churn", now_ms=NOW_MS + DAY, reference="log:48h..24h")
    assert same.reference.window == result.reference.window
    # A quiet reference period gives no drift: the day before against itself split in two.
    calm = run_monitor("churn", now_ms=NOW_MS, window="12h", reference="log:12h")
    assert calm.drift is not None and calm.drift.drifted_columns == ()
    assert not calm.prediction_drift[0].drifted


def test_explicit_references(two_days: str, tmp_path: Path) -> None:
    by_ref = run_monitor("churn", now_ms=NOW_MS + DAY, reference=f"dataset:{two_days}")
    assert by_ref.drift is not None and set(by_ref.drift.drifted_columns) == {"x", "z"}
    profile = ReferenceProfile.from_frame(training_frame(seed=5), source="saved")
    path = tmp_path / "ref.json"
    path.write_text(profile.to_json())
    by_file = run_monitor("churn", now_ms=NOW_MS + DAY, reference=str(path))
    assert by_file.reference.source == "saved"
    assert by_file.drift is not None and set(by_file.drift.drifted_columns) == {"x", "z"}
    with pytest.raises(InvalidInput) as info:
        run_monitor("churn", now_ms=NOW_MS, reference="log:yesterday")
    assert info.value.field == "reference"
    with pytest.raises(InvalidInput) as info:
        run_monitor("churn", now_ms=NOW_MS, reference=str(tmp_path / "missing.json"))
    assert info.value.field == "reference"


def test_degenerate_windows_are_reported_not_crashed(two_days: str) -> None:
    empty = run_monitor("churn", now_ms=NOW_MS - 5 * DAY)
    assert empty.rows == 0 and empty.drift is None
    assert any("no drift" in n for n in empty.notes)
    q = empty.quantities()
    assert q["requests"].value == 0 and q["latency.p99_ms"].value is None
    json.dumps(empty.to_dict(), allow_nan=False)
    # No model in the registry for this deployment: drift is skipped with the reason.
    send("other", rows=20, start_ms=NOW_MS - HOUR_MS, end_ms=NOW_MS, model="ghost")
    lost = run_monitor("other", now_ms=NOW_MS)
    assert lost.drift is None and "not in the registry" in lost.notes[0]
    single = run_monitor("churn", last_rows=1, now_ms=NOW_MS)
    assert single.rows == 1 and single.drift is not None
    assert {c.status for c in single.drift.columns} == {"insufficient_data"}
    with pytest.raises(InvalidInput):
        run_monitor("churn", window="24h", last_rows=10)
    with pytest.raises(InvalidInput):
        run_monitor("../x")


def test_quantities_go_to_the_alert_rules(two_days: str) -> None:
    from keel.monitoring._alerts import add_rule, list_alert_events

    add_rule("drifting", quantity="drift.share", operator=">=", threshold=0.5, window="24h")
    add_rule("slow", quantity="latency.p99_ms", operator=">", threshold=100, window="24h")
    calm = run_monitor("churn", now_ms=NOW_MS)
    assert calm.alerts == ()
    shifted = run_monitor("churn", now_ms=NOW_MS + DAY)
    assert [(a.rule, a.kind, a.quantity) for a in shifted.alerts] == [
        ("drifting", "fired", "drift.share")
    ]
    assert _results_ids(shifted.alerts) == {shifted.id}
    assert shifted.summary["alerts"] == 1
    assert shifted.to_dict()["alerts"][0]["rule"] == "drifting"
    assert [e.id for e in list_alert_events()] == [a.id for a in shifted.alerts]
    # A rule reads only results over its own window length.
    other = run_monitor("churn", now_ms=NOW_MS + DAY, window="12h")
    assert other.alerts == ()
