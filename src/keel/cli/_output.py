"""Printing for people (Rich tables) and for scripts (``--json``).

Rich loads on the first thing printed for people: a command run with ``--json`` never imports
it (CLI start-up is part of every command's time).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, cast

import orjson

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _rich_console(*, stderr: bool) -> Console:
    from rich.console import Console

    if stderr:
        return Console(stderr=True)
    # Piped output is not cut to 80 columns: a script or a pager gets whole tables.
    return Console(width=None if Console().is_terminal else 200)


class _LazyConsole:
    """Stands for a Rich console and makes it on first use."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(_rich_console(stderr=self._stderr), name)


console = cast("Console", _LazyConsole(stderr=False))
err_console = cast("Console", _LazyConsole(stderr=True))


def print_json(value: Any) -> None:
    """One JSON document on stdout, for scripts."""
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    sys.stdout.write("\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A readable table; empty cells for None."""
    from rich.table import Table

    t = Table(title=title, header_style="bold", title_justify="left")
    for i, column in enumerate(columns):
        # Ids, names and numbers never wrap; only the last column folds when space runs out.
        last = i == len(columns) - 1
        t.add_column(column, overflow="fold" if last else "ellipsis", no_wrap=not last)
    for row in rows:
        t.add_row(*("" if v is None else _cell(v) for v in row))
    console.print(t)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def fail(message: str, *, hint: str | None = None) -> NoReturn:
    """Print an error (and what to do next) to stderr and exit 1."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", highlight=False)
    raise SystemExit(1)


@contextmanager
def transfer_progress(
    description: str, total: int, *, quiet: bool
) -> Iterator[Callable[[int], None]]:
    """A byte progress bar for uploads and downloads; yields the callback that advances it
    (by the bytes just moved). Hidden with ``quiet`` (``--json``) and when not on a terminal."""
    if quiet:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=_rich_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
