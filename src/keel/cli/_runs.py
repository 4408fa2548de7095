"""``keel runs``: search, show, compare and delete runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.tracking import Client, Run

app = typer.Typer(help="Search, inspect, compare and delete runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# Columns per kind shown in the search table; `show` and --json have everything.
_MAX_KEY_COLUMNS = 8
_FIXED_WIDTH, _KEY_WIDTH = 70, 22


def _client() -> Client:
    from keel.tracking import Client

    return Client()


def resolve_run(client: Client, ref: str) -> Run:
    """A run by full id or by a unique prefix of at least 6 characters (like git)."""
    from keel.errors import InvalidInput, NotFound

    if len(ref) == 32:
        return client.get_run(ref)
    if len(ref) < 6 or not ref.isalnum():
        raise InvalidInput("give a full run id or a prefix of at least 6 characters", field="run")
    page = client.search_runs(f"id like '{ref.lower()}%'", max_results=2)
    if not page.items:
        raise NotFound(f"no run id starts with {ref!r}")
    if len(page.items) > 1:
        raise InvalidInput(f"{ref!r} matches several runs; give more characters", field="run")
    return client.get_run(page.items[0].id)


def _duration(run: Run) -> str:
    if run.end_ms is None:
        return ""
    seconds = (run.end_ms - run.start_ms) / 1000
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _columns(runs: tuple[Run, ...], mentioned: str, fit: int) -> list[tuple[str, str]]:
    """(kind, key) columns to show: keys the query mentions, then metrics, then params, most
    common first; at most ``fit``."""
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        for kind in ("metrics", "params"):
            for key in getattr(run, kind):
                counts[kind, key] = counts.get((kind, key), 0) + 1
    ranked = sorted(
        counts, key=lambda c: (f"{c[0]}.{c[1]}" not in mentioned, c[0] != "metrics", -counts[c], c)
    )
    return ranked[:fit]


def _started(ms: int) -> str:
    from keel._time import to_datetime

    return to_datetime(ms).strftime("%Y-%m-%d %H:%M")


@app.command("search")
def search(  # noqa: PLR0917 - Typer passes every option positionally
    filter: Annotated[
        str, typer.Argument(help='e.g. "metrics.auc > 0.9 and params.C in (0.1, 0.5)"')
    ] = "",
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Limit to projects.")
    ] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", "-o", help="e.g. -metrics.auc (repeatable).")
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="Page size.")] = 50,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="From the last page.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Find runs with the search language (see docs/search.md)."""
    page = _client().search_runs(
        filter,
        projects=project or None,
        order_by=order_by or (),
        max_results=max_results,
        page_token=page_token,
    )
    if json:
        print_json({"runs": [r.to_dict() for r in page.items], "next_page_token": page.next_token})
        return
    if not page.items:
        console.print("No runs match.")
        return
    mentioned = " ".join([filter, *(order_by or ())])
    # As many key columns as fit the terminal beside the fixed ones; `show` and --json have all.
    fit = min(_MAX_KEY_COLUMNS, max(1, (console.width - _FIXED_WIDTH) // _KEY_WIDTH))
    keys = _columns(page.items, mentioned, fit)
    one_project = len({r.project for r in page.items}) == 1
    columns = ["run", *([] if one_project else ["project"]), "name", "status", "started", "took"]
    columns += [f"{kind}.{key}" for kind, key in keys]
    rows = [
        [r.id[:8], *([] if one_project else [r.project]), r.name, str(r.status)]
        + [_started(r.start_ms), _duration(r)]
        + [getattr(r, kind).get(key) for kind, key in keys]
        for r in page.items
    ]
    if one_project:
        console.print(f"Project [bold]{page.items[0].project}[/]")
    table(None, columns, rows)
    if page.next_token:
        console.print(f"[dim]More runs: --page-token {page.next_token}[/]")


@app.command("show")
def show(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    json: JsonOpt = False,
) -> None:
    """Everything about one run: info, environment, params, metrics, tags, inputs, artifacts."""
    from keel._time import format_ms

    client = _client()
    r = resolve_run(client, run)
    files = client.list_artifacts(r.id)
    if json:
        doc = r.to_dict()
        doc["artifacts"] = [{"path": f.path, "size": f.size, "digest": f.digest} for f in files]
        print_json(doc)
        return
    info = [
        ("id", r.id),
        ("project", r.project),
        ("name", r.name),
        ("status", str(r.status)),
        ("started", format_ms(r.start_ms)),
        ("ended", format_ms(r.end_ms)),
        ("parent", r.parent_id),
        ("user@host", f"{r.env.user}@{r.env.host}"),
        ("git", f"{r.env.git_commit or '-'}{' (dirty)' if r.env.git_dirty else ''}"),
        ("python", r.env.python_version),
        ("note", r.note),
    ]
    table("Run", ["field", "value"], [(k, v) for k, v in info if v])
    for title, mapping in (("Params", r.params), ("Metrics (latest)", r.metrics), ("Tags", r.tags)):
        if mapping:
            table(title, ["key", "value"], sorted(mapping.items()))
    if r.io:
        table(
            "Inputs / outputs",
            ["direction", "kind", "ref"],
            [(i.direction, i.kind, i.ref) for i in r.io],
        )
    if files:
        table("Artifacts", ["path", "size"], [(f.path, f.size) for f in files])


@app.command("compare")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    all_keys: Annotated[bool, typer.Option("--all", help="Also show keys that are equal.")] = False,
    json: JsonOpt = False,
) -> None:
    """Params and metrics of runs side by side; by default only the keys that differ."""
    from keel.errors import InvalidInput

    if len(runs) < 2:
        raise InvalidInput("compare needs at least two runs", field="runs")
    client = _client()
    resolved = [resolve_run(client, ref) for ref in runs]
    rows: list[list[object]] = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in resolved for k in getattr(r, kind)})
        for key in keys:
            values = [getattr(r, kind).get(key) for r in resolved]
            if all_keys or len({repr(v) for v in values}) > 1:
                rows.append([f"{kind}.{key}", *values])
    if json:
        print_json({"runs": [r.id for r in resolved], "rows": rows})
        return
    table(None, ["key", *(f"{r.id[:8]} {r.name}" for r in resolved)], rows)
    if not rows:
        console.print("The runs have the same params and metrics (use --all to list them).")


@app.command("delete")
def delete(
    runs: Annotated[list[str], typer.Argument(help="Run ids or unique prefixes.")],
    hard: Annotated[
        bool, typer.Option("--hard", help="Remove for good (default: soft delete).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json: JsonOpt = False,
) -> None:
    """Delete runs: hidden from search (soft, the default) or removed for good (--hard)."""
    client = _client()
    resolved = [resolve_run(client, ref) for ref in runs]
    if hard and not yes:
        names = ", ".join(r.id[:8] for r in resolved)
        typer.confirm(f"Permanently delete {len(resolved)} run(s) ({names})?", abort=True)
    for r in resolved:
        client.delete_run(r.id, hard=hard)
    if json:
        print_json({"deleted": [r.id for r in resolved], "hard": hard})
    else:
        console.print(f"Deleted {len(resolved)} run(s){' permanently' if hard else ''}.")
