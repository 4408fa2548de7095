"""``keel projects``: tracking projects and who may use them (roles per project)."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._output import console, print_json, table
from keel.cli._users import auth_store, cli_actor

app = typer.Typer(help="Create projects and grant users roles on them.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RoleOpt = Annotated[str, typer.Option("--role", "-r", help="viewer, editor, maintainer or admin.")]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The project's name.")],
    owner: Annotated[
        str | None, typer.Option("--owner", "-o", help="User who gets maintainer on it.")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    json: JsonOpt = False,
) -> None:
    """Create a tracking project, and make --owner its maintainer."""
    from keel.auth import Role
    from keel.tracking import open_store

    auth = auth_store()
    actor = cli_actor()
    if owner is not None:
        auth.get_user(owner)  # an unknown owner fails before anything is created
    project = open_store(auth.url).create_project(name, description=description)
    auth.audit(
        actor=actor,
        action="project.create",
        resource=f"project:{project.name}",
        address=None,
        outcome="ok",
    )
    if owner is not None:
        auth.grant(project.name, owner, Role.MAINTAINER, actor=actor)
    if json:
        print_json({"name": project.name, "id": project.id, "owner": owner})
    else:
        suffix = f"; {owner} is its maintainer" if owner else ""
        console.print(f"Created project {project.name}{suffix}.", markup=False)


@app.command("grant")
def grant(
    project: str,
    username: str,
    role: RoleOpt = "viewer",
    json: JsonOpt = False,
) -> None:
    """Give a user a role on a project (replaces the role they had there)."""
    from keel.auth import Role

    level = Role.parse(role)
    auth_store().grant(project, username, level, actor=cli_actor())
    if json:
        print_json({"project": project, "username": username, "role": level.label})
    else:
        console.print(f"{username} is now {level.label} on {project}.", markup=False)


@app.command("revoke")
def revoke(project: str, username: str, json: JsonOpt = False) -> None:
    """Remove a user's role on a project."""
    auth_store().revoke(project, username, actor=cli_actor())
    if json:
        print_json({"project": project, "username": username, "role": None})
    else:
        console.print(f"{username} has no role on {project} any more.", markup=False)


@app.command("members")
def members(
    project: Annotated[str | None, typer.Argument(help="One project; default all.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user.")] = None,
    json: JsonOpt = False,
) -> None:
    """Who has which role on which project (global admins have admin everywhere)."""
    from keel._time import format_ms

    grants = auth_store().list_grants(project=project, username=user)
    if json:
        print_json([g.to_dict() for g in grants])
        return
    if not grants:
        console.print("No roles granted.")
        return
    rows = [[g.project, g.username, g.role.label, format_ms(g.created_ms)] for g in grants]
    table(None, ["project", "user", "role", "since"], rows)
