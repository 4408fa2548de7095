"""The ``keel`` command. One module per command group; a command parses, calls the Python API,
and prints. Heavy modules are imported inside commands so ``keel --help`` stays fast.

Commands load lazily: :data:`COMMANDS` names every top-level command and group and where it is
defined, and a module is imported only when its command runs (or when help lists them all), so
``keel data add`` pays for ``keel.cli._data`` and nothing else. A new group is one line there.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from keel.errors import KeelError

# name -> "module:attribute": a Typer app (a group) or a function (a single command), in the
# order ``keel --help`` lists them.
COMMANDS: dict[str, str] = {
    "init": "keel.cli._init:init",
    "gc": "keel.cli._gc:gc",
    "server": "keel.cli._server:server",
    "serve": "keel.cli._serve:serve",
    "db": "keel.cli._db:app",
    "runs": "keel.cli._runs:app",
    "artifacts": "keel.cli._artifacts:app",
    "data": "keel.cli._data:app",
    "models": "keel.cli._models:app",
    "users": "keel.cli._users:app",
    "tokens": "keel.cli._tokens:app",
    "projects": "keel.cli._projects:app",
    "audit": "keel.cli._audit:app",
    "ci": "keel.cli._ci:app",
    "deployments": "keel.cli._deployments:app",
    "monitor": "keel.cli._monitor:app",
    "alerts": "keel.cli._alerts:app",
}


def _load(name: str, target: str) -> Any:
    """The Click command for ``target``, importing its module now."""
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        command: Any = typer.main.get_group(found)  # a group even with one command
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name: the names come from :data:`COMMANDS`, each command is
    built on first lookup. Typer's suggestions for a mistyped name read only the names."""

    def __init__(self, loaded: MutableMapping[str, Any]) -> None:
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = _load(name, COMMANDS[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class _LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)


# At exit, the garbage collector's passes over everything a command imported (SQLAlchemy,
# pydantic, Typer) cost a short command tens of milliseconds and free nothing that matters:
# freezing skips them. Registered first, so it runs after Keel's other exit handlers.
atexit.register(gc.freeze)

app = typer.Typer(
    name="keel",
    cls=_LazyGroup,
    help="Keel: data, experiments, models, serving and monitoring in one self-hosted tool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from keel import __version__

        sys.stdout.write(f"keel {__version__}\n")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keel: data, experiments, models, serving and monitoring in one self-hosted tool."""


def main() -> None:
    """Console-script entry point: Keel errors become one readable line and exit code 1."""
    try:
        app()
    except KeelError as exc:
        from keel.cli._output import fail

        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
