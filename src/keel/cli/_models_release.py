"""``keel models evaluate | promote | approve | decisions | card``: releasing versions.

The commands are plain functions; ``keel.cli._models`` mounts them on ``keel models``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.models import GateResult, PromotionDecision

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[int, typer.Argument(help="Version number.")]
AliasOpt = Annotated[str, typer.Option("--to", help="Alias to move (e.g. champion).")]
GatesOpt = Annotated[
    Path | None,
    typer.Option("--gates", help="Gates file (default: [gates] in the project's keel.toml)."),
]
DataOpt = Annotated[
    str | None, typer.Option("--data", help="Evaluation dataset version, e.g. churn@v3.")
]
TargetOpt = Annotated[str | None, typer.Option("--target", help="Target column of --data.")]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _gate_row(g: GateResult) -> list[str]:
    ci = "" if g.ci_low is None else f"[{_num(g.ci_low)}, {_num(g.ci_high)}]"
    verdict = "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"
    # Gate names and details carry names people chose (metrics, columns, users): not markup.
    row = [g.gate, _num(g.observed), f"{g.op} {_num(g.threshold)}", ci]
    return [*(escape(c) for c in row), verdict, escape(g.detail)]


def print_decision(decision: PromotionDecision, *, json: bool) -> None:
    """The decision as a gate table and a verdict line (or JSON)."""
    if json:
        print_json(decision.to_dict())
        return
    title = escape(f"{decision.name} v{decision.version} -> {decision.alias}")
    if decision.gates:
        table(title, ["Gate", "Observed", "Threshold", "CI", "Result", "Detail"],
              [_gate_row(g) for g in decision.gates])  # fmt: skip
    else:
        console.print(f"{title}: no gates declared for {escape(repr(decision.alias))}")
    failed = len(decision.failed_gates)
    if decision.moved and decision.overridden:
        console.print(
            f"[bold yellow]Overridden[/] by {escape(decision.actor)}: "
            + escape(
                f"{decision.name}@{decision.alias} -> v{decision.version} despite {failed} "
                f"failing gate(s). Reason: {decision.override_reason}"
            ),
            highlight=False,
        )
    elif decision.moved:
        console.print("[green]Promoted:[/] " + escape(f"{decision.name}@{decision.alias} -> "
                      f"v{decision.version}"), highlight=False)  # fmt: skip
    elif decision.passed:
        console.print("[green]All gates pass[/] for " + escape(f"{decision.name} "
                      f"v{decision.version} -> {decision.alias} (nothing moved)"),
                      highlight=False)  # fmt: skip
    else:
        console.print(
            f"[bold red]Not promoted:[/] {failed} of {len(decision.gates)} gate(s) failed for "
            + escape(f"{decision.name} v{decision.version} -> {decision.alias}"),
            highlight=False,
        )


def evaluate(  # noqa: PLR0917 - Typer passes every option positionally
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS, e.g. churn/4.")],
    data: Annotated[str, typer.Option("--data", help="Dataset version, e.g. churn@v3.")],
    target: Annotated[str, typer.Option("--target", help="Target column.")],
    slice_: Annotated[
        list[str] | None,
        typer.Option("--slice", help="Also report metrics per value of this column (repeatable)."),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Project of the evaluation run.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Evaluate REF on a dataset version; the result is stored and logged to a run."""
    import keel.models

    result = keel.models.evaluate(ref, data, target, slices=slice_ or (), project=project)
    if json:
        print_json(result.to_dict())
        return
    table(f"{result.model_ref} on {result.dataset} ({result.rows} rows, {result.task})",
          ["Metric", "Value"], [[k, v] for k, v in result.metrics.items()])  # fmt: skip
    for column, by_value in result.slices.items():
        keys = [k for k in result.metrics if any(k in m for m in by_value.values())]
        table(f"per {column}", [column, "rows", *keys],
              [[value, int(m["rows"]), *(m.get(k) for k in keys)]
               for value, m in by_value.items()])  # fmt: skip
    console.print(f"Run: {result.run_id}", highlight=False)


def promote(  # noqa: PLR0917 - Typer passes every option positionally
    name: NameArg,
    version: VersionArg,
    to: AliasOpt = "champion",
    gates: GatesOpt = None,
    data: DataOpt = None,
    target: TargetOpt = None,
    override: Annotated[
        bool, typer.Option("--override", help="Move the alias even if gates fail (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why you override.")] = None,
    actor: Annotated[
        str | None, typer.Option("--as", help="Who is promoting (default: current user).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Run the gates for --to on NAME VERSION and move the alias if every gate passes.

    Exits 1 when the alias did not move. Every decision is recorded with its evidence
    (keel models decisions NAME).
    """
    import keel.models
    from keel.cli._output import fail

    if override and not (reason and reason.strip()):
        fail("--override needs --reason", hint='e.g. --override --reason "v3 leaks PII"')
    if reason is not None and not override:
        fail("--reason goes with --override", hint="add --override, or drop --reason")
    decision = keel.models.promote(
        name, version, to, gates=gates, override_reason=reason if override else None,
        actor=actor, data=data, target=target,
    )  # fmt: skip
    print_decision(decision, json=json)
    if not decision.moved:
        raise SystemExit(1)


def approve(
    name: NameArg,
    version: VersionArg,
    user: Annotated[
        str | None, typer.Option("--as", help="Approving maintainer (default: current user).")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", "-m", help="What you checked.")] = "",
    json: JsonOpt = False,
) -> None:
    """Approve NAME VERSION for promotion; the version's author cannot approve it."""
    import keel.models
    from keel._time import format_ms

    approval = keel.models.approve(name, version, user=user, comment=comment)
    if json:
        print_json(approval.to_dict())
        return
    text = f"Approved {name} v{version} as {approval.user} ({format_ms(approval.created_ms)})"
    console.print(escape(text), highlight=False)


def decisions(
    name: NameArg,
    version: Annotated[int | None, typer.Argument(help="Only this version.")] = None,
    json: JsonOpt = False,
) -> None:
    """Promotion decisions and gate checks of NAME, newest first."""
    import keel.models
    from keel._time import format_ms

    found = keel.models.decisions(name, version)
    if json:
        print_json([d.to_dict() for d in found])
        return
    rows = [
        [format_ms(d.created_ms), f"v{d.version}", d.alias, d.action,
         "pass" if d.passed else f"FAIL ({len(d.failed_gates)})",
         "yes" if d.moved else "no", escape(d.actor), escape(d.override_reason or "")]
        for d in found
    ]  # fmt: skip
    table(f"Decisions: {name}", ["When", "Version", "Alias", "Action", "Gates", "Moved", "By",
                                 "Override reason"], rows)  # fmt: skip


def card(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS, e.g. churn/4.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the card into.")] = Path(),
    format: Annotated[
        str, typer.Option("--format", help="md, html or both.", case_sensitive=False)
    ] = "both",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help='Store a card field first: intended_use="..." (repeatable).'),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Render the model card of REF from stored facts (Markdown and/or self-contained HTML).

    Editable fields: intended_use, limitations, ethical_considerations, owner.
    """
    import keel.models
    from keel.models._card import field_values

    formats = {"md": ["md"], "html": ["html"], "both": ["md", "html"]}.get(format.lower())
    if formats is None:
        from keel.cli._output import fail

        fail(f"unknown --format {format!r}", hint="use md, html or both")
    if set_:
        version = keel.models.resolve_uri(ref)
        keel.models.set_card(version.name, version.version, **field_values(set_))
    written = keel.models.write_card(ref, out, formats=formats)
    if json:
        print_json({"files": [str(p) for p in written]})
        return
    for path in written:
        console.print(f"Wrote {path}", highlight=False)
