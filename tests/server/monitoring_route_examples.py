"""Example requests for the monitoring and alert routes, for the route x role matrix
(``server_route_examples.py`` merges ``EXAMPLES`` from here).

Targets are made directly in the server's stores: a stored result by a real monitor run over an
(empty) window of the server's prediction log, schedules, rules, channels, and open alerts
raised by the real evaluation of a rule. Stores are opened once per database and never closed
here: they share the engine the server's state disposes at the end of the test.
"""

from __future__ import annotations

from typing import Any

from server_route_examples import Builder, Ctx, Example

P = "/api/v1/monitoring"
_stores: dict[str, Any] = {}
_reports: dict[str, str] = {}


def stores(ctx: Ctx) -> Any:
    """``(monitor store, alert store, feedback store)`` on the server's database."""
    from keel.monitoring._alert_sql import SqlAlertStore
    from keel.monitoring._feedback import SqlFeedbackStore
    from keel.monitoring._monitor_sql import SqlMonitorStore

    uri = ctx.state.tracking_uri
    if uri not in _stores:
        _stores[uri] = (SqlMonitorStore(uri), SqlAlertStore(uri), SqlFeedbackStore(uri))
    return _stores[uri]


def _deployment_with_result(ctx: Ctx) -> str:
    """A deployment with one stored ``ok`` result (a real run over an empty window)."""
    from keel.monitoring._monitor import run_monitor

    uri = ctx.state.tracking_uri
    if uri not in _reports:
        monitors, _, feedback = stores(ctx)
        name = ctx.unique("mon")
        run_monitor(
            name,
            window="1h",
            reference="log:1h",
            store=monitors,
            backend=ctx.state.content.backend,
            feedback_store=feedback,
            uri=uri,
            evaluate_alerts=False,
        )
        _reports[uri] = name
    return _reports[uri]


def _result_id(ctx: Ctx) -> str:
    monitors = stores(ctx)[0]
    return str(monitors.list_results(_deployment_with_result(ctx), limit=1)[0].id)


def _schedule(ctx: Ctx) -> str:
    name = ctx.unique("sched")
    stores(ctx)[0].set_schedule(name, every_ms=3_600_000, options={}, first_due_ms=0)
    return name


def _rule(ctx: Ctx, deployment: str = "*") -> str:
    from keel.monitoring._alerts_rules import make_rule

    name = ctx.unique("rule")
    rule = make_rule(
        name, quantity="drift.share", operator=">", threshold=0.1, deployment=deployment
    )
    stores(ctx)[1].put_rule(rule)
    return name


def _channel(ctx: Ctx) -> str:
    from keel.monitoring._channels import make_channel

    name = ctx.unique("chan")
    # .invalid never resolves (RFC 2606): a test send fails at once and leaves no machine.
    config = {
        "url": "https://hooks.keel.invalid/x",
        "secret_env": "KEEL_MATRIX_SECRET",
        "attempts": 1,
    }
    stores(ctx)[1].put_channel(make_channel(name, "webhook", config))
    return name


def open_alert(ctx: Ctx) -> int:
    """A fresh open alert: a rule on a new deployment, and a result that breaches it."""
    from keel.monitoring._alerts import evaluate
    from keel.monitoring._quantities import Quantity

    deployment = ctx.unique("alerting")
    _rule(ctx, deployment)
    events = evaluate(
        stores(ctx)[1],
        deployment,
        None,
        {"drift.share": Quantity(0.5, 100)},
        window_ms=86_400_000,
        at_ms=_now(),
    )
    return int(events[0].alert_id)


def _now() -> int:
    from keel._time import now_ms

    return now_ms()


EXAMPLES: dict[tuple[str, str], Builder] = {
    ("GET", f"{P}/deployments/{{deployment}}/results"): lambda ctx, c: Example(
        "GET", f"{P}/deployments/{_deployment_with_result(ctx)}/results"
    ),
    ("GET", f"{P}/results/{{result_id}}"): lambda ctx, c: Example(
        "GET", f"{P}/results/{_result_id(ctx)}"
    ),
    ("GET", f"{P}/latest"): lambda ctx, c: Example("GET", f"{P}/latest"),
    ("POST", f"{P}/deployments/{{deployment}}/run"): lambda ctx, c: Example(
        "POST",
        f"{P}/deployments/{ctx.unique('run')}/run",
        json={"window": "1h", "reference": "log:1h"},
    ),
    ("GET", f"{P}/deployments/{{deployment}}/report"): lambda ctx, c: Example(
        "GET", f"{P}/deployments/{_deployment_with_result(ctx)}/report"
    ),
    ("GET", f"{P}/schedules"): lambda ctx, c: Example("GET", f"{P}/schedules"),
    ("PUT", f"{P}/schedules/{{deployment}}"): lambda ctx, c: Example(
        "PUT", f"{P}/schedules/{ctx.unique('sched')}", json={"every": "1h"}
    ),
    ("DELETE", f"{P}/schedules/{{deployment}}"): lambda ctx, c: Example(
        "DELETE", f"{P}/schedules/{_schedule(ctx)}"
    ),
    ("GET", f"{P}/metrics"): lambda ctx, c: Example("GET", f"{P}/metrics"),
    ("GET", f"{P}/alert-rules"): lambda ctx, c: Example("GET", f"{P}/alert-rules"),
    ("POST", f"{P}/alert-rules"): lambda ctx, c: Example(
        "POST",
        f"{P}/alert-rules",
        json={
            "name": ctx.unique("rule"),
            "quantity": "drift.share",
            "operator": ">",
            "threshold": 0.3,
        },
    ),
    ("PATCH", f"{P}/alert-rules/{{name}}"): lambda ctx, c: Example(
        "PATCH", f"{P}/alert-rules/{_rule(ctx)}", json={"enabled": False}
    ),
    ("DELETE", f"{P}/alert-rules/{{name}}"): lambda ctx, c: Example(
        "DELETE", f"{P}/alert-rules/{_rule(ctx)}"
    ),
    ("GET", f"{P}/alert-channels"): lambda ctx, c: Example("GET", f"{P}/alert-channels"),
    ("POST", f"{P}/alert-channels"): lambda ctx, c: Example(
        "POST",
        f"{P}/alert-channels",
        json={
            "name": ctx.unique("chan"),
            "kind": "webhook",
            "config": {"url": "https://hooks.keel.invalid/x", "secret_env": "KEEL_SECRET"},
        },
    ),
    ("DELETE", f"{P}/alert-channels/{{name}}"): lambda ctx, c: Example(
        "DELETE", f"{P}/alert-channels/{_channel(ctx)}"
    ),
    # The sample goes to a .invalid name: the answer is 200 with ok: false.
    ("POST", f"{P}/alert-channels/{{name}}/test"): lambda ctx, c: Example(
        "POST", f"{P}/alert-channels/{_channel(ctx)}/test"
    ),
    ("GET", f"{P}/alerts"): lambda ctx, c: Example("GET", f"{P}/alerts", params={"state": "open"}),
    ("GET", f"{P}/alerts/{{alert_id}}"): lambda ctx, c: Example(
        "GET", f"{P}/alerts/{open_alert(ctx)}"
    ),
    ("POST", f"{P}/alerts/{{alert_id}}/ack"): lambda ctx, c: Example(
        "POST", f"{P}/alerts/{open_alert(ctx)}/ack", json={"note": "looking"}
    ),
    ("GET", f"{P}/alert-events"): lambda ctx, c: Example(
        "GET", f"{P}/alert-events", params={"since_id": 0, "limit": 10}
    ),
}
