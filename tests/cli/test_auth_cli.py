"""`keel users|tokens|projects|audit` on the metadata database given by KEEL_TRACKING_URI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from keel.cli import app

runner = CliRunner()
PASSWORD = "correct horse battery staple"
GROUPS = ("users", "tokens", "projects", "audit")


def invoke(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def keel_cmd(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        check=False,
        capture_output=True,
        text=True,
        input=input,
    )


def _store():  # type: ignore[no-untyped-def]
    from keel.auth import open_auth_store

    return open_auth_store()


@pytest.fixture
def on_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at a fresh SQLite or PostgreSQL database."""
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_TRACKING_URI", db_url)
    reset_settings()
    return db_url


def test_every_auth_command_has_help() -> None:
    root = typer.main.get_command(app)
    for group_name in GROUPS:
        group = root.commands[group_name]  # type: ignore[attr-defined]
        assert group.help, group_name
        assert "Usage:" in invoke(group_name, "--help")
        for name, command in group.commands.items():
            assert command.help, f"keel {group_name} {name} has no help"
            assert "Usage:" in invoke(group_name, name, "--help")


def test_users_create_prompts_twice_and_lists(on_db: str) -> None:
    out = invoke("users", "create", "Alice", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "Created user Alice" in out and PASSWORD not in out
    made = json.loads(
        invoke("users", "create", "root", "--admin", "--password-stdin", "--json", input=PASSWORD)
    )
    assert made["username"] == "root" and made["is_admin"] is True
    listed = json.loads(invoke("users", "list", "--json"))
    assert [(u["username"], u["is_admin"]) for u in listed] == [("Alice", False), ("root", True)]
    assert "Alice" in invoke("users", "list")
    assert json.loads(invoke("users", "disable", "alice", "--json"))["disabled"] is True
    assert "disabled" in invoke("users", "list")
    assert "Enabled user Alice" in invoke("users", "enable", "ALICE")
    new = "another long passphrase"
    assert "sessions were ended" in invoke("users", "passwd", "alice", input=f"{new}\n{new}\n")
    _store().login("alice", new, address="cli-test")
    actors = {r.actor for r in _store().audit_search(action="user.*")}
    assert len(actors) == 1 and actors.pop().startswith("cli:")  # type: ignore[union-attr]


def test_users_create_refuses_mismatch_and_weak_passwords() -> None:
    mismatch = runner.invoke(app, ["users", "create", "bob"], input=f"{PASSWORD}\nother one\n")
    assert mismatch.exit_code != 0
    weak = keel_cmd("users", "create", "bob", "--password-stdin", input="password123\n")
    assert weak.returncode == 1 and "password" in weak.stderr and "Traceback" not in weak.stderr
    taken = keel_cmd("users", "create", "BOB", "--password-stdin", input=PASSWORD)
    assert taken.returncode == 0, taken.stderr
    again = keel_cmd("users", "create", "bob", "--password-stdin", input=PASSWORD)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert [u.username for u in _store().list_users()] == ["BOB"]


def test_tokens_create_prints_once_list_and_revoke(on_db: str) -> None:
    invoke("users", "create", "ci-bot", "--password-stdin", input=PASSWORD)
    result = runner.invoke(
        app,
        [
            *("tokens", "create", "ci-bot", "--name", "nightly", "--role", "editor"),
            *("--project", "churn", "--project", "fraud", "--expires", "30d"),
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("keel_") and "\n" not in token
    assert "will not be shown again" in result.stderr
    principal = _store().authenticate_token(token)
    assert principal.token_projects == ("churn", "fraud") and principal.token_role == 2
    doc = json.loads(invoke("tokens", "create", "ci-bot", "-n", "other", "--json"))
    assert doc["token"].startswith(doc["prefix"]) and doc["role"] == "viewer"
    listed = json.loads(invoke("tokens", "list", "--user", "ci-bot", "--json"))
    assert [(t["name"], t["state"]) for t in listed] == [("nightly", "active"), ("other", "active")]
    assert listed[0]["expires_ms"] - listed[0]["created_ms"] == 30 * 86_400_000
    assert all("token" not in t for t in listed)
    table = invoke("tokens", "list")
    assert "nightly" in table and token not in table
    assert "Revoked token" in invoke("tokens", "revoke", str(listed[0]["id"]))
    assert json.loads(invoke("tokens", "list", "--json"))[0]["state"] == "revoked"


def test_token_errors_name_the_option() -> None:
    invoke("users", "create", "ci", "--password-stdin", input=PASSWORD)
    bad = keel_cmd("tokens", "create", "ci", "--name", "x", "--expires", "soon")
    assert bad.returncode == 1 and "expires" in bad.stderr
    bad = keel_cmd("tokens", "create", "ci", "--name", "x", "--role", "owner")
    assert bad.returncode == 1 and "role" in bad.stderr and "maintainer" in bad.stderr
    bad = keel_cmd("tokens", "revoke", "999")
    assert bad.returncode == 1 and "does not exist" in bad.stderr
    assert _store().list_tokens() == []


def test_projects_create_grant_revoke(on_db: str) -> None:
    from keel.auth import Role
    from keel.tracking import open_store

    invoke("users", "create", "owner", "--password-stdin", input=PASSWORD)
    invoke("users", "create", "dana", "--password-stdin", input=PASSWORD)
    doc = json.loads(invoke("projects", "create", "churn", "--owner", "owner", "--json"))
    assert doc["name"] == "churn"
    assert open_store(on_db).get_project("churn").name == "churn"
    store = _store()
    owner = store.login("owner", PASSWORD, address="t")
    assert store.role_in(owner, "churn") is Role.MAINTAINER
    assert "dana is now editor on churn" in invoke(
        "projects", "grant", "churn", "dana", "-r", "editor"
    )
    members = json.loads(invoke("projects", "members", "churn", "--json"))
    assert [(m["username"], m["role"]) for m in members] == [
        ("dana", "editor"),
        ("owner", "maintainer"),
    ]
    invoke("projects", "revoke", "churn", "dana")
    assert store.role_in(store.login("dana", PASSWORD, address="t"), "churn") is None
    assert "owner" in invoke("projects", "members")
    actions = [r.action for r in store.audit_search(resource="project:churn")][::-1]
    assert actions == ["project.create", "grant.set", "grant.set", "grant.revoke"]


def test_projects_create_with_unknown_owner_creates_nothing() -> None:
    from keel.tracking import open_store

    bad = keel_cmd("projects", "create", "fraud", "--owner", "ghost")
    assert bad.returncode == 1 and "ghost" in bad.stderr
    assert [p.name for p in open_store().list_projects()] == []
    assert "already exists" not in keel_cmd("projects", "create", "fraud").stderr
    again = keel_cmd("projects", "create", "fraud")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_audit_verify_and_search(on_db: str) -> None:
    invoke("users", "create", "eve", "--password-stdin", input=PASSWORD)
    invoke("projects", "create", "churn", "--owner", "eve")
    assert "Audit log OK: 3 records" in invoke("audit", "verify")
    ok = json.loads(invoke("audit", "verify", "--json"))
    assert ok["ok"] is True and ok["checked"] == 3 and len(ok["head_hash"]) == 64
    found = json.loads(invoke("audit", "search", "--action", "grant.*", "--json"))
    assert [(r["action"], r["resource"]) for r in found] == [("grant.set", "project:churn")]
    assert len(json.loads(invoke("audit", "search", "--since", "1h", "--json"))) == 3
    assert json.loads(invoke("audit", "search", "--until", "2000-01-01", "--json")) == []
    assert (
        json.loads(invoke("audit", "search", "--resource", "user:eve", "--json"))[0]["action"]
        == "user.create"
    )
    assert "project.create" in invoke("audit", "search", "--user", found[0]["actor"])
    _store().audit(
        actor=None, action="login", resource="user:[red]x[/red]", address=None, outcome="denied"
    )
    assert "user:[red]x[/red]" in invoke("audit", "search", "--action", "login")
    bad = keel_cmd("audit", "search", "--since", "yesterday")
    assert bad.returncode == 1 and "since" in bad.stderr
    store = _store()
    with store._engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "FAILED" in result.stderr and "mallory" in result.stdout
    failed = runner.invoke(app, ["audit", "verify", "--json"])
    doc = json.loads(failed.stdout)
    assert (
        failed.exit_code == 1 and doc["first_bad_id"] == 2 and doc["record"]["actor"] == "mallory"
    )


def test_commands_refuse_a_remote_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TRACKING_URI", "http://127.0.0.1:1")
    bad = keel_cmd("users", "list")
    assert bad.returncode == 1 and "server's database" in bad.stderr
