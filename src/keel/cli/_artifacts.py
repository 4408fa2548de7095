"""``keel artifacts``: list and download the files a run stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import console, print_json, table, transfer_progress

app = typer.Typer(help="List and download run artifacts.", no_args_is_help=True)


@app.command("ls")
def ls(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    path: Annotated[str, typer.Argument(help="Folder inside the run's artifacts.")] = "",
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List a run's artifact files under PATH."""
    from keel.cli._runs import resolve_run
    from keel.tracking import Client

    client = Client()
    files = client.list_artifacts(resolve_run(client, run).id, path)
    if json:
        print_json([{"path": f.path, "size": f.size, "digest": f.digest} for f in files])
    elif not files:
        console.print("No artifacts.")
    else:
        table(None, ["path", "size", "digest"], [(f.path, f.size, f.digest[:16]) for f in files])


@app.command("get")
def get(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    path: Annotated[str, typer.Argument(help="File or folder inside the run's artifacts.")] = "",
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Where to write.")] = Path(),
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Download a run's artifacts (verified against their hashes) into DEST."""
    from keel.cli._runs import resolve_run
    from keel.tracking import Client

    client = Client()
    run_id = resolve_run(client, run).id
    files = client.list_artifacts(run_id, path)
    total = sum(f.size for f in files)
    with transfer_progress("downloading", total, quiet=json) as advance:
        written = client.download_artifacts(run_id, path, dest, progress=advance)
    if json:
        print_json({"run": run_id, "files": [str(p) for p in written], "bytes": total})
    else:
        console.print(f"Downloaded {len(written)} file(s), {total:,} bytes, into {dest.resolve()}")


@app.command("put")
def put(
    run: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
    source: Annotated[Path, typer.Argument(help="A file or a folder to upload.")],
    artifact_path: Annotated[
        str | None, typer.Option("--artifact-path", "-a", help="Folder inside the run.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Upload a file or a folder to a run's artifacts (hashed, deduplicated, atomic)."""
    from keel.cli._runs import resolve_run
    from keel.errors import InvalidInput
    from keel.tracking import Client

    if not source.exists():
        raise InvalidInput(f"{str(source)!r} does not exist", field="source")
    client = Client()
    run_id = resolve_run(client, run).id
    sizes = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in sizes)
    with transfer_progress("uploading", total, quiet=json) as advance:
        if source.is_file():
            records = [client.log_artifact(run_id, source, artifact_path, progress=advance)]
        else:
            records = client.log_artifacts(run_id, source, artifact_path, progress=advance)
    if json:
        print_json([{"path": r.path, "size": r.size, "digest": r.digest} for r in records])
    else:
        console.print(f"Uploaded {len(records)} file(s), {total:,} bytes, to run {run_id[:8]}")
