"""Alerts: rules on monitored quantities, judged on every stored monitoring result, with
de-duplication, cooldown, acknowledgement, resolution, history, and notifications (see
``docs/alerts.md``).

``evaluate_result`` is what a monitor run calls after storing a result. For each enabled rule
(stored, or declared in ``keel.toml``) that watches the deployment, the window length and a
quantity of the result:

* a quantity without a value, or with ``n`` below the rule's ``min_samples``, is
  *insufficient*: the alert neither fires nor resolves;
* a breach opens an alert (event ``fired``, notified) unless one is open for (rule,
  deployment, quantity); then the alert records the new value and is notified again
  (``repeated``) only when the cooldown has passed since its last notification, and never
  while acknowledged;
* no breach resolves the open or acknowledged alert (event ``resolved``, notified).

Events are stored before any notification is attempted; each (event, channel) delivery is
recorded (``pending`` then ``delivered`` or ``failed`` with attempts and error), and a failing
channel never fails the evaluation. ``list_alert_events(since_id=...)`` returns events in the
order they were committed, for subscribers such as the retraining loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from keel import _time
from keel.errors import InvalidInput, NotFound
from keel.monitoring._alert_sql import Check, Notice, SqlAlertStore
from keel.monitoring._alerts_records import STATES, Alert, AlertEvent, Delivery
from keel.monitoring._alerts_rules import AlertRule, load_file_rules, make_rule
from keel.monitoring._channels import Channel, SendResult, make_channel, send
from keel.monitoring._quantities import Quantity

_DELIVERY_THREADS = 4


def open_alert_store(uri: str | None = None) -> SqlAlertStore:
    """The alert store at ``uri`` (default: the ``tracking_uri`` setting)."""
    from keel.config import get_settings, normalize_tracking_uri

    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    return SqlAlertStore(normal)


def all_rules(store: SqlAlertStore, *, rules_file: str | None = None) -> list[AlertRule]:
    """The stored rules and those of ``keel.toml``, by name; a name in both is an error."""
    stored = store.list_rules()
    declared = load_file_rules(rules_file)
    taken = {r.name for r in stored}
    for i, rule in enumerate(declared):
        if rule.name in taken:
            raise InvalidInput(
                f"rule {rule.name!r} is declared in {rule.source} and stored in the database; "
                "rename one (or `keel alerts rules rm` the stored one)",
                field=f"monitoring.alerts[{i}].name",
            )
    return sorted([*stored, *declared], key=lambda r: r.name)


def judge(
    rules: Sequence[AlertRule],
    deployment: str,
    quantities: Mapping[str, Quantity],
    *,
    window_ms: int,
) -> list[Check]:
    """The (rule, quantity) pairs a result can decide: watched, with a value and enough ``n``."""
    checks = []
    for rule in rules:
        for name, observed in quantities.items():
            if not rule.watches(deployment, name, window_ms):
                continue
            if observed.value is None or observed.n < rule.min_samples:
                continue  # insufficient: neither fires nor resolves
            checks.append(Check(rule, name, observed, rule.breached(observed.value)))
    return checks


def evaluate(
    store: SqlAlertStore,
    deployment: str,
    result_id: str | int | None,
    quantities: Mapping[str, Quantity],
    *,
    window_ms: int,
    at_ms: int,
    rules: Sequence[AlertRule] | None = None,
) -> list[AlertEvent]:
    """``evaluate_result`` on an open store (and optionally given rules)."""
    from keel._names import checked_name

    checked_name(deployment, field="deployment", max_length=128)
    chosen = all_rules(store) if rules is None else rules
    checks = judge(chosen, deployment, quantities, window_ms=window_ms)
    notices = store.apply(
        deployment,
        checks,
        result_id=None if result_id is None else str(result_id),
        at_ms=at_ms,
    )
    deliver(store, notices)
    return [n.event for n in notices]


def evaluate_result(
    deployment: str,
    result_id: str | int | None,
    quantities: Mapping[str, Quantity],
    *,
    window_ms: int,
    at_ms: int,
    uri: str | None = None,
) -> list[AlertEvent]:
    """Judge a stored monitoring result's ``quantities`` (computed over ``window_ms`` ending at
    ``at_ms``) against every alert rule; returns the events it recorded (see the module)."""
    store = open_alert_store(uri)
    try:
        return evaluate(store, deployment, result_id, quantities, window_ms=window_ms, at_ms=at_ms)
    finally:
        store.close()


def deliver(store: SqlAlertStore, notices: Sequence[Notice]) -> None:
    """Send each notice on its channels (a few at a time) and record every outcome."""
    jobs = [(n, delivery_id, name) for n in notices for delivery_id, name in n.deliveries]
    if not jobs:
        return
    channels: dict[str, Channel | None] = {}
    for _, _, name in jobs:
        if name not in channels:
            try:
                channels[name] = store.get_channel(name)
            except NotFound:
                channels[name] = None

    def one(job: tuple[Notice, int, str]) -> None:
        notice, delivery_id, name = job
        channel = channels[name]
        if channel is None:
            result = SendResult(
                False, 0, None, f"no alert channel {name!r}; add it or fix the rule"
            )
        else:
            result = send(channel, notice.event, notice.alert)
        store.finish_delivery(
            delivery_id,
            ok=result.ok,
            attempts=result.attempts,
            http_status=result.http_status,
            error=result.error,
        )

    with ThreadPoolExecutor(min(_DELIVERY_THREADS, len(jobs))) as pool:
        list(pool.map(one, jobs))


# -- the Python API the CLI (and later the server) calls ----------------------------------------


def _with_store(uri: str | None, work: Any) -> Any:
    store = open_alert_store(uri)
    try:
        return work(store)
    finally:
        store.close()


def add_rule(
    name: str,
    *,
    quantity: str,
    operator: str,
    threshold: float,
    deployment: str = "*",
    window: str | int = "24h",
    min_samples: int = 1,
    severity: str = "warning",
    channels: Sequence[str] = (),
    cooldown: str | int = "1h",
    enabled: bool = True,
    replace: bool = False,
    uri: str | None = None,
) -> AlertRule:
    """Store an alert rule (fields in ``keel.monitoring._alerts_rules``); its channels must
    exist."""
    rule = make_rule(
        name,
        quantity=quantity,
        operator=operator,
        threshold=threshold,
        deployment=deployment,
        window=window,
        min_samples=min_samples,
        severity=severity,
        channels=channels,
        cooldown=cooldown,
        enabled=enabled,
    )

    result: AlertRule = _with_store(
        uri,
        lambda store: put_rule_checked(
            store,
            rule,
            replace=replace,
            add_channel="add it first with `keel alerts channels add`",
            toml="keel.toml",
        ),
    )
    return result


def put_rule_checked(
    store: SqlAlertStore, rule: AlertRule, *, replace: bool, add_channel: str, toml: str
) -> AlertRule:
    """Store ``rule`` once its channels exist and no ``keel.toml`` rule has its name; the
    errors tell how to ``add_channel`` and name the ``toml`` file (CLI and server differ)."""
    known = {c.name for c in store.list_channels()}
    for i, channel in enumerate(rule.channels):
        if channel not in known:
            raise InvalidInput(
                f"no alert channel {channel!r}; {add_channel}", field=f"channels[{i}]"
            )
    if any(r.name == rule.name for r in load_file_rules()):
        raise InvalidInput(
            f"rule {rule.name!r} is declared in {toml}; choose another name", field="name"
        )
    return store.put_rule(rule, replace=replace)


def list_rules(*, uri: str | None = None) -> list[AlertRule]:
    """Stored rules and those declared in ``keel.toml`` (``source`` tells which)."""
    result: list[AlertRule] = _with_store(uri, all_rules)
    return result


def remove_rule(name: str, *, uri: str | None = None) -> int:
    """Delete a stored rule; its unresolved alerts are resolved. Returns how many."""
    result: int = _with_store(uri, lambda s: s.remove_rule(name))
    return result


def enable_rule(name: str, enabled: bool = True, *, uri: str | None = None) -> AlertRule:
    result: AlertRule = _with_store(uri, lambda s: s.set_rule_enabled(name, enabled))
    return result


def add_channel(
    name: str,
    kind: str,
    config: Mapping[str, Any],
    *,
    replace: bool = False,
    uri: str | None = None,
) -> Channel:
    """Store a notification channel (kinds and settings in ``keel.monitoring._channels``)."""
    channel = make_channel(name, kind, config)
    result: Channel = _with_store(uri, lambda s: s.put_channel(channel, replace=replace))
    return result


def list_channels(*, uri: str | None = None) -> list[Channel]:
    result: list[Channel] = _with_store(uri, lambda s: s.list_channels())
    return result


def remove_channel(name: str, *, uri: str | None = None) -> None:
    _with_store(uri, lambda s: s.remove_channel(name))


def sample_notification(note: str) -> tuple[AlertEvent, Alert]:
    """A notification for trying a channel: alert 0 of rule ``keel-test``, fired now."""
    now = _time.now_ms()
    alert = Alert(
        id=0,
        rule="keel-test",
        deployment="test",
        quantity="drift.share",
        state="open",
        severity="info",
        operator=">",
        threshold=0.5,
        window_ms=86_400_000,
        value=0.75,
        n=1000,
        result_id=None,
        opened_ms=now,
        updated_ms=now,
        notified_ms=now,
        acked_ms=None,
        acked_by=None,
        ack_note=note,
        resolved_ms=None,
    )
    event = AlertEvent(
        id=0,
        alert_id=0,
        kind="fired",
        rule=alert.rule,
        deployment=alert.deployment,
        quantity=alert.quantity,
        severity=alert.severity,
        value=alert.value,
        n=alert.n,
        result_id=None,
        at_ms=now,
        created_ms=now,
    )
    return event, alert


def try_channel(name: str, *, uri: str | None = None) -> SendResult:
    """Send a sample notification on a channel now; nothing is recorded."""
    channel: Channel = _with_store(uri, lambda s: s.get_channel(name))
    event, alert = sample_notification("a test notification from `keel alerts channels test`")
    return send(channel, event, alert)


def list_alerts(
    *,
    state: str | None = None,
    deployment: str | None = None,
    limit: int = 100,
    uri: str | None = None,
) -> list[Alert]:
    """Alerts, newest first; ``state`` one of open, acked, resolved."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"must be one of {', '.join(STATES)}", field="state")
    result: list[Alert] = _with_store(
        uri, lambda s: s.list_alerts(state=state, deployment=deployment, limit=limit)
    )
    return result


def ack_alert(
    alert_id: int, *, by: str | None = None, note: str | None = None, uri: str | None = None
) -> AlertEvent:
    """Acknowledge an open alert: silenced until it resolves."""
    if note is not None and len(note) > 2000:
        raise InvalidInput("at most 2000 characters", field="note")
    actor = by or _user()
    result: AlertEvent = _with_store(uri, lambda s: s.ack(alert_id, actor=actor, note=note))
    return result


def list_alert_events(
    *,
    since_id: int = 0,
    limit: int = 100,
    deployment: str | None = None,
    alert_id: int | None = None,
    uri: str | None = None,
) -> list[AlertEvent]:
    """Events with ``id > since_id`` in commit order: a subscriber keeps the last id it saw
    and polls again with it."""
    if since_id < 0 or not 1 <= limit <= 10_000:
        raise InvalidInput("since_id >= 0 and 1 <= limit <= 10000", field="since_id")
    result: list[AlertEvent] = _with_store(
        uri,
        lambda s: s.list_events(
            since_id=since_id, limit=limit, deployment=deployment, alert_id=alert_id
        ),
    )
    return result


def get_alert(alert_id: int, *, uri: str | None = None) -> Alert:
    result: Alert = _with_store(uri, lambda s: s.get_alert(alert_id))
    return result


def list_deliveries(alert_id: int, *, uri: str | None = None) -> list[Delivery]:
    result: list[Delivery] = _with_store(uri, lambda s: s.list_deliveries(alert_id=alert_id))
    return result


def redeliver(alert_id: int, *, uri: str | None = None) -> list[Delivery]:
    """Send again every delivery of the alert's events that is not ``delivered`` (a receiver
    that was down, a secret that was missing); returns the alert's deliveries afterwards. The
    event is sent as recorded, with the alert as it is now."""

    def work(store: SqlAlertStore) -> list[Delivery]:
        alert = store.get_alert(alert_id)
        events = {e.id: e for e in store.list_events(alert_id=alert_id, limit=10_000)}
        pending: dict[int, list[tuple[int, str]]] = {}
        for d in store.list_deliveries(alert_id=alert_id):
            if d.status != "delivered":
                pending.setdefault(d.event_id, []).append((d.id, d.channel))
        deliver(store, [Notice(events[i], alert, tuple(ds)) for i, ds in pending.items()])
        return store.list_deliveries(alert_id=alert_id)

    result: list[Delivery] = _with_store(uri, work)
    return result


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "local"
