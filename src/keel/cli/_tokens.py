"""``keel tokens``: API tokens for programs (CI jobs, training scripts), on the server's machine.

A token is shown once, when created; Keel keeps only its SHA-256.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, err_console, print_json, table
from keel.cli._users import auth_store, cli_actor

if TYPE_CHECKING:
    from keel.auth import TokenInfo

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, field: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` as a timedelta."""
    from keel.errors import InvalidInput

    match = _DURATION.fullmatch(text)
    if not match or int(match[1]) <= 0:
        raise InvalidInput(
            f"give a positive number and a unit (s, m, h, d, w), like 30d; got {text!r}",
            field=field,
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _state(info: TokenInfo) -> str:
    from keel import _time

    if info.revoked_ms is not None:
        return "revoked"
    return "active" if info.active(_time.now_ms()) else "expired"


@app.command("create")
def create(  # noqa: PLR0917 - Typer passes every option positionally
    username: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.")],
    role: Annotated[
        str,
        typer.Option("--role", "-r", help="Ceiling: viewer, editor, maintainer or admin."),
    ] = "viewer",
    project: Annotated[
        list[str] | None,
        typer.Option("--project", "-p", help="Limit to a project (repeatable); default all."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 30d or 12h; default never.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    expires_in = None if expires is None else parse_duration(expires, field="expires")
    token, info = auth_store().create_token(
        username,
        name=name,
        role=role,
        projects=project or None,
        expires_in=expires_in,
        actor=cli_actor(),
    )
    if json:
        print_json({"token": token, **info.to_dict()})
        return
    print(token)  # alone on stdout, so `$(keel tokens create …)` captures just the token
    err_console.print(
        f"[yellow]Token {info.id} ({info.prefix}…) for {info.username}, role ceiling "
        f"{info.role.label}. Store it now: it will not be shown again.[/]",
        highlight=False,
    )


@app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    from keel._time import format_ms

    tokens = auth_store().list_tokens(user)
    if json:
        print_json([{**t.to_dict(), "state": _state(t)} for t in tokens])
        return
    if not tokens:
        console.print("No tokens.")
        return
    rows = [
        [
            t.id,
            t.username,
            t.name,
            t.prefix,
            t.role.label,
            _state(t),
            format_ms(t.expires_ms) or "never",
            format_ms(t.last_used_ms),
            "all" if t.projects is None else ", ".join(t.projects),
        ]
        for t in tokens
    ]
    columns = ["id", "user", "name", "prefix", "role", "state", "expires", "last used", "projects"]
    table(None, columns, rows)


@app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `keel tokens list`).")],
    json: JsonOpt = False,
) -> None:
    """Revoke a token; programs using it get 401 from now on."""
    info = auth_store().revoke_token(token_id, actor=cli_actor())
    if json:
        print_json(info.to_dict())
    else:
        console.print(f"Revoked token {info.id} ({info.name}) of {info.username}.")
