"""`keel alerts`: channels, rules, alerts, ack and history through the CLI, tables and
--json, against a real local webhook receiver."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keel.cli import app
from keel.errors import InvalidInput
from keel.monitoring._alerts import evaluate_result
from keel.monitoring._quantities import Quantity

from .alert_support import receiver

runner = CliRunner()


def keel(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


COMMANDS = [
    [], ["rules"], ["rules", "add"], ["rules", "ls"], ["rules", "rm"], ["rules", "enable"],
    ["rules", "disable"], ["channels"], ["channels", "add"], ["channels", "ls"],
    ["channels", "rm"], ["channels", "test"], ["ls"], ["ack"], ["history"], ["show"],
    ["redeliver"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "alerts")
def test_every_command_has_help(command: list[str]) -> None:
    output = keel("alerts", *command, "--help")
    assert "Usage" in output


def test_channels_rules_alerts_ack_and_history(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TEST_CLI_SECRET", "cli-secret")
    with receiver() as hook:
        out = keel("alerts", "channels", "add", "ops", "--kind", "webhook", "--url", hook.url,
                   "--secret-env", "KEEL_TEST_CLI_SECRET",
                   "--allow-http", "--allow-private")  # fmt: skip
        assert "ops" in out and "webhook" in out
        [channel] = json.loads(keel("alerts", "channels", "ls", "--json"))
        assert channel["config"]["secret_env"] == "KEEL_TEST_CLI_SECRET"
        assert "cli-secret" not in json.dumps(channel)
        assert "$KEEL_TEST_CLI_SECRET" in keel("alerts", "channels", "ls")
        tested = json.loads(keel("alerts", "channels", "test", "ops", "--json"))
        assert tested["ok"] is True and len(hook.requests) == 1

        keel("alerts", "rules", "add", "drift", "-q", "drift.share", "--op", "gt", "-t", "0.3",
             "-d", "churn", "--min-samples", "10", "-c", "ops",
             "--severity", "critical")  # fmt: skip
        [rule] = json.loads(keel("alerts", "rules", "ls", "--json"))
        assert (rule["operator"], rule["threshold"], rule["channels"]) == (">", 0.3, ["ops"])
        assert "drift.share > 0.3" in keel("alerts", "rules", "ls")

        evaluate_result("churn", "r1", {"drift.share": Quantity(0.5, 100)},
                        window_ms=86_400_000, at_ms=1_800_000_000_000)  # fmt: skip
        assert len(hook.requests) == 2
    [alert] = json.loads(keel("alerts", "ls", "--state", "open", "--json"))
    assert (alert["rule"], alert["value"], alert["severity"]) == ("drift", 0.5, "critical")
    assert "drift.share > 0.3" in keel("alerts", "ls")
    shown = json.loads(keel("alerts", "show", str(alert["id"]), "--json"))
    assert [e["kind"] for e in shown["events"]] == ["fired"]
    assert [(d["channel"], d["status"]) for d in shown["deliveries"]] == [("ops", "delivered")]
    assert "Deliveries" in keel("alerts", "show", str(alert["id"]))
    assert "delivered" in keel("alerts", "redeliver", str(alert["id"]))  # nothing to resend
    acked = json.loads(keel("alerts", "ack", str(alert["id"]), "--note", "on it", "--json"))
    assert (acked["kind"], acked["note"]) == ("acked", "on it")
    assert json.loads(keel("alerts", "ls", "--state", "open", "--json")) == []
    history = json.loads(keel("alerts", "history", "--json"))
    assert [e["kind"] for e in history] == ["fired", "acked"]
    assert "on it" in keel("alerts", "history")
    assert (
        json.loads(keel("alerts", "history", "--since-id", str(history[0]["id"]), "--json"))[0][
            "kind"
        ]
        == "acked"
    )

    keel("alerts", "rules", "disable", "drift")
    assert json.loads(keel("alerts", "rules", "ls", "--json"))[0]["enabled"] is False
    keel("alerts", "rules", "enable", "drift")
    assert "resolved 1 alert" in keel("alerts", "rules", "rm", "drift")
    keel("alerts", "channels", "rm", "ops")
    assert json.loads(keel("alerts", "channels", "ls", "--json")) == []


def test_bad_input_names_the_field_and_a_failed_test_exits_1() -> None:
    with pytest.raises(InvalidInput) as info:
        runner.invoke(app, ["alerts", "rules", "add", "r", "-q", "drift.share", "--op", "==",
                            "-t", "1"], catch_exceptions=False)  # fmt: skip
    assert info.value.field == "operator"
    with pytest.raises(InvalidInput) as info:
        runner.invoke(app, ["alerts", "ls", "--state", "closed"], catch_exceptions=False)
    assert info.value.field == "state"
    keel("alerts", "channels", "add", "ext", "--kind", "webhook", "--url",
         "https://hooks.example.com/x", "--secret-env", "KEEL_TEST_UNSET_SECRET")  # fmt: skip
    result = runner.invoke(app, ["alerts", "channels", "test", "ext"])
    assert result.exit_code == 1
    assert "KEEL_TEST_UNSET_SECRET" in result.output
