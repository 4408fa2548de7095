"""Notification channels: where an alert event is sent, and how.

Three kinds, configured once (``keel alerts channels add``) and stored without secrets: a
secret is referenced by the NAME of an environment variable of the process that sends
(``secret_env = "KEEL_ALERT_SECRET"``), read when sending, never written anywhere.

* ``webhook``: POST of a JSON document (``payload``) to ``url`` (or the URL in ``url_env``),
  signed: ``X-Keel-Timestamp: <unix seconds>`` and ``X-Keel-Signature: sha256=<hex>``, the
  HMAC-SHA256 with the secret of ``<timestamp>.<raw body>``. A receiver recomputes it, compares
  in constant time, and rejects timestamps older than a few minutes (``verify_signature``), so a
  captured request cannot be replayed later. ``X-Keel-Event-Id`` lets it drop duplicates from
  retries.
* ``slack``: a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat) whose URL is
  itself the secret, so only ``url_env`` is accepted; body ``{"text": ..., "blocks": [...]}``.
* ``email``: SMTP via ``smtplib``: STARTTLS when the server offers it (``starttls = "auto"``;
  ``"required"`` fails without it, ``"off"`` never), or implicit TLS (``ssl = true``); optional
  login with ``username_env``/``password_env``, refused over a connection without TLS unless
  ``allow_insecure_login`` (a test server).

HTTP channels go through the SSRF-safe client (``_egress``); ``allow_http`` and
``allow_private`` are the admin's explicit opt-ins, off unless set on the channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from keel import _time
from keel._names import checked_name
from keel.errors import InvalidInput, KeelError
from keel.monitoring._alerts_records import Alert, AlertEvent
from keel.monitoring._egress import EgressPolicy, check_url, post

KINDS = ("webhook", "slack", "email")
SIGNATURE_HEADER = "X-Keel-Signature"
TIMESTAMP_HEADER = "X-Keel-Timestamp"
EVENT_HEADER = "X-Keel-Event-Id"
REPLAY_TOLERANCE_S = 300
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")
_HTTP_KEYS = {"url", "url_env", "allow_http", "allow_private", "timeout_s", "attempts"}
_KEYS = {
    "webhook": _HTTP_KEYS | {"secret_env"},
    "slack": _HTTP_KEYS - {"url"},
    "email": {
        "host",
        "port",
        "sender",
        "to",
        "starttls",
        "ssl",
        "username_env",
        "password_env",
        "allow_insecure_login",
        "timeout_s",
    },
}


@dataclass(frozen=True, slots=True)
class Channel:
    """A stored channel: its ``name``, ``kind`` and checked ``config`` (no secret values)."""

    name: str
    kind: str
    config: Mapping[str, Any]
    created_ms: int = 0
    updated_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "config": dict(self.config),
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }

    @property
    def target(self) -> str:
        """Where it sends, for people (env var names, never their values)."""
        if self.kind == "email":
            return f"{', '.join(self.config['to'])} via {self.config['host']}"
        return str(self.config.get("url") or f"${self.config['url_env']}")


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    attempts: int
    http_status: int | None
    error: str | None


def make_channel(name: object, kind: object, config: Mapping[str, Any]) -> Channel:
    """A checked channel; a bad value is ``InvalidInput`` naming ``config.<key>``."""
    checked = checked_name(name, field="name", max_length=128)
    if kind not in KINDS:
        raise InvalidInput(f"must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    unknown = set(config) - _KEYS[kind]
    if unknown:
        key = sorted(unknown)[0]
        raise InvalidInput(
            f"not a {kind} setting; known: {', '.join(sorted(_KEYS[kind]))}", field=f"config.{key}"
        )
    out: dict[str, Any] = {}
    for key in ("url_env", "secret_env", "username_env", "password_env"):
        if config.get(key) is not None:
            value = config[key]
            if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
                raise InvalidInput(
                    "must be the NAME of an environment variable (A-Z, 0-9, _), not a secret",
                    field=f"config.{key}",
                )
            out[key] = value
    for key in ("allow_http", "allow_private", "ssl", "allow_insecure_login"):
        if key in config:
            if not isinstance(config[key], bool):
                raise InvalidInput("must be true or false", field=f"config.{key}")
            out[key] = config[key]
    if "timeout_s" in config:
        out["timeout_s"] = _number(config["timeout_s"], "config.timeout_s", 0.1, 120)
    if kind == "email":
        _email_config(config, out)
    else:
        _http_config(kind, config, out)
    return Channel(checked, kind, out)


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"must be a number in [{low:g}, {high:g}]", field=field)
    return float(value)


def _http_config(kind: str, config: Mapping[str, Any], out: dict[str, Any]) -> None:
    if ("url" in config) == ("url_env" in config):
        what = "url_env (the URL is itself a secret)" if kind == "slack" else "url or url_env"
        raise InvalidInput(f"give exactly one of {what}", field="config.url")
    if "url" in config:
        url = config["url"]
        if not isinstance(url, str) or len(url) > 2000:
            raise InvalidInput("must be a URL of at most 2000 characters", field="config.url")
        check_url(url, EgressPolicy(allow_http=bool(out.get("allow_http"))))
        out["url"] = url
    if kind == "webhook" and "secret_env" not in out:
        raise InvalidInput(
            "required: the environment variable holding the HMAC secret (webhooks are signed)",
            field="config.secret_env",
        )
    if "attempts" in config:
        out["attempts"] = int(_number(config["attempts"], "config.attempts", 1, 10))


def _email_config(config: Mapping[str, Any], out: dict[str, Any]) -> None:
    host = config.get("host")
    if not isinstance(host, str) or not host or len(host) > 253 or not host.isprintable():
        raise InvalidInput("required: the SMTP server's host name", field="config.host")
    out["host"] = host
    out["port"] = int(
        _number(config.get("port", 465 if out.get("ssl") else 587), "config.port", 1, 65535)
    )
    sender = config.get("sender")
    if not isinstance(sender, str) or not _EMAIL.fullmatch(sender):
        raise InvalidInput("required: the From address", field="config.sender")
    out["sender"] = sender
    to = config.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list | tuple) or not to or len(to) > 50:
        raise InvalidInput("required: 1..50 recipient addresses", field="config.to")
    for i, address in enumerate(to):
        if not isinstance(address, str) or not _EMAIL.fullmatch(address):
            raise InvalidInput(f"not an e-mail address: {address!r}", field=f"config.to[{i}]")
    out["to"] = list(to)
    starttls = config.get("starttls", "auto")
    if starttls not in ("auto", "required", "off"):
        raise InvalidInput("must be auto, required or off", field="config.starttls")
    out["starttls"] = starttls
    if ("username_env" in out) != ("password_env" in out):
        raise InvalidInput("give both username_env and password_env, or neither", field="config")


# -- messages ----------------------------------------------------------------------------------


def summary(event: AlertEvent, alert: Alert) -> str:
    """One line for people: what, where, how far over."""
    value = "no value" if event.value is None else f"{event.value:.4g}"
    head = f"[{alert.severity.upper()}] {alert.deployment}: {alert.quantity} = {value}"
    if event.kind == "resolved":
        return f"{head}; resolved ({alert.condition} no longer holds)"
    if event.kind == "acked":
        return f"{head}; acknowledged by {event.actor or 'someone'}"
    verb = "firing" if event.kind == "fired" else "still firing"
    return f"{head}; {verb}: {alert.condition} (n={event.n}, rule {alert.rule})"


def payload(event: AlertEvent, alert: Alert) -> dict[str, Any]:
    """The webhook document (``version`` 1)."""
    return {
        "version": 1,
        "event": {
            "id": event.id,
            "kind": event.kind,
            "at_ms": event.at_ms,
            "at": _time.format_ms(event.at_ms),
        },
        "alert": alert.to_dict(),
        "text": summary(event, alert),
    }


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(event: AlertEvent, alert: Alert) -> dict[str, Any]:
    """``{"text", "blocks"}``: text for notifications and old clients, blocks for the rest."""
    value = "none" if event.value is None else f"{event.value:.4g}"
    icon = {"resolved": ":white_check_mark:", "acked": ":eyes:"}.get(event.kind, ":rotating_light:")
    fields = [
        ("Deployment", alert.deployment),
        ("Quantity", alert.quantity),
        ("Value", f"{value} (n={event.n})"),
        ("Condition", alert.condition),
        ("Severity", alert.severity),
        ("State", event.kind),
    ]
    return {
        "text": f"{icon} {summary(event, alert)}",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": f"{event.kind.capitalize()}: {alert.rule}"[:150],
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_mrkdwn(v)}"} for k, v in fields],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _mrkdwn(
                            f"alert #{alert.id} · event #{event.id} · "
                            f"{_time.format_ms(event.at_ms)}"
                        ),
                    }
                ],
            },
        ],
    }


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Keel-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: int = REPLAY_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """What a receiver does: the raw body and both headers, checked in constant time, and the
    timestamp within ``tolerance_s`` of now (a replay of an old request fails)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, sent), signature)


# -- sending -----------------------------------------------------------------------------------


def _env(channel: Channel, key: str) -> str:
    name = channel.config[key]
    value = os.environ.get(name)
    if not value:
        raise InvalidInput(
            f"channel {channel.name!r}: environment variable {name} is not set in this process; "
            "set it where the monitor runs",
            field=f"config.{key}",
        )
    return value


def _policy(channel: Channel) -> EgressPolicy:
    c = channel.config
    return EgressPolicy(
        allow_http=bool(c.get("allow_http", False)),
        allow_private=bool(c.get("allow_private", False)),
        timeout_s=float(c.get("timeout_s", 10.0)),
        attempts=int(c.get("attempts", 4)),
    )


def send(channel: Channel, event: AlertEvent, alert: Alert) -> SendResult:
    """Deliver ``event`` on ``channel``; every failure (bad config, refused destination, HTTP,
    SMTP) comes back in the result, never raised."""
    try:
        if channel.kind == "email":
            return _send_email(channel, event, alert)
        return _send_http(channel, event, alert)
    except KeelError as exc:
        return SendResult(False, 0, None, str(exc))


def _send_http(channel: Channel, event: AlertEvent, alert: Alert) -> SendResult:
    url = channel.config.get("url") or _env(channel, "url_env")
    document = payload(event, alert) if channel.kind == "webhook" else slack_payload(event, alert)
    body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    headers = {"Content-Type": "application/json"}
    signer = None
    if channel.kind == "webhook":
        secret = _env(channel, "secret_env").encode()
        headers[EVENT_HEADER] = str(event.id)

        def signer(raw: bytes) -> dict[str, str]:
            now = int(time.time())
            return {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(secret, raw, now)}

    result = post(url, body, headers=headers, policy=_policy(channel), sign=signer)
    return SendResult(result.ok, result.attempts, result.status, result.error)


def email_message(channel: Channel, event: AlertEvent, alert: Alert) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[Keel] {summary(event, alert)}"[:250]
    message["From"] = channel.config["sender"]
    message["To"] = ", ".join(channel.config["to"])
    lines = [summary(event, alert), ""]
    lines += [f"{k}: {v}" for k, v in payload(event, alert)["alert"].items() if v is not None]
    message.set_content("\n".join(lines) + "\n")
    return message


def _send_email(channel: Channel, event: AlertEvent, alert: Alert) -> SendResult:
    c = channel.config
    message = email_message(channel, event, alert)
    timeout = float(c.get("timeout_s", 10.0))
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if c.get("ssl"):
            smtp = smtplib.SMTP_SSL(c["host"], c["port"], timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(c["host"], c["port"], timeout=timeout)
        with smtp:
            smtp.ehlo()
            secure = bool(c.get("ssl"))
            if not secure and c["starttls"] != "off":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                    secure = True
                elif c["starttls"] == "required":
                    return SendResult(False, 1, None, "the SMTP server does not offer STARTTLS")
            if "username_env" in c:
                if not secure and not c.get("allow_insecure_login"):
                    return SendResult(
                        False,
                        1,
                        None,
                        "refusing to send the SMTP password without TLS; use starttls or ssl",
                    )
                smtp.login(_env(channel, "username_env"), _env(channel, "password_env"))
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult(False, 1, None, f"{type(exc).__name__}: {exc}")
    return SendResult(True, 1, None, None)
