"""End to end: a real prediction log and delayed labels, monitor runs, and drift and
performance alerts delivered, signed, to a local webhook receiver; then resolved when the
traffic is calm again."""

from __future__ import annotations

import json

import pytest

from keel.monitoring._alerts import add_channel, add_rule, list_alert_events, list_alerts
from keel.monitoring._channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from keel.monitoring._monitor import run_monitor

from .alert_support import receiver
from .monitor_support import HOUR_MS, NOW_MS, label, register_model, send

DAY = 24 * HOUR_MS
SECRET = "e2e-secret"


def test_drift_and_performance_alerts_reach_a_webhook_and_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEEL_TEST_E2E_SECRET", SECRET)
    register_model()
    calm = send("churn", rows=800, start_ms=NOW_MS - DAY, end_ms=NOW_MS, seed=1)
    label("churn", calm)
    # Day two: inputs shifted and 40 % of the true labels disagree with the model.
    shifted = send("churn", rows=800, start_ms=NOW_MS, end_ms=NOW_MS + DAY, shift=1.0,
                   seed=2, prefix="s", flip=0.4)  # fmt: skip
    label("churn", shifted)
    # Day three: back to calm, model right again.
    again = send("churn", rows=800, start_ms=NOW_MS + DAY, end_ms=NOW_MS + 2 * DAY, seed=3,
                 prefix="t")  # fmt: skip
    label("churn", again)

    with receiver() as hook:
        add_channel("ops", "webhook", {"url": hook.url, "secret_env": "KEEL_TEST_E2E_SECRET",
                    "allow_http": True, "allow_private": True})  # fmt: skip
        add_rule("drift", deployment="churn", quantity="drift.share", operator=">=",
                 threshold=0.5, min_samples=100, channels=["ops"])  # fmt: skip
        add_rule("accuracy", deployment="churn", quantity="performance.accuracy",
                 operator="<", threshold=0.8, min_samples=100, channels=["ops"])  # fmt: skip

        first = run_monitor("churn", now_ms=NOW_MS)
        assert first.alerts == () and hook.requests == []

        second = run_monitor("churn", now_ms=NOW_MS + DAY)
        assert sorted((a.rule, a.kind) for a in second.alerts) == [
            ("accuracy", "fired"),
            ("drift", "fired"),
        ]
        assert len(hook.requests) == 2
        for request in hook.requests:
            assert verify_signature(SECRET.encode(), request.body,
                                    request.headers[TIMESTAMP_HEADER],
                                    request.headers[SIGNATURE_HEADER])  # fmt: skip
        bodies = {json.loads(r.body)["alert"]["rule"]: json.loads(r.body) for r in hook.requests}
        assert bodies["drift"]["alert"]["value"] == pytest.approx(2 / 3)
        assert bodies["accuracy"]["alert"]["value"] < 0.8
        assert bodies["accuracy"]["alert"]["n"] == 800

        third = run_monitor("churn", now_ms=NOW_MS + 2 * DAY)
        assert sorted((a.rule, a.kind) for a in third.alerts) == [
            ("accuracy", "resolved"),
            ("drift", "resolved"),
        ]
        assert len(hook.requests) == 4
        assert {json.loads(r.body)["event"]["kind"] for r in hook.requests[2:]} == {"resolved"}

    assert list_alerts(state="open") == []
    assert [e.kind for e in list_alert_events()] == ["fired", "fired", "resolved", "resolved"]
