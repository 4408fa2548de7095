"""Channels: a signed webhook to a local receiver (the signature verifies, a tampered body or
an old timestamp does not), the Slack payload shape, e-mail to a local aiosmtpd server, and
configuration checks that name the field and never store a secret."""

from __future__ import annotations

import json
import time

import pytest

from keel.errors import InvalidInput
from keel.monitoring._alerts_records import Alert, AlertEvent
from keel.monitoring._channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    make_channel,
    send,
    slack_payload,
    verify_signature,
)

from .alert_support import receiver, smtp_server

SECRET = "whsec-test-0123456789"


def sample(kind: str = "fired", deployment: str = "churn") -> tuple[AlertEvent, Alert]:
    alert = Alert(
        id=7, rule="drift", deployment=deployment, quantity="drift.column.<b>&x", state="open",
        severity="critical", operator=">", threshold=0.2, window_ms=86_400_000, value=0.41,
        n=1200, result_id="r1", opened_ms=1_800_000_000_000, updated_ms=1_800_000_000_000,
        notified_ms=1_800_000_000_000, acked_ms=None, acked_by=None, ack_note=None,
        resolved_ms=None,
    )  # fmt: skip
    event = AlertEvent(
        id=12, alert_id=7, kind=kind, rule="drift", deployment=deployment,
        quantity=alert.quantity, severity="critical", value=0.41, n=1200, result_id="r1",
        at_ms=1_800_000_000_000, created_ms=1_800_000_000_000,
    )  # fmt: skip
    return event, alert


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KEEL_TEST_WEBHOOK_SECRET", SECRET)
    return SECRET


def test_webhook_is_delivered_signed_and_the_signature_verifies(secret: str) -> None:
    with receiver() as hook:
        channel = make_channel(
            "hook",
            "webhook",
            {"url": hook.url, "secret_env": "KEEL_TEST_WEBHOOK_SECRET", "allow_http": True,
             "allow_private": True},
        )  # fmt: skip
        assert SECRET not in json.dumps(channel.to_dict())  # only the variable's name is kept
        result = send(channel, *sample())
        assert (result.ok, result.http_status, result.attempts) == (True, 200, 1)
    [got] = hook.requests
    body = got.body
    document = json.loads(body)
    assert document["event"]["kind"] == "fired"
    assert document["alert"]["id"] == 7
    assert "drift.column.<b>&x" in document["text"]
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Keel-Event-Id"] == "12"
    stamp, signature = got.headers[TIMESTAMP_HEADER], got.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=")
    assert verify_signature(secret.encode(), body, stamp, signature)
    # A tampered body, another secret, or the same request replayed later: all rejected.
    assert not verify_signature(secret.encode(), body.replace(b"0.41", b"0.01"), stamp, signature)
    assert not verify_signature(b"other", body, stamp, signature)
    assert not verify_signature(secret.encode(), body, stamp, signature, now_s=time.time() + 600)
    assert not verify_signature(secret.encode(), body, "not-a-number", signature)


def test_webhook_without_its_secret_in_the_environment_fails_with_the_variable_named() -> None:
    channel = make_channel(
        "hook", "webhook", {"url": "https://hooks.example.com/x", "secret_env": "KEEL_UNSET_X"}
    )
    result = send(channel, *sample())
    assert not result.ok
    assert "KEEL_UNSET_X is not set" in (result.error or "")


def test_slack_payload_shape_and_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    event, alert = sample()
    document = slack_payload(event, alert)
    assert set(document) == {"text", "blocks"}
    assert "churn" in document["text"]
    assert [b["type"] for b in document["blocks"]] == ["header", "section", "context"]
    header = document["blocks"][0]["text"]
    assert header["type"] == "plain_text" and header["text"] == "Fired: drift"
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in document["blocks"][1]["fields"]
    }
    assert fields["*Quantity*"] == "drift.column.&lt;b&gt;&amp;x"  # mrkdwn-escaped
    assert fields["*Condition*"].endswith("> 0.2".replace(">", "&gt;"))
    assert all(f["type"] == "mrkdwn" for f in document["blocks"][1]["fields"])
    with receiver() as hook:
        monkeypatch.setenv("KEEL_TEST_SLACK_URL", hook.url)
        channel = make_channel(
            "slack", "slack",
            {"url_env": "KEEL_TEST_SLACK_URL", "allow_http": True, "allow_private": True},
        )  # fmt: skip
        assert send(channel, event, alert).ok
    assert json.loads(hook.requests[0].body) == document
    assert SIGNATURE_HEADER not in hook.requests[0].headers


def test_email_is_delivered_to_an_smtp_server() -> None:
    with smtp_server() as box:
        channel = make_channel(
            "mail",
            "email",
            {"host": "127.0.0.1", "port": box.port, "sender": "keel@example.com",
             "to": ["ops@example.com", "ml@example.com"]},
        )  # fmt: skip
        result = send(channel, *sample("resolved"))
        assert result.ok, result.error
    [(mail_from, rcpt)] = box.envelopes
    assert (mail_from, rcpt) == ("keel@example.com", ["ops@example.com", "ml@example.com"])
    [message] = box.messages
    assert message["Subject"].startswith("[Keel] [CRITICAL] churn")
    assert "resolved" in message["Subject"]
    assert "rule: drift" in message.get_payload()


def test_email_starttls_required_fails_on_a_server_without_it() -> None:
    with smtp_server() as box:
        channel = make_channel(
            "mail", "email",
            {"host": "127.0.0.1", "port": box.port, "sender": "k@example.com",
             "to": "ops@example.com", "starttls": "required"},
        )  # fmt: skip
        result = send(channel, *sample())
        assert not result.ok
        assert "STARTTLS" in (result.error or "")
        assert box.messages == []


# The test server asks for a login over plain SMTP (no certificate to trust here); aiosmtpd
# rightly warns about that setup.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_login_reads_env_and_is_refused_without_tls_unless_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEEL_TEST_SMTP_USER", "keel")
    monkeypatch.setenv("KEEL_TEST_SMTP_PASSWORD", "pw-123")
    config = {
        "host": "127.0.0.1", "sender": "k@example.com", "to": ["ops@example.com"],
        "username_env": "KEEL_TEST_SMTP_USER", "password_env": "KEEL_TEST_SMTP_PASSWORD",
    }  # fmt: skip
    with smtp_server(require_auth=("keel", "pw-123")) as box:
        plain = make_channel("mail", "email", {**config, "port": box.port})
        refused = send(plain, *sample())
        assert not refused.ok and "without TLS" in (refused.error or "")
        allowed = make_channel(
            "mail", "email", {**config, "port": box.port, "allow_insecure_login": True}
        )
        assert send(allowed, *sample()).ok
        assert len(box.messages) == 1


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("pager", {}, "kind"),
        ("webhook", {"url": "https://x.example.com"}, "config.secret_env"),
        ("webhook", {"url": "http://x.example.com", "secret_env": "S"}, "url"),
        (
            "webhook",
            {"url": "https://x.example.com", "secret_env": "hunter2!"},
            "config.secret_env",
        ),
        ("webhook", {"secret_env": "S"}, "config.url"),
        (
            "webhook",
            {"url": "https://x.example.com", "secret_env": "S", "verify": False},
            "config.verify",
        ),
        (
            "webhook",
            {"url": "https://x.example.com", "secret_env": "S", "allow_private": "yes"},
            "config.allow_private",
        ),
        ("slack", {"url": "https://hooks.slack.com/services/T/B/X"}, "config.url"),
        ("email", {"sender": "a@b.c", "to": ["d@e.f"]}, "config.host"),
        ("email", {"host": "smtp", "sender": "nope", "to": ["d@e.f"]}, "config.sender"),
        ("email", {"host": "smtp", "sender": "a@b.c", "to": ["d@e.f", "bad"]}, "config.to[1]"),
        (
            "email",
            {"host": "smtp", "sender": "a@b.c", "to": "d@e.f", "starttls": "maybe"},
            "config.starttls",
        ),
    ],
)
def test_bad_channel_config_names_the_field(kind: str, config: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_channel("c", kind, config)
    assert info.value.field == field
