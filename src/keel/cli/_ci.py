"""``keel ci``: checks for continuous integration pipelines.

``keel ci gate NAME VERSION --to ALIAS`` runs the promotion gates without moving anything and
exits non-zero when a gate fails, so a pipeline step can stop a release.
"""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._models_release import (
    AliasOpt,
    DataOpt,
    GatesOpt,
    JsonOpt,
    NameArg,
    TargetOpt,
    VersionArg,
    print_decision,
)

app = typer.Typer(help="Checks for CI pipelines (exit code 1 on failure).", no_args_is_help=True)


@app.command("gate")
def gate(  # noqa: PLR0917 - Typer passes every option positionally
    name: NameArg,
    version: VersionArg,
    to: AliasOpt = "champion",
    gates: GatesOpt = None,
    data: DataOpt = None,
    target: TargetOpt = None,
    actor: Annotated[
        str | None, typer.Option("--as", help="Who runs the check (default: current user).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Evaluate the gates of --to for NAME VERSION; move nothing; exit 1 if any gate fails.

    The check is recorded (keel models decisions NAME) with each gate's evidence.
    """
    import keel.models

    decision = keel.models.check_gates(
        name, version, to, gates=gates, actor=actor, data=data, target=target
    )
    print_decision(decision, json=json)
    if not decision.passed:
        raise SystemExit(1)
