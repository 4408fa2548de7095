"""``keel audit``: check the audit log's hash chain and search it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, err_console, print_json, table
from keel.cli._users import auth_store

if TYPE_CHECKING:
    from keel.auth import AuditRecord

app = typer.Typer(help="Verify and search the audit log.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_time(text: str, *, field: str) -> int:
    """Epoch ms from ISO-8601 (UTC unless it says otherwise) or a span back from now (``24h``)."""
    from keel import _time
    from keel.cli._tokens import parse_duration
    from keel.errors import InvalidInput

    if text and text[-1] in "smhdw" and text[:-1].strip().isdigit():
        return _time.now_ms() - int(parse_duration(text, field=field).total_seconds() * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"give an ISO date/time (2026-11-22T10:00) or a span like 24h or 7d; got {text!r}",
            field=field,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _row(record: AuditRecord) -> list[object]:
    from rich.markup import escape

    from keel._time import format_ms

    detail = ", ".join(f"{k}={v}" for k, v in sorted(record.detail.items()))
    # Records hold text from anyone who can reach the server (a login's username): printed as
    # plain text, never as Rich markup.
    texts = [record.actor, record.action, record.resource, record.outcome, record.address, detail]
    return [record.id, format_ms(record.ts_ms), *(None if t is None else escape(t) for t in texts)]


_COLUMNS = ["id", "time", "actor", "action", "resource", "outcome", "address", "detail"]


@app.command("verify")
def verify(json: JsonOpt = False) -> None:
    """Check every record's hash and the chain's head; exit 1 naming the first bad record."""
    auth = auth_store()
    result = auth.audit_verify()
    bad = None
    if not result.ok and result.first_bad_id is not None:
        bad = auth.audit_record(result.first_bad_id)
    if json:
        print_json({**result.to_dict(), "record": None if bad is None else bad.to_dict()})
    elif result.ok:
        console.print(
            f"Audit log OK: {result.checked} records, head {result.head_hash}. "
            "Keep the head hash elsewhere to detect a rewrite of the whole log."
        )
    else:
        err_console.print(
            f"[bold red]Audit log check FAILED[/] after {result.checked} good records: "
            f"{result.reason}",
            highlight=False,
        )
        if bad is not None:
            table("First bad record", _COLUMNS, [_row(bad)])
    if not result.ok:
        raise typer.Exit(1)


@app.command("search")
def search(  # noqa: PLR0917 - Typer passes every option positionally
    user: Annotated[str | None, typer.Option("--user", "-u", help="Actor (any case).")] = None,
    resource: Annotated[
        str | None,
        typer.Option("--resource", "-r", help="e.g. project:churn, or a prefix: project:*"),
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", "-a", help="e.g. login, or a prefix: token.*")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time or a span back, e.g. 24h.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time or a span back.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 100,
    json: JsonOpt = False,
) -> None:
    """Search the audit log, newest first."""
    records = auth_store().audit_search(
        user=user,
        resource=resource,
        action=action,
        since_ms=None if since is None else parse_time(since, field="since"),
        until_ms=None if until is None else parse_time(until, field="until"),
        limit=limit,
    )
    if json:
        print_json([r.to_dict() for r in records])
    elif not records:
        console.print("No audit records match.")
    else:
        table(None, _COLUMNS, map(_row, records))
