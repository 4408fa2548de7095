"""``keel alerts``: alert rules on monitored quantities, notification channels, open alerts,
acknowledgement and the alert history (see ``docs/alerts.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.monitoring._alerts_records import Alert, AlertEvent, Delivery
    from keel.monitoring._alerts_rules import AlertRule
    from keel.monitoring._channels import Channel, SendResult

app = typer.Typer(
    help="Alerts: rules on monitored quantities, channels, open alerts and their history.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Alert rules: thresholds on monitored quantities.", no_args_is_help=True
)
channels_app = typer.Typer(
    help="Notification channels: webhook (signed), Slack-compatible webhook, e-mail.",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")
app.add_typer(channels_app, name="channels")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _api() -> Any:
    from keel.monitoring import _alerts

    return _alerts


def _rule_row(r: AlertRule) -> list[Any]:
    from keel.monitoring._alerts_rules import format_duration, window_text

    source = "db" if r.source == "db" else "keel.toml"
    return [
        r.name,
        r.deployment,
        f"{r.quantity} {r.operator} {r.threshold:g}",
        window_text(r.window_ms),
        r.min_samples,
        r.severity,
        format_duration(r.cooldown_ms),
        ", ".join(r.channels),
        "yes" if r.enabled else "no",
        source,
    ]


_RULE_COLUMNS = ["name", "deployment", "condition", "window", "min n", "severity", "cooldown",
                 "channels", "enabled", "source"]  # fmt: skip


@rules_app.command("add")
def rules_add(  # noqa: PLR0917 - Typer passes every option positionally
    name: Annotated[str, typer.Argument(help="Unique rule name.")],
    quantity: Annotated[
        str,
        typer.Option("--quantity", "-q", help="Quantity name or glob, e.g. drift.column.*"),
    ],
    op: Annotated[str, typer.Option("--op", help="> >= < <= (or gt ge lt le).")],
    threshold: Annotated[float, typer.Option("--threshold", "-t", help="The threshold.")],
    deployment: Annotated[
        str, typer.Option("--deployment", "-d", help="Deployment, or * for all.")
    ] = "*",
    window: Annotated[
        str, typer.Option("--window", help="Monitor window the rule reads (e.g. 24h), or 'any'.")
    ] = "24h",
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Fewer samples: neither fire nor resolve.")
    ] = 1,
    severity: Annotated[str, typer.Option("--severity", help="info, warning or critical.")] = (
        "warning"
    ),
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="Channel to notify (repeatable).")
    ] = None,
    cooldown: Annotated[
        str, typer.Option("--cooldown", help="Least time between re-notifications.")
    ] = "1h",
    disabled: Annotated[bool, typer.Option("--disabled", help="Store it disabled.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a rule of that name.")] = (
        False
    ),
    as_json: JsonOpt = False,
) -> None:
    """Add an alert rule (stored in the metadata database)."""
    rule = _api().add_rule(
        name,
        quantity=quantity,
        operator=_OPS.get(op, op),
        threshold=threshold,
        deployment=deployment,
        window=window,
        min_samples=min_samples,
        severity=severity,
        channels=channel or [],
        cooldown=cooldown,
        enabled=not disabled,
        replace=replace,
    )
    if as_json:
        print_json(rule.to_dict())
    else:
        console.print(f"Rule [bold]{rule.name}[/]: {rule.condition} on {rule.deployment}")


@rules_app.command("ls")
def rules_ls(as_json: JsonOpt = False) -> None:
    """List alert rules: stored ones and those declared in keel.toml."""
    rules = _api().list_rules()
    if as_json:
        print_json([r.to_dict() for r in rules])
        return
    table("Alert rules", _RULE_COLUMNS, [_rule_row(r) for r in rules])


@rules_app.command("rm")
def rules_rm(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Remove a stored rule; its unresolved alerts are resolved (without notification)."""
    closed = _api().remove_rule(name)
    console.print(
        f"Removed rule [bold]{name}[/]" + (f"; resolved {closed} alert(s)" if closed else "")
    )


@rules_app.command("enable")
def rules_enable(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Enable a stored rule."""
    _api().enable_rule(name, True)
    console.print(f"Enabled rule [bold]{name}[/]")


@rules_app.command("disable")
def rules_disable(name: Annotated[str, typer.Argument(help="Rule name.")]) -> None:
    """Disable a stored rule (its open alerts stay as they are until it is enabled again)."""
    _api().enable_rule(name, False)
    console.print(f"Disabled rule [bold]{name}[/]")


@channels_app.command("add")
def channels_add(  # noqa: PLR0917 - Typer passes every option positionally
    name: Annotated[str, typer.Argument(help="Unique channel name.")],
    kind: Annotated[str, typer.Option("--kind", "-k", help="webhook, slack or email.")],
    url: Annotated[str | None, typer.Option("--url", help="Webhook URL (https).")] = None,
    url_env: Annotated[
        str | None, typer.Option("--url-env", help="Env var holding the URL (Slack: required).")
    ] = None,
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Env var holding the webhook HMAC secret.")
    ] = None,
    allow_http: Annotated[
        bool, typer.Option("--allow-http", help="Admin opt-in: allow plain http:// (tests).")
    ] = False,
    allow_private: Annotated[
        bool,
        typer.Option("--allow-private", help="Admin opt-in: allow loopback/private addresses."),
    ] = False,
    host: Annotated[str | None, typer.Option("--host", help="E-mail: SMTP server.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="E-mail: SMTP port.")] = None,
    sender: Annotated[str | None, typer.Option("--sender", help="E-mail: From address.")] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="E-mail: recipient (repeatable).")
    ] = None,
    starttls: Annotated[
        str | None, typer.Option("--starttls", help="E-mail: auto, required or off.")
    ] = None,
    use_ssl: Annotated[bool, typer.Option("--ssl", help="E-mail: implicit TLS (SMTPS).")] = False,
    username_env: Annotated[
        str | None, typer.Option("--username-env", help="E-mail: env var with the SMTP user.")
    ] = None,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="E-mail: env var with the password.")
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option("--timeout-s", help="Timeout per attempt (seconds).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a channel of that name.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a notification channel. Secrets are never stored: name the environment variables
    that hold them (--secret-env, --url-env, --password-env)."""
    values: dict[str, Any] = {
        "url": url,
        "url_env": url_env,
        "secret_env": secret_env,
        "host": host,
        "port": port,
        "sender": sender,
        "to": to or None,
        "starttls": starttls,
        "username_env": username_env,
        "password_env": password_env,
        "timeout_s": timeout_s,
    }
    config = {k: v for k, v in values.items() if v is not None}
    for key, flag in (("allow_http", allow_http), ("allow_private", allow_private),
                      ("ssl", use_ssl)):  # fmt: skip
        if flag:
            config[key] = True
    channel = _api().add_channel(name, kind, config, replace=replace)
    if as_json:
        print_json(channel.to_dict())
    else:
        console.print(f"Channel [bold]{channel.name}[/] ({channel.kind}) → {channel.target}")


def _channel_row(c: Channel) -> list[Any]:
    opts = [k for k in ("allow_http", "allow_private") if c.config.get(k)]
    secret = c.config.get("secret_env") or c.config.get("password_env")
    return [c.name, c.kind, c.target, f"${secret}" if secret else "", ", ".join(opts)]


@channels_app.command("ls")
def channels_ls(as_json: JsonOpt = False) -> None:
    """List notification channels."""
    channels = _api().list_channels()
    if as_json:
        print_json([c.to_dict() for c in channels])
        return
    table("Alert channels", ["name", "kind", "target", "secret", "allows"],
          [_channel_row(c) for c in channels])  # fmt: skip


@channels_app.command("rm")
def channels_rm(name: Annotated[str, typer.Argument(help="Channel name.")]) -> None:
    """Remove a channel no stored rule uses."""
    _api().remove_channel(name)
    console.print(f"Removed channel [bold]{name}[/]")


@channels_app.command("test")
def channels_test(
    name: Annotated[str, typer.Argument(help="Channel name.")], as_json: JsonOpt = False
) -> None:
    """Send a sample notification now (exit code 1 if it was not delivered)."""
    result: SendResult = _api().try_channel(name)
    if as_json:
        print_json({"channel": name, "ok": result.ok, "attempts": result.attempts,
                    "http_status": result.http_status, "error": result.error})  # fmt: skip
    elif result.ok:
        console.print(f"Delivered a test notification on [bold]{name}[/]")
    if not result.ok:
        if not as_json:
            from keel.cli._output import fail

            fail(
                f"not delivered on {name!r}: {result.error}",
                hint="check the URL or host, and the env vars the channel names, in this shell",
            )
        raise typer.Exit(1)


def _alert_row(a: Alert) -> list[Any]:
    from keel._time import format_ms

    return [a.id, a.state, a.severity, a.deployment, a.rule, a.condition, a.value, a.n,
            format_ms(a.opened_ms), format_ms(a.resolved_ms), a.acked_by]  # fmt: skip


@app.command("ls")
def alerts_ls(
    state: Annotated[
        str | None, typer.Option("--state", help="open, acked or resolved (default: all).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this deployment.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first."""
    alerts = _api().list_alerts(state=state, deployment=deployment, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in alerts])
        return
    columns = ["id", "state", "severity", "deployment", "rule", "condition", "value", "n",
               "opened", "resolved", "acked by"]  # fmt: skip
    table("Alerts", columns, [_alert_row(a) for a in alerts])


@app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `keel alerts ls`).")],
    note: Annotated[str | None, typer.Option("--note", help="Why, for the history.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge an open alert: no more notifications until it resolves."""
    event: AlertEvent = _api().ack_alert(alert_id, note=note)
    if as_json:
        print_json(event.to_dict())
    else:
        console.print(f"Acknowledged alert {alert_id} as {event.actor}")


@app.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `keel alerts ls`).")],
    as_json: JsonOpt = False,
) -> None:
    """One alert with its events and the delivery of each notification."""
    api = _api()
    alert = api.get_alert(alert_id)
    events = api.list_alert_events(alert_id=alert_id, limit=10_000)
    deliveries = api.list_deliveries(alert_id)
    if as_json:
        print_json({"alert": alert.to_dict(), "events": [e.to_dict() for e in events],
                    "deliveries": [d.to_dict() for d in deliveries]})  # fmt: skip
        return
    _print_alert(alert, events, deliveries)


@app.command("redeliver")
def alerts_redeliver(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `keel alerts ls`).")],
    as_json: JsonOpt = False,
) -> None:
    """Send again the notifications of an alert that were not delivered."""
    deliveries = _api().redeliver(alert_id)
    if as_json:
        print_json([d.to_dict() for d in deliveries])
        return
    _deliveries_table(deliveries)
    if any(d.status != "delivered" for d in deliveries):
        from keel.cli._output import fail

        fail("some notifications are still not delivered", hint="see the error column")


def _print_alert(alert: Alert, events: list[AlertEvent], deliveries: list[Delivery]) -> None:
    from keel._time import format_ms

    console.print(
        f"Alert [bold]{alert.id}[/] ({alert.state}, {alert.severity}): {alert.deployment} "
        f"{alert.condition} [rule {alert.rule}]\n"
        f"latest value {alert.value} (n={alert.n}), opened {format_ms(alert.opened_ms)}"
        + (f", resolved {format_ms(alert.resolved_ms)}" if alert.resolved_ms else "")
        + (f", acked by {alert.acked_by}: {alert.ack_note or ''}" if alert.acked_by else ""),
        highlight=False,
    )
    rows = [[e.id, format_ms(e.at_ms), e.kind, e.value, e.n, e.actor or "", e.note or ""]
            for e in events]  # fmt: skip
    table("Events", ["event", "at", "kind", "value", "n", "by", "note"], rows)
    _deliveries_table(deliveries)


def _deliveries_table(deliveries: list[Delivery]) -> None:
    rows = [[d.event_id, d.channel, d.status, d.attempts, d.http_status, d.error or ""]
            for d in deliveries]  # fmt: skip
    table("Deliveries", ["event", "channel", "status", "attempts", "http", "error"], rows)


@app.command("history")
def alerts_history(
    since_id: Annotated[
        int, typer.Option("--since-id", help="Only events after this event id.")
    ] = 0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 100,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this deployment.")
    ] = None,
    alert_id: Annotated[int | None, typer.Option("--alert", help="Only this alert.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Alert events (fired, repeated, acked, resolved) in the order they happened."""
    from keel._time import format_ms

    events = _api().list_alert_events(
        since_id=since_id, limit=limit, deployment=deployment, alert_id=alert_id
    )
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    rows = [[e.id, format_ms(e.at_ms), e.kind, e.alert_id, e.deployment, e.rule, e.quantity,
             e.value, e.n, e.actor or "", e.note or ""] for e in events]  # fmt: skip
    table("Alert history", ["event", "at", "kind", "alert", "deployment", "rule", "quantity",
                            "value", "n", "by", "note"], rows)  # fmt: skip
