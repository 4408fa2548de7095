"""``keel db``: the metadata database's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._output import console, print_json

app = typer.Typer(help="Metadata database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Apply pending migrations (safe while other processes use the database)."""
    from keel.config import get_settings
    from keel.db import current_revision, engine_for, head_revision
    from keel.db import upgrade as run_upgrade

    uri = get_settings().tracking_uri
    engine = engine_for(uri)
    before = current_revision(engine)
    after = run_upgrade(engine)
    if json:
        print_json({"tracking_uri": uri, "from": before, "to": after, "head": head_revision()})
    elif before == after:
        console.print(f"Database is current at revision {after}.")
    else:
        console.print(f"Upgraded {uri} from {before or 'empty'} to {after}.")


@app.command("current")
def current(
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show the database's schema revision and the newest one this Keel ships."""
    from keel.config import get_settings
    from keel.db import current_revision, engine_for, head_revision

    uri = get_settings().tracking_uri
    rev, head = current_revision(engine_for(uri)), head_revision()
    if json:
        print_json({"tracking_uri": uri, "current": rev, "head": head})
    else:
        state = "current" if rev == head else "needs `keel db upgrade`"
        console.print(f"{uri}: revision {rev or 'empty'} (head {head}, {state})")
