"""`keel models promote | approve | decisions | card` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_world import World, register
from typer.testing import CliRunner

import keel.models
from keel.cli import app
from keel.errors import PermissionDenied

runner = CliRunner()


@pytest.fixture
def gated(world: World, keel_home: Path) -> int:
    (keel_home.parent / "keel.toml").write_text(
        f'[keel]\nproject = "churn"\n\n[gates]\ndataset = "{world.ref}"\ntarget = "churned"\n\n'
        '[gates.champion]\nmetrics = { roc_auc = ">= 0.8" }\napprovals = 1\n'
    )
    return register(world, ["a", "b"], author="alice")


def test_promote_fails_without_approval_then_passes(gated: int) -> None:
    v = str(gated)
    refused = runner.invoke(app, ["models", "promote", "churn", v, "--to", "champion"])
    assert refused.exit_code == 1
    assert "Not promoted" in refused.output and "approvals" in refused.output
    own = runner.invoke(app, ["models", "approve", "churn", v, "--as", "alice"])
    assert own.exit_code == 1 and isinstance(own.exception, PermissionDenied)
    assert keel.models.approvals("churn", gated) == []
    ok = runner.invoke(app, ["models", "approve", "churn", v, "--as", "bob", "-m", "fine"])
    assert ok.exit_code == 0 and "Approved churn v1 as bob" in ok.output
    moved = runner.invoke(app, ["models", "promote", "churn", v, "--to", "champion", "--json"])
    assert moved.exit_code == 0, moved.output
    body = json.loads(moved.output)
    assert body["moved"] and {g["kind"] for g in body["gates"]} == {"metric", "approvals"}
    assert keel.models.get_version("churn", "champion").version == gated
    listing = json.loads(runner.invoke(app, ["models", "decisions", "churn", "--json"]).output)
    assert [d["moved"] for d in listing] == [True, False]
    assert "Decisions: churn" in runner.invoke(app, ["models", "decisions", "churn"]).output


def test_override_needs_a_reason_and_records_it(gated: int) -> None:
    v = str(gated)
    no_reason = runner.invoke(app, ["models", "promote", "churn", v, "--override"])
    assert no_reason.exit_code == 1
    forced = runner.invoke(
        app, ["models", "promote", "churn", v, "--override", "--reason", "hotfix", "--as", "dana"]
    )
    assert forced.exit_code == 0, forced.output
    assert "Overridden" in forced.output and "hotfix" in forced.output
    (decision,) = keel.models.decisions("churn", gated)
    assert decision.override_reason == "hotfix" and decision.actor == "dana" and decision.moved


def test_card_command_sets_fields_and_writes_both_formats(gated: int, tmp_path: Path) -> None:
    out = tmp_path / "cards"
    result = runner.invoke(
        app,
        ["models", "card", f"churn/{gated}", "--out", str(out), "--set",
         "intended_use=Rank accounts <b>weekly</b>", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files = [Path(p) for p in json.loads(result.output)["files"]]
    assert [p.suffix for p in files] == [".md", ".html"]
    html = files[1].read_text()
    assert "Rank accounts &lt;b&gt;weekly&lt;/b&gt;" in html
    only_md = runner.invoke(app, ["models", "card", f"churn/{gated}", "--out", str(out),
                                  "--format", "md"])  # fmt: skip
    assert only_md.exit_code == 0 and only_md.output.count("Wrote") == 1
    bad = runner.invoke(app, ["models", "card", f"churn/{gated}", "--format", "pdf"])
    assert bad.exit_code == 1
    bad_field = runner.invoke(app, ["models", "card", f"churn/{gated}", "--set", "colour=blue"])
    assert bad_field.exit_code != 0


def test_evaluate_command_prints_and_stores(world: World) -> None:
    v = register(world, ["a", "b"])
    shown = runner.invoke(
        app, ["models", "evaluate", f"churn/{v}", "--data", world.ref, "--target", "churned",
              "--slice", "region"],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "roc_auc" in shown.output and "per region" in shown.output and "north" in shown.output
    args = ["models", "evaluate", "churn@latest", "--data", world.ref, "--target", "churned"]
    body = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert body["model"] == f"churn/{v}" and body["dataset"] == world.ref
    assert len(keel.models.evaluations("churn", v)) == 2


def test_names_people_chose_are_printed_not_interpreted_as_markup(
    gated: int, tmp_path: Path
) -> None:
    v = str(gated)
    runner.invoke(app, ["models", "approve", "churn", v, "--as", "[/bob]"])
    passed = runner.invoke(app, ["models", "promote", "churn", v, "--to", "champion"])
    assert passed.exit_code == 0, passed.output
    assert "[/bob]" in passed.output  # the approvals gate's detail names the approver
    strict = tmp_path / "strict.toml"
    strict.write_text("[staging]\nmax_size_mb = 0.000001\n")
    forced = runner.invoke(
        app,
        ["models", "promote", "churn", v, "--to", "staging", "--gates", str(strict),
         "--override", "--reason", "[bold]x[/] [/oops]", "--as", "[red]eve"],
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert "[bold]x[/] [/oops]" in forced.output and "[red]eve" in forced.output
    listing = runner.invoke(app, ["models", "decisions", "churn"])
    assert listing.exit_code == 0 and "[/oops]" in listing.output
