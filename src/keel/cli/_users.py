"""``keel users``: accounts of the team server, managed on the server's machine.

These commands act directly on the metadata database named by ``KEEL_TRACKING_URI`` (the
server's own database), so they need no running server and no login: whoever can read that
database's credentials is already the operator. Every change is written to the audit log with
the operating-system user as the actor (``cli:<user>``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, print_json, table

if TYPE_CHECKING:
    from keel.auth import AuthStore, User

app = typer.Typer(help="Create, list, disable and enable user accounts.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
StdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def auth_store() -> AuthStore:
    """The auth store in the server's metadata database (``KEEL_TRACKING_URI``)."""
    from keel.auth import open_auth_store

    return open_auth_store()


def cli_actor() -> str:
    """Who is acting, for the audit log: the operating-system user running the command."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        name = "unknown"
    return f"cli:{name}"[:64]


def read_password(from_stdin: bool, *, prompt: str = "Password") -> str:
    """A new password: from stdin's first line, or typed twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


def _user_row(user: User) -> list[object]:
    from keel._time import format_ms

    return [
        user.username,
        "yes" if user.is_admin else "",
        "disabled" if user.disabled else "active",
        format_ms(user.created_ms),
        format_ms(user.last_login_ms),
    ]


def _show(user: User, verb: str, json: bool) -> None:
    if json:
        print_json(user.to_dict())
    else:
        console.print(f"{verb} user [bold]{user.username}[/].")


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-'; case is kept.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make a global admin.")] = False,
    password_stdin: StdinOpt = False,
    json: JsonOpt = False,
) -> None:
    """Create a user; prompts for the password twice unless --password-stdin."""
    password = read_password(password_stdin)
    user = auth_store().create_user(username, password, is_admin=admin, actor=cli_actor())
    _show(user, "Created", json)


@app.command("list")
def list_users(json: JsonOpt = False) -> None:
    """List every user with role and state."""
    users = auth_store().list_users()
    if json:
        print_json([u.to_dict() for u in users])
        return
    if not users:
        console.print("No users yet; the server creates 'admin' on first start.")
        return
    table(None, ["user", "admin", "state", "created", "last login"], map(_user_row, users))


@app.command("disable")
def disable(username: str, json: JsonOpt = False) -> None:
    """Disable a user: sessions end and tokens stop working at once."""
    _show(auth_store().disable_user(username, actor=cli_actor()), "Disabled", json)


@app.command("enable")
def enable(username: str, json: JsonOpt = False) -> None:
    """Enable a disabled user again (its tokens work again; sessions do not come back)."""
    _show(auth_store().enable_user(username, actor=cli_actor()), "Enabled", json)


@app.command("passwd")
def passwd(username: str, password_stdin: StdinOpt = False) -> None:
    """Set a user's password (ends all of the user's sessions)."""
    password = read_password(password_stdin, prompt="New password")
    auth_store().change_password(username, password, actor=cli_actor())
    console.print(f"Password of [bold]{username}[/] changed; their sessions were ended.")
