"""``keel init``: create a project folder's ``.keel/`` home."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import console, print_json


def init(
    path: Annotated[Path, typer.Argument(help="Folder to initialise (default: current).")] = Path(),
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a .keel/ folder here: metadata (SQLite) and artifacts live under it."""
    from keel.config import HOME_DIRNAME, Settings
    from keel.db import connect

    home = (path / HOME_DIRNAME).resolve()
    created = not home.exists()
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=home)
    connect(settings.tracking_uri)
    result = {
        "home": str(home),
        "created": created,
        "tracking_uri": settings.tracking_uri,
        "artifacts_uri": settings.artifacts_uri,
    }
    if json:
        print_json(result)
        return
    verb = "Initialised" if created else "Already initialised:"
    console.print(f"{verb} [bold]{home}[/]")
    console.print(f"  metadata  {settings.tracking_uri}")
    console.print(f"  artifacts {settings.artifacts_uri}")
