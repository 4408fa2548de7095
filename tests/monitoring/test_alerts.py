"""Alert evaluation on SQLite and PostgreSQL: fire above the threshold and not below, nothing
with too few samples, one open alert per key, cooldown, resolution, acknowledgement, window and
deployment matching, events in order for subscribers, deliveries recorded."""

from __future__ import annotations

import pytest

from keel.errors import Conflict, NotFound
from keel.monitoring._alert_sql import SqlAlertStore
from keel.monitoring._alerts import (
    ack_alert,
    add_channel,
    add_rule,
    evaluate,
    evaluate_result,
    list_alert_events,
    list_alerts,
    list_deliveries,
    remove_rule,
)
from keel.monitoring._quantities import Quantity

from .alert_support import receiver

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_800_000_000_000


def q(value: float | None, n: int = 1000) -> dict[str, Quantity]:
    return {"drift.share": Quantity(value, n), "requests": Quantity(5000.0, 5000)}


@pytest.fixture
def store(db_url: str) -> SqlAlertStore:
    add_rule(
        "drift",
        quantity="drift.share",
        operator=">",
        threshold=0.3,
        deployment="churn",
        window="24h",
        min_samples=100,
        cooldown="1h",
        uri=db_url,
    )
    return SqlAlertStore(db_url)


def run(store: SqlAlertStore, value: float | None, at: int, *, n: int = 1000, window: int = DAY):
    return evaluate(store, "churn", f"r{at}", q(value, n), window_ms=window, at_ms=at)


def test_fires_above_the_threshold_not_below_and_not_on_too_few_samples(
    store: SqlAlertStore,
) -> None:
    assert run(store, 0.3, T0) == []  # equal is not above
    assert run(store, 0.9, T0 + 1, n=99) == []  # n below min_samples: insufficient
    assert run(store, None, T0 + 2) == []  # no value: insufficient
    events = run(store, 0.31, T0 + 3)
    assert [(e.kind, e.quantity, e.value, e.n, e.result_id) for e in events] == [
        ("fired", "drift.share", 0.31, 1000, f"r{T0 + 3}")
    ]
    [alert] = store.list_alerts()
    assert (alert.state, alert.rule, alert.deployment, alert.condition) == (
        "open",
        "drift",
        "churn",
        "drift.share > 0.3",
    )


def test_one_open_alert_while_firing_and_renotified_only_after_the_cooldown(
    store: SqlAlertStore,
) -> None:
    assert [e.kind for e in run(store, 0.5, T0)] == ["fired"]
    assert run(store, 0.6, T0 + HOUR - 1) == []  # de-duplicated, inside the cooldown
    [alert] = store.list_alerts()
    assert (alert.value, alert.result_id) == (0.6, f"r{T0 + HOUR - 1}")  # value kept current
    assert [e.kind for e in run(store, 0.7, T0 + HOUR)] == ["repeated"]
    assert run(store, 0.7, T0 + HOUR + 1) == []  # the cooldown restarts at the repeat
    assert len(store.list_alerts()) == 1


def test_insufficient_data_does_not_resolve_and_a_clear_value_does(store: SqlAlertStore) -> None:
    run(store, 0.5, T0)
    assert run(store, 0.0, T0 + 1, n=5) == []  # too few samples to say it cleared
    assert run(store, None, T0 + 2) == []
    assert store.list_alerts()[0].state == "open"
    [resolved] = run(store, 0.1, T0 + 3)
    assert (resolved.kind, resolved.value) == ("resolved", 0.1)
    [alert] = store.list_alerts()
    assert (alert.state, alert.resolved_ms) == ("resolved", T0 + 3)
    # A new breach after resolution is a new incident.
    assert [e.kind for e in run(store, 0.5, T0 + 4)] == ["fired"]
    assert [a.state for a in store.list_alerts()] == ["open", "resolved"]


def test_ack_silences_until_resolution(store: SqlAlertStore, db_url: str) -> None:
    run(store, 0.5, T0)
    alert_id = store.list_alerts()[0].id
    acked = ack_alert(alert_id, by="alice", note="looking", uri=db_url)
    assert (acked.kind, acked.actor, acked.note) == ("acked", "alice", "looking")
    with pytest.raises(Conflict):
        ack_alert(alert_id, by="bob", uri=db_url)
    with pytest.raises(NotFound):
        ack_alert(alert_id + 100, uri=db_url)
    assert run(store, 0.9, T0 + 5 * HOUR) == []  # still firing, silenced past the cooldown
    alert = store.get_alert(alert_id)
    assert (alert.state, alert.value, alert.acked_by) == ("acked", 0.9, "alice")
    assert [e.kind for e in run(store, 0.0, T0 + 6 * HOUR)] == ["resolved"]
    assert list_alerts(state="acked", uri=db_url) == []
    assert [a.id for a in list_alerts(state="resolved", uri=db_url)] == [alert_id]


def test_rules_match_their_window_deployment_and_quantity_glob(db_url: str) -> None:
    add_rule("cols", quantity="drift.column.*", operator=">=", threshold=0.2, uri=db_url)
    add_rule("lat", quantity="latency.p99_ms", operator=">", threshold=100, window="1h",
             deployment="other", uri=db_url)  # fmt: skip
    store = SqlAlertStore(db_url)
    quantities = {
        "drift.column.age": Quantity(0.25, 500),
        "drift.column.income": Quantity(0.1, 500),
        "drift.share": Quantity(0.9, 500),
        "latency.p99_ms": Quantity(500.0, 500),
    }
    events = evaluate(store, "churn", "r1", quantities, window_ms=DAY, at_ms=T0)
    assert [(e.rule, e.quantity) for e in events] == [("cols", "drift.column.age")]
    # The same numbers over a 1h window: "cols" reads 24h results only; "lat" watches "other".
    assert evaluate(store, "churn", "r2", quantities, window_ms=HOUR, at_ms=T0) == []
    events = evaluate(store, "other", "r3", quantities, window_ms=HOUR, at_ms=T0)
    assert [(e.rule, e.deployment) for e in events] == [("lat", "other")]


def test_events_are_polled_in_order_by_a_subscriber(store: SqlAlertStore, db_url: str) -> None:
    run(store, 0.5, T0)
    run(store, 0.5, T0 + HOUR)
    seen = list_alert_events(uri=db_url)
    assert [e.kind for e in seen] == ["fired", "repeated"]
    assert list_alert_events(since_id=seen[-1].id, uri=db_url) == []
    run(store, 0.0, T0 + 2 * HOUR)
    new = list_alert_events(since_id=seen[-1].id, uri=db_url)
    assert [e.kind for e in new] == ["resolved"]
    assert new[0].id > seen[-1].id
    assert [e.kind for e in list_alert_events(limit=1, uri=db_url)] == ["fired"]


def test_removing_a_rule_resolves_its_alerts_without_notifying(
    store: SqlAlertStore, db_url: str
) -> None:
    run(store, 0.5, T0)
    assert remove_rule("drift", uri=db_url) == 1
    last = list_alert_events(uri=db_url)[-1]
    assert (last.kind, last.note) == ("resolved", "rule removed")
    assert store.list_alerts()[0].state == "resolved"
    assert run(store, 0.9, T0 + 1) == []  # no rule, no alert


def test_evaluate_result_records_deliveries_on_the_rules_channels(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_TEST_ALERT_SECRET", "s3cret")
    with receiver((200, {})) as hook:
        add_channel(
            "hook",
            "webhook",
            {"url": hook.url, "secret_env": "KEEL_TEST_ALERT_SECRET", "allow_http": True,
             "allow_private": True},
            uri=db_url,
        )  # fmt: skip
        add_channel(
            "dead",
            "webhook",
            {"url": "http://127.0.0.1:9/x", "secret_env": "KEEL_TEST_ALERT_SECRET",
             "allow_http": True, "attempts": 1},
            uri=db_url,
        )  # fmt: skip
        add_rule("drift", quantity="drift.share", operator=">", threshold=0.3,
                 channels=["hook", "dead"], uri=db_url)  # fmt: skip
        [fired] = evaluate_result("churn", "r1", q(0.5), window_ms=DAY, at_ms=T0, uri=db_url)
        assert len(hook.requests) == 1
        deliveries = {d.channel: d for d in list_deliveries(fired.alert_id, uri=db_url)}
        assert (deliveries["hook"].status, deliveries["hook"].http_status) == ("delivered", 200)
        assert deliveries["hook"].attempts == 1
        # "dead" is on loopback without allow_private: refused, recorded, never raised.
        assert deliveries["dead"].status == "failed"
        assert "loopback" in (deliveries["dead"].error or "")
        # Resolution is notified too.
        evaluate_result("churn", "r2", q(0.0), window_ms=DAY, at_ms=T0 + 1, uri=db_url)
        assert len(hook.requests) == 2
        assert b'"kind":"resolved"' in hook.requests[1].body


def test_one_notification_for_two_breaching_results_inside_the_cooldown(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_TEST_ALERT_SECRET", "s3cret")
    with receiver((200, {})) as hook:
        add_channel("hook", "webhook", {"url": hook.url, "secret_env": "KEEL_TEST_ALERT_SECRET",
                    "allow_http": True, "allow_private": True}, uri=db_url)  # fmt: skip
        add_rule("drift", quantity="drift.share", operator=">", threshold=0.3, cooldown="1h",
                 channels=["hook"], uri=db_url)  # fmt: skip
        evaluate_result("churn", "r1", q(0.5), window_ms=DAY, at_ms=T0, uri=db_url)
        evaluate_result("churn", "r2", q(0.6), window_ms=DAY, at_ms=T0 + 60_000, uri=db_url)
        assert len(hook.requests) == 1
        assert len(list_alerts(state="open", uri=db_url)) == 1
        evaluate_result("churn", "r3", q(0.6), window_ms=DAY, at_ms=T0 + HOUR, uri=db_url)
        assert len(hook.requests) == 2


def test_failed_deliveries_are_sent_again_on_redeliver(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.monitoring._alerts import redeliver

    monkeypatch.setenv("KEEL_TEST_ALERT_SECRET", "s3cret")
    with receiver((503, {})) as hook:
        config = {"url": hook.url, "secret_env": "KEEL_TEST_ALERT_SECRET", "allow_http": True,
                  "allow_private": True, "attempts": 2}  # fmt: skip
        add_channel("hook", "webhook", config, uri=db_url)
        add_rule("drift", quantity="drift.share", operator=">", threshold=0.3,
                 channels=["hook"], uri=db_url)  # fmt: skip
        [fired] = evaluate_result("churn", "r1", q(0.5), window_ms=DAY, at_ms=T0, uri=db_url)
        [failed] = list_deliveries(fired.alert_id, uri=db_url)
        assert (failed.status, failed.attempts, failed.http_status) == ("failed", 2, 503)
        hook.script = [(503, {}), (503, {}), (200, {})]  # the receiver is back
        [done] = redeliver(fired.alert_id, uri=db_url)
        assert (done.id, done.status, done.attempts, done.http_status) == (
            failed.id,
            "delivered",
            3,
            200,
        )
        assert redeliver(fired.alert_id, uri=db_url) == [done]  # nothing left to send
        assert len(hook.requests) == 3
