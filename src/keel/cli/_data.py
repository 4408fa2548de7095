"""``keel data``: add, list, show, get, compare, tag and remove dataset versions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli import _contract
from keel.cli._output import console, print_json, table, transfer_progress

if TYPE_CHECKING:
    from keel.data import DatasetVersion

app = typer.Typer(help="Version datasets: tables and folders.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _row(v: DatasetVersion) -> list[Any]:
    from keel._time import format_ms

    amount = f"{v.rows:,} rows" if v.rows is not None else f"{v.files or 0:,} files"
    return [v.ref, v.kind, amount, _size(v.size), ",".join(v.tags), format_ms(v.created_ms)]


@app.command("add")
def add(  # noqa: PLR0917 - Typer passes every option positionally
    source: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet, JSON lines, or a folder.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    description: Annotated[str, typer.Option("--description", "-m")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="Key column (repeatable).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Add SOURCE as the next version of NAME (nothing new if its content is unchanged)."""
    import keel.data

    # The bar's total costs a walk of the folder: only for a person watching, not for --json.
    total = 0 if json or not source.is_dir() else _folder_size(source)
    with transfer_progress("adding", total, quiet=not total) as advance:
        v = keel.data.add(
            source,
            name=name,
            description=description,
            tags=tag or (),
            key=key,
            progress=advance if total else None,
        )
    if json:
        print_json(v.to_dict())
    elif v.existed:
        console.print(f"Unchanged: {v.ref} already holds this content ({v.digest[:16]}).")
    else:
        console.print(f"Added {v.ref} ({_row(v)[2]}, {_size(v.size)}, {v.digest[:16]}).")


@app.command("ls")
def ls(
    name: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    json: JsonOpt = False,
) -> None:
    """List dataset versions."""
    import keel.data

    versions = keel.data.ls(name)
    if json:
        print_json([{k: v for k, v in x.to_dict().items() if k != "profile"} for x in versions])
    elif not versions:
        console.print("No datasets.")
    else:
        table(None, ["ref", "kind", "size", "bytes", "tags", "created"], map(_row, versions))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="name, name@vN, name@tag or name@latest.")],
    json: JsonOpt = False,
) -> None:
    """Show a version: provenance, the runs that read or wrote it, schema and column profile."""
    import keel.data
    from keel.tracking import open_store

    v = keel.data.show(ref)
    runs = open_store()
    used_by = runs.runs_using(v.ref)
    written_by = runs.runs_using(v.ref, direction="output")
    if json:
        print_json({**v.to_dict(), "used_by_runs": used_by, "written_by_runs": written_by})
        return
    console.print(f"[bold]{v.ref}[/]  {v.kind}  {_row(v)[2]}  {_size(v.size)}", highlight=False)
    console.print(f"digest: {v.digest}", highlight=False)
    for label, value in (
        ("tags", ", ".join(v.tags)),
        ("key", ", ".join(v.key)),
        ("description", v.description),
        ("source", v.source_uri),
        ("produced by", v.produced_by),
        ("written by runs", ", ".join(r[:8] for r in written_by)),
        ("used by runs", ", ".join(r[:8] for r in used_by)),
    ):
        if value:
            console.print(f"{label}: {value}", highlight=False)
    columns = v.profile.get("columns", {})
    if columns:
        table(
            "columns",
            ["column", "type", "nulls", "distinct", "min", "max", "mean", "top"],
            [
                (
                    c,
                    p.get("type"),
                    f"{p.get('null_share', 0):.1%}",
                    p.get("distinct"),
                    p.get("min"),
                    p.get("max"),
                    p.get("mean"),
                    ", ".join(str(t[0]) for t in p.get("top", [])[:3]),
                )
                for c, p in columns.items()
            ],
        )


@app.command("get")
def get(
    ref: Annotated[str, typer.Argument(help="name, name@vN, name@tag or name@latest.")],
    dest: Annotated[
        Path | None, typer.Option("--dest", "-d", help="File (tables) or folder to write.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Write a version to disk: a table as Parquet, a folder as its files (verified)."""
    import keel.data

    v = keel.data.show(ref)
    with transfer_progress("downloading", v.size, quiet=json) as advance:
        path = keel.data.default().get(v, as_="path", dest=dest, progress=advance)
    if json:
        print_json({"ref": v.ref, "path": str(path)})
    else:
        console.print(f"Wrote {v.ref} to {path}")


@app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="The old version.")],
    b: Annotated[str, typer.Argument(help="The new version.")],
    json: JsonOpt = False,
) -> None:
    """What changed from A to B: schema, rows (by key), files, column statistics."""
    import keel.data

    d = keel.data.diff(a, b)
    if json:
        print_json(d.to_dict())
        return
    console.print(f"[bold]{d.a} -> {d.b}[/]", highlight=False)
    if d.same:
        console.print("No changes in schema, rows or files.")
    if d.rows_a is not None:
        console.print(f"rows: {d.rows_a:,} -> {d.rows_b:,}")
    for label, items in (
        ("columns added", d.columns_added),
        ("columns removed", d.columns_removed),
        ("files added", d.files_added),
        ("files removed", d.files_removed),
        ("files changed", d.files_changed),
    ):
        if items:
            console.print(f"{label}: {', '.join(items)}", highlight=False)
    for column, (old, new) in d.type_changes.items():
        console.print(f"type of {column}: {old} -> {new}", highlight=False)
    if d.key:
        console.print(
            f"by key ({', '.join(d.key)}): +{d.rows_added} added, -{d.rows_removed} removed, "
            f"~{d.rows_changed} changed"
        )
    if d.column_shifts:
        table(
            "column shifts",
            ["column", "statistic", "before", "after"],
            [
                (c, stat, old, new)
                for c, stats in d.column_shifts.items()
                for stat, (old, new) in stats.items()
            ],
        )


@app.command("tag")
def tag(
    ref: Annotated[str, typer.Argument(help="The version to tag.")],
    name: Annotated[str, typer.Argument(help="Tag, e.g. prod (then NAME@prod resolves).")],
    json: JsonOpt = False,
) -> None:
    """Point a tag at a version (moving it from another version of the dataset)."""
    import keel.data

    v = keel.data.tag(ref, name)
    if json:
        print_json(v.to_dict())
    else:
        console.print(f"{v.name}@{name} -> {v.ref}", highlight=False)


@app.command("rm")
def rm(
    ref: Annotated[str, typer.Argument(help="The version to remove.")],
    json: JsonOpt = False,
) -> None:
    """Hide a version (its bytes go at the next `keel gc --apply`)."""
    import keel.data

    v = keel.data.rm(ref)
    if json:
        print_json({"ref": v.ref, "deleted": True})
    else:
        console.print(f"Removed {v.ref}; `keel gc --apply` frees its bytes.")


# Contracts and validation live in their own module; they are part of this group.
app.add_typer(_contract.app, name="contract")
app.command("validate")(_contract.validate)
