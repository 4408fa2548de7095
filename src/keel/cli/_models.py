"""``keel models``: list registered models and versions, show one, move aliases, show lineage,
and mark a pickle-flavour version trusted (the server restricts that to admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import console, fail, print_json, table

if TYPE_CHECKING:
    from keel.models import ModelVersion

app = typer.Typer(
    help="Registered models: versions, aliases, lineage, trust.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _row(v: ModelVersion) -> list[Any]:
    from keel._time import format_ms

    latency = "" if v.latency_ms is None else f"{v.latency_ms:.2f} ms"
    trust = "trusted" if v.trusted else ("needs trust" if v.requires_trust else "")
    return [
        v.ref,
        str(v.status),
        v.flavor,
        _size(v.size),
        latency,
        ",".join(v.aliases),
        trust,
        (v.run_id or "")[:12],
        format_ms(v.created_ms),
    ]


_COLUMNS = ["version", "status", "flavor", "size", "latency", "aliases", "trust", "run", "created"]


@app.command("ls")
def ls(json: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases."""
    import keel.models

    models = keel.models.list_models()
    if json:
        print_json([m.to_dict() for m in models])
    elif not models:
        console.print("No registered models. Log one with keel.models.log(model, name=...).")
    else:
        rows = [
            [
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{v}" for a, v in m.aliases.items()),
                m.description[:60],
            ]
            for m in models
        ]
        table(None, ["name", "versions", "aliases", "description"], rows)


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="Model name.")],
    json: JsonOpt = False,
) -> None:
    """List the versions of NAME."""
    import keel.models

    found = keel.models.list_versions(name)
    if json:
        print_json([v.to_dict() for v in found])
    elif not found:
        fail(f"model {name!r} has no versions", hint="keel models ls lists registered models")
    else:
        table(name, _COLUMNS, map(_row, found))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="churn/3, churn@champion or models:/churn/3.")],
    json: JsonOpt = False,
) -> None:
    """Show one version: files, signature, environment, lineage summary."""
    import keel.models

    v = keel.models.resolve_uri(ref)
    if json:
        print_json(v.to_dict())
        return
    table(v.uri, _COLUMNS, [_row(v)])
    if v.error:
        console.print(f"[red]error:[/] {v.error}", highlight=False)
    if v.description:
        console.print(v.description, highlight=False)
    if v.signature is not None:
        rows = [["input", c.name or "(tensor)", c.dtype, c.shape] for c in v.signature.inputs]
        rows += [["output", c.name or "(tensor)", c.dtype, c.shape] for c in v.signature.outputs]
        table("signature", ["", "name", "dtype", "shape"], rows)
    table("files", ["path", "size", "digest"], [[f.path, f.size, f.digest[:16]] for f in v.files])
    env = v.environment
    table(
        f"environment (Python {env.python_version})",
        ["package", "version"],
        sorted(env.packages.items()),
    )
    if v.tags:
        table("tags", ["key", "value"], sorted(v.tags.items()))


@app.command("alias")
def alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[int | None, typer.Argument(help="Version to point it at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    json: JsonOpt = False,
) -> None:
    """Point NAME@ALIAS at VERSION (or remove it with --delete)."""
    import keel.models

    if delete:
        keel.models.delete_alias(name, alias_name)
        if json:
            print_json({"name": name, "alias": alias_name, "deleted": True})
        else:
            console.print(f"Removed {name}@{alias_name}.")
        return
    if version is None:
        fail("give the VERSION to point the alias at", hint=f"keel models versions {name}")
    v = keel.models.set_alias(name, alias_name, version)
    if json:
        print_json(v.to_dict())
    else:
        console.print(f"{name}@{alias_name} → version {v.version}.")


@app.command("lineage")
def lineage(
    ref: Annotated[
        str, typer.Argument(help="Model version (churn/3) or, with --dataset, churn@v3.")
    ],
    dataset: Annotated[
        bool, typer.Option("--dataset", help="REF is a dataset version: list models trained on it.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Show where a version came from: run, params, metrics, datasets, commit."""
    import keel.models

    if dataset:
        used = keel.models.models_using(ref)
        if json:
            print_json([{"model": v.uri, "run_id": v.run_id} for v in used])
        elif not used:
            console.print(f"No registered model was trained by a run that read {ref}.")
        else:
            table(f"models trained on {ref}", _COLUMNS, map(_row, used))
        return
    lin = keel.models.lineage(ref)
    if json:
        print_json(lin.to_dict())
        return
    v = lin.version
    console.print(f"[bold]{v.uri}[/]  flavor={v.flavor}  commit={lin.git_commit or '-'}")
    if lin.run is None:
        console.print("run: - (logged outside a run)" if v.run_id is None else f"run: {v.run_id}")
    else:
        console.print(f"run: {lin.run.id} ({lin.run.project}/{lin.run.name}, {lin.run.status})")
        if lin.run.params:
            table("params", ["key", "value"], sorted(lin.run.params.items()))
        if lin.run.metrics:
            table("metrics", ["key", "value"], sorted(lin.run.metrics.items()))
    if lin.datasets:
        table(
            "datasets",
            ["ref", "direction", "digest"],
            [[d.ref, d.direction, (d.digest or "")[:16]] for d in lin.datasets],
        )


@app.command("trust")
def trust(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    reason: Annotated[str, typer.Option("--reason", help="Why this file may run its code.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the trust.")] = False,
    json: JsonOpt = False,
) -> None:
    """Mark a pickle-flavour version trusted so it can be loaded (admins only on a server)."""
    import keel.models

    v = keel.models.mark_trusted(name, version, reason=reason, trusted=not revoke)
    if json:
        print_json(v.to_dict())
    else:
        state = "trusted" if v.trusted else "no longer trusted"
        console.print(f"{v.uri} is {state}: {v.trust_reason}", highlight=False)


# --- release commands (MODELS-RELEASE: keel.cli._models_release) ---
from keel.cli import _models_release  # noqa: E402 - mounted after this group's own commands

app.command("evaluate")(_models_release.evaluate)
app.command("promote")(_models_release.promote)
app.command("approve")(_models_release.approve)
app.command("decisions")(_models_release.decisions)
app.command("card")(_models_release.card)

# --- packaging (SERVE-BENCH: keel.cli._models_package) ---
from keel.cli import _models_package  # noqa: E402 - mounted after this group's own commands

app.command("package")(_models_package.package)
