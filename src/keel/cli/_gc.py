"""``keel gc``: delete stored objects that nothing refers to any more."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._output import console, print_json


def gc(
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: dry run).")] = False,
    grace: Annotated[
        float, typer.Option("--grace-hours", help="Keep objects younger than this.")
    ] = 24.0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Find artifact objects no run, dataset version, model version or other record refers
    to; delete them with --apply."""
    from keel.artifacts import open_content_store
    from keel.data import open_data_store
    from keel.models import open_registry
    from keel.tracking import open_store

    # Every store that records digests contributes: a model logged outside a run is referred
    # to by the registry alone.
    keep = (
        set(open_store().referenced_digests())
        | set(open_data_store().referenced_digests())
        | set(open_registry().referenced_digests())
    )
    report = open_content_store().gc(keep, dry_run=not apply, older_than_s=grace * 3600)
    if json:
        print_json(report.to_dict())
        return
    verb = "Deleted" if apply else "Would delete"
    console.print(
        f"{verb} {report.deleted_count} unreferenced object(s), {report.deleted_bytes:,} bytes; "
        f"kept {report.kept_count}."
    )
    if not apply and report.deleted_count:
        console.print("[dim]Run `keel gc --apply` to delete them.[/]")
