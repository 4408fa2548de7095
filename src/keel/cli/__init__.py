"""The ``keel`` command. One module per command group; a command parses, calls the Python API,
and prints. Heavy modules are imported inside commands so ``keel --help`` stays fast."""

from __future__ import annotations

import sys

import typer

from keel.cli import (
    _artifacts,
    _audit,
    _ci,
    _data,
    _db,
    _deployments,
    _gc,
    _init,
    _models,
    _monitor,
    _projects,
    _runs,
    _serve,
    _server,
    _tokens,
    _users,
)
from keel.cli._output import fail
from keel.errors import KeelError

app = typer.Typer(
    name="keel",
    help="Keel: data, experiments, models, serving and monitoring in one self-hosted tool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(_init.init)
app.command("gc")(_gc.gc)
app.command("server")(_server.server)
app.command("serve")(_serve.serve)
app.add_typer(_db.app, name="db")
app.add_typer(_runs.app, name="runs")
app.add_typer(_artifacts.app, name="artifacts")
app.add_typer(_data.app, name="data")
app.add_typer(_models.app, name="models")
app.add_typer(_users.app, name="users")
app.add_typer(_tokens.app, name="tokens")
app.add_typer(_projects.app, name="projects")
app.add_typer(_audit.app, name="audit")
app.add_typer(_ci.app, name="ci")
app.add_typer(_deployments.app, name="deployments")
app.add_typer(_monitor.app, name="monitor")


def main() -> None:
    """Console-script entry point: Keel errors become one readable line and exit code 1."""
    try:
        app()
    except KeelError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
