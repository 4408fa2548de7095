"""Alerts over HTTP: rules, channels, alerts with their events and deliveries, acknowledgement,
and the event feed subscribers poll (``keel.monitoring``'s alert API on the app's store).

Policies: reading rules, alerts and events needs the viewer role on some project; changing
rules and acknowledging alerts the maintainer role on some project; channels hold where
notifications go (URLs, names of the server's environment variables), so adding, removing and
testing them is for global admins, and the list shows their settings only to admins (others
see names and kinds, enough to name a channel in a rule). The acknowledging user is the
signed-in principal, never a field of the body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keel.auth import Principal, Role
from keel.errors import InvalidInput
from keel.server._idempotency import idempotent
from keel.server._policy import admin, current_principal, role_anywhere
from keel.server.routes.monitoring import deployment_name, monitoring_stores
from keel.server.routes.tracking import read_json, reply

if TYPE_CHECKING:
    from keel.monitoring._channels import Channel

Caller = Annotated[Principal, Depends(current_principal)]
router = APIRouter(prefix="/api/v1/monitoring", tags=["alerts"])

READ = role_anywhere(Role.VIEWER)
WRITE = role_anywhere(Role.MAINTAINER)
MAX_NOTE = 2000
AlertId = Annotated[int, Path(ge=1, le=2**62)]


def _name(value: object, field: str = "name") -> str:
    from keel._names import checked_name

    return checked_name(value, field=field, max_length=128)


# -- rules -------------------------------------------------------------------------------------


@router.get("/alert-rules", dependencies=[READ])
async def list_rules(request: Request) -> Response:
    """Stored rules and those the server's ``keel.toml`` declares (``source`` tells which)."""
    from keel.monitoring._alerts import all_rules

    found = await run_in_threadpool(lambda: all_rules(monitoring_stores(request).alerts))
    return reply({"rules": [r.to_dict() for r in found]})


@router.post("/alert-rules", dependencies=[WRITE], status_code=201)
async def add_rule(request: Request, principal: Caller) -> Response:
    """Store a rule (fields as in ``docs/alerts.md``: ``name``, ``quantity``, ``operator``,
    ``threshold``, ``deployment``, ``window``, ``min_samples``, ``severity``, ``channels``,
    ``cooldown``, ``enabled``); ``replace: true`` overwrites one of the same name. Its channels
    must exist."""
    from keel.monitoring._alerts import put_rule_checked
    from keel.monitoring._alerts_rules import parse_rule

    raw, body = await read_json(request)
    replace = body.pop("replace", False)
    if not isinstance(replace, bool):
        raise InvalidInput("must be true or false", field="replace")
    rule = parse_rule(body)

    def call() -> Response:
        stored = put_rule_checked(
            monitoring_stores(request).alerts,
            rule,
            replace=replace,
            add_channel="an admin adds it first",
            toml="the server's keel.toml",
        )
        return reply(stored.to_dict(), 201)

    return await idempotent(request, principal, raw, call)


@router.patch("/alert-rules/{name}", dependencies=[WRITE])
async def set_rule(name: str, request: Request) -> Response:
    """Enable or disable a stored rule: ``{"enabled": false}``."""
    rule = _name(name)
    _, body = await read_json(request)
    unknown = sorted(set(body) - {"enabled"})
    if unknown:
        raise InvalidInput(
            "only enabled can change; replace the rule for the rest", field=unknown[0]
        )
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidInput("must be true or false", field="enabled")
    got = await run_in_threadpool(
        lambda: monitoring_stores(request).alerts.set_rule_enabled(rule, enabled)
    )
    return reply(got.to_dict())


@router.delete("/alert-rules/{name}", dependencies=[WRITE])
async def remove_rule(name: str, request: Request) -> Response:
    """Delete a stored rule; its unresolved alerts are resolved (``resolved``: how many)."""
    rule = _name(name)
    closed = await run_in_threadpool(lambda: monitoring_stores(request).alerts.remove_rule(rule))
    return reply({"name": rule, "resolved": closed})


# -- channels ----------------------------------------------------------------------------------


@router.get("/alert-channels", dependencies=[READ])
async def list_channels(request: Request, principal: Caller) -> Response:
    """Channels by name. Admins see each one's settings and target; others name and kind."""

    def call() -> list[Channel]:
        return monitoring_stores(request).alerts.list_channels()

    found = await run_in_threadpool(call)
    if principal.is_admin:
        rows = [c.to_dict() | {"target": c.target} for c in found]
    else:
        rows = [
            {"name": c.name, "kind": c.kind, "created_ms": c.created_ms, "updated_ms": c.updated_ms}
            for c in found
        ]
    return reply({"channels": rows})


@router.post("/alert-channels", dependencies=[admin()], status_code=201)
async def add_channel(request: Request, principal: Caller) -> Response:
    """Store a channel: ``name``, ``kind`` (webhook, slack, email), ``config`` (no secret
    values: secrets are NAMES of the server's environment variables), ``replace``."""
    from keel.monitoring._channels import make_channel

    raw, body = await read_json(request)
    unknown = sorted(set(body) - {"name", "kind", "config", "replace"})
    if unknown:
        raise InvalidInput("known: name, kind, config, replace", field=unknown[0])
    replace = body.get("replace", False)
    if not isinstance(replace, bool):
        raise InvalidInput("must be true or false", field="replace")
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidInput("must be an object of channel settings", field="config")
    channel = make_channel(body.get("name"), body.get("kind"), config)

    def call() -> Response:
        stored = monitoring_stores(request).alerts.put_channel(channel, replace=replace)
        return reply(stored.to_dict() | {"target": stored.target}, 201)

    return await idempotent(request, principal, raw, call)


@router.delete("/alert-channels/{name}", dependencies=[admin()])
async def remove_channel(name: str, request: Request) -> Response:
    """Delete a channel no stored rule names (409 names the rules that do)."""
    channel = _name(name)
    await run_in_threadpool(lambda: monitoring_stores(request).alerts.remove_channel(channel))
    return Response(status_code=204)


@router.post("/alert-channels/{name}/test", dependencies=[admin()])
async def test_channel(name: str, request: Request) -> Response:
    """Send a sample notification on a channel now, from the server (its environment holds
    the secrets); nothing is recorded. Answers whether it was delivered."""
    channel_name = _name(name)

    def call() -> dict[str, Any]:
        from keel.monitoring._alerts import sample_notification
        from keel.monitoring._channels import send

        channel = monitoring_stores(request).alerts.get_channel(channel_name)
        event, alert = sample_notification("a test notification from the Keel server")
        result = send(channel, event, alert)
        return {
            "name": channel.name,
            "ok": result.ok,
            "attempts": result.attempts,
            "http_status": result.http_status,
            "error": result.error,
        }

    return reply(await run_in_threadpool(call))


# -- alerts and events -------------------------------------------------------------------------


@router.get("/alerts", dependencies=[READ])
async def list_alerts(
    request: Request,
    state: Annotated[str | None, Query(pattern="^(open|acked|resolved)$")] = None,
    deployment: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    """Alerts, newest first; ``state`` one of open, acked, resolved."""
    name = None if deployment is None else deployment_name(deployment)
    found = await run_in_threadpool(
        lambda: monitoring_stores(request).alerts.list_alerts(
            state=state, deployment=name, limit=limit
        )
    )
    return reply({"alerts": [a.to_dict() for a in found]})


@router.get("/alerts/{alert_id}", dependencies=[READ])
async def get_alert(alert_id: AlertId, request: Request) -> Response:
    """One alert with its events (oldest first) and their deliveries."""

    def call() -> dict[str, Any]:
        store = monitoring_stores(request).alerts
        alert = store.get_alert(alert_id)
        events = store.list_events(alert_id=alert_id, limit=10_000)
        deliveries = store.list_deliveries(alert_id=alert_id)
        return {
            "alert": alert.to_dict(),
            "events": [e.to_dict() for e in events],
            "deliveries": [d.to_dict() for d in deliveries],
        }

    return reply(await run_in_threadpool(call))


@router.post("/alerts/{alert_id}/ack", dependencies=[WRITE])
async def ack(alert_id: AlertId, request: Request, principal: Caller) -> Response:
    """Acknowledge an open alert as the signed-in user (``note`` optional): silenced until it
    resolves. 409 if it is not open."""
    _, body = await read_json(request)
    unknown = sorted(set(body) - {"note"})
    if unknown:
        raise InvalidInput(
            "only note may be given; the acknowledging user is you", field=unknown[0]
        )
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise InvalidInput("must be text", field="note")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"at most {MAX_NOTE} characters", field="note")
    event = await run_in_threadpool(
        lambda: monitoring_stores(request).alerts.ack(alert_id, actor=principal.username, note=note)
    )
    return reply(event.to_dict())


@router.get("/alert-events", dependencies=[READ])
async def list_events(
    request: Request,
    since_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    deployment: Annotated[str | None, Query(max_length=128)] = None,
    alert_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Events with ``id > since_id`` in commit order. A subscriber keeps ``last_id`` and polls
    again with ``since_id=last_id`` (it stays ``since_id`` when nothing is new)."""
    name = None if deployment is None else deployment_name(deployment)
    found = await run_in_threadpool(
        lambda: monitoring_stores(request).alerts.list_events(
            since_id=since_id, limit=limit, deployment=name, alert_id=alert_id
        )
    )
    last = found[-1].id if found else since_id
    return reply({"events": [e.to_dict() for e in found], "last_id": last})
