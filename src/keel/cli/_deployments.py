"""``keel deployments``: named serving endpoints (champion, challenger, shadow or canary split,
batching and limits) with a history of every change, and bulk feedback upload."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.serving._deployments import Deployment, Deployments

app = typer.Typer(
    help="Deployments: which model versions serve, how traffic splits, and their history.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ChallengerOpt = Annotated[
    int | None, typer.Option("--challenger", help="Challenger version (shadow or canary).")
]
ModeOpt = Annotated[str | None, typer.Option("--mode", help="single, shadow or canary.")]
PercentOpt = Annotated[
    float | None, typer.Option("--percent", help="Canary: percent of traffic to the challenger.")
]
StickyOpt = Annotated[
    str | None,
    typer.Option("--sticky-key", help="Canary: request field whose value pins a caller's model."),
]
BatchOpt = Annotated[int | None, typer.Option("--max-batch-size", help="Rows per micro-batch.")]
WaitOpt = Annotated[
    float | None,
    typer.Option("--max-latency-ms", help="Longest wait for a micro-batch to fill."),
]
QueueOpt = Annotated[
    int | None, typer.Option("--max-queue", help="Requests allowed to wait (then 503).")
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout-s", help="Timeout of one predict call (seconds).")
]


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still record something
        return "local"


def _open() -> Deployments:
    from keel.serving._deployments import open_deployments

    return open_deployments()


def _settings(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _split(d: Deployment) -> str:
    if d.mode == "canary":
        sticky = f" by {d.sticky_key}" if d.sticky_key else ""
        return f"{d.percent:g}% → v{d.challenger}{sticky}"
    if d.mode == "shadow":
        return f"copy → v{d.challenger}"
    return ""


def _row(d: Deployment) -> list[Any]:
    from keel._time import format_ms

    return [
        d.name,
        d.model,
        f"v{d.champion}",
        "" if d.challenger is None else f"v{d.challenger}",
        str(d.mode),
        _split(d),
        d.revision,
        d.updated_by,
        format_ms(d.updated_ms),
    ]


_COLUMNS = ["name", "model", "champion", "challenger", "mode", "split", "rev", "by", "updated"]


def _print(d: Deployment, json: bool) -> None:
    if json:
        print_json(d.to_dict())
        return
    table(None, _COLUMNS, [_row(d)])
    table("settings", ["setting", "value"], sorted(d.settings.to_dict().items()))


@app.command("create")
def create(  # noqa: PLR0917 - Typer passes every option positionally
    name: Annotated[str, typer.Argument(help="Deployment name, e.g. churn-prod.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    champion: Annotated[int, typer.Option("--champion", help="Version that answers.")],
    challenger: ChallengerOpt = None,
    mode: ModeOpt = None,
    percent: PercentOpt = None,
    sticky_key: StickyOpt = None,
    max_batch_size: BatchOpt = None,
    max_latency_ms: WaitOpt = None,
    max_queue: QueueOpt = None,
    timeout_s: TimeoutOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create deployment NAME serving MODEL's CHAMPION version (versions must be READY)."""
    from keel.serving._deployments import Deployment, DeploymentSettings, Mode

    settings = DeploymentSettings.from_dict(
        _settings(
            max_batch_size=max_batch_size, max_latency_ms=max_latency_ms, max_queue=max_queue,
            timeout_s=timeout_s,
        )
    )  # fmt: skip
    wanted = mode or (Mode.CANARY if percent is not None else Mode.SINGLE)
    made = _open().create(
        Deployment(
            name, model, champion, challenger=challenger, mode=wanted,  # type: ignore[arg-type]
            percent=percent or 0.0, sticky_key=sticky_key, settings=settings,
        ),
        actor=_actor(),
    )  # fmt: skip
    if not json:
        console.print(
            f"Created deployment {made.name} (revision 1). "
            f"Serve it with: keel serve --deployment {made.name}",
            highlight=False,
            markup=False,
        )
    _print(made, json)


@app.command("set")
def set_(  # noqa: PLR0917 - Typer passes every option positionally
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    champion: Annotated[int | None, typer.Option("--champion", help="New champion.")] = None,
    challenger: ChallengerOpt = None,
    no_challenger: Annotated[
        bool, typer.Option("--no-challenger", help="Drop the challenger (mode becomes single).")
    ] = False,
    mode: ModeOpt = None,
    percent: PercentOpt = None,
    sticky_key: StickyOpt = None,
    max_batch_size: BatchOpt = None,
    max_latency_ms: WaitOpt = None,
    max_queue: QueueOpt = None,
    timeout_s: TimeoutOpt = None,
    json: JsonOpt = False,
) -> None:
    """Change some fields of NAME; the change is recorded in its history."""
    changes: dict[str, Any] = _settings(
        champion=champion, challenger=challenger, mode=mode, percent=percent,
        sticky_key=sticky_key,
    )  # fmt: skip
    if no_challenger:
        changes.update(challenger=None, mode="single")
    settings = _settings(
        max_batch_size=max_batch_size, max_latency_ms=max_latency_ms, max_queue=max_queue,
        timeout_s=timeout_s,
    )  # fmt: skip
    if settings:
        changes["settings"] = settings
    if not changes:
        from keel.errors import InvalidInput

        raise InvalidInput("nothing to change; give at least one option (see --help)")
    updated = _open().set(name, actor=_actor(), **changes)
    if not json:
        console.print(
            f"{updated.name} is at revision {updated.revision}. A running "
            "`keel serve --deployment` swaps it in within its --poll-s.",
            highlight=False,
            markup=False,
        )
    _print(updated, json)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Deployment name.")], json: JsonOpt = False
) -> None:
    """Show deployment NAME with its batching and limit settings."""
    _print(_open().get(name), json)


@app.command("ls")
def ls(json: JsonOpt = False) -> None:
    """List deployments."""
    found = _open().list()
    if json:
        print_json([d.to_dict() for d in found])
    elif not found:
        console.print("No deployments. Create one with keel deployments create NAME --model ...")
    else:
        table(None, _COLUMNS, map(_row, found))


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Deployment name.")], json: JsonOpt = False
) -> None:
    """Every change of NAME: who, when, what (old → new)."""
    from keel._time import format_ms

    changes = _open().history(name)
    if json:
        print_json([c.to_dict() for c in changes])
        return
    rows = [
        [
            c.revision,
            format_ms(c.created_ms),
            c.actor,
            c.action,
            "; ".join(
                f"{k}={new}" if c.action == "create" else f"{k}: {old} → {new}"
                for k, (old, new) in c.changes.items()
            ),
        ]
        for c in changes
    ]
    table(name, ["rev", "when", "who", "action", "changes"], rows)


@app.command("feedback")
def feedback(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    path: Annotated[Path, typer.Argument(help="CSV or Parquet: request_id,label[,timestamp].")],
    json: JsonOpt = False,
) -> None:
    """Upload true labels for past predictions of NAME (the latest label per request wins)."""
    from keel.monitoring._feedback import upload_feedback

    result = upload_feedback(name, path)
    if json:
        print_json(result.to_dict())
    else:
        console.print(
            f"{result.received} rows read, {result.applied} labels stored, "
            f"{result.stale} older than a stored label (ignored).",
            highlight=False,
        )
