"""``keel server``: the team server (FastAPI on uvicorn), auth on from the first start."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import console, fail

if TYPE_CHECKING:
    from keel.server._settings import ServerSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    if url.startswith(("postgresql", "sqlite")):
        return make_url(url).render_as_string(hide_password=True)
    return url


def server(  # noqa: PLR0917 - Typer passes every option positionally
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Server processes sharing the port.")
    ] = 1,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="Metadata database: sqlite:///path or postgresql://… "
            "(default: KEEL_TRACKING_URI).",
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            "--artifact-uri",
            help="Artifact root: a folder or s3://bucket/prefix (default: KEEL_ARTIFACTS_URI).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host header name to answer besides localhost and the bind host (repeatable).",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="An origin (https://app.example.com) allowed to call the API from a browser "
            "(repeatable; CORS is off without one).",
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow binding an address other hosts can reach (put TLS in front of it).",
        ),
    ] = False,
    https: Annotated[
        bool,
        typer.Option(
            "--https",
            help="Clients reach the server over HTTPS (TLS at a proxy): Secure cookies and HSTS.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level (debug, info, warning).")
    ] = "info",
) -> None:
    """Run the team server: REST API under /api/v1, docs at /docs, users, tokens and audit.

    On the first start the `admin` account is created with KEEL_ADMIN_PASSWORD, or with a random
    password printed once here. Several workers (or machines) over one PostgreSQL database and
    one bucket behave as one server. See docs/server.md.
    """
    if not _is_loopback(host) and not allow_remote:
        fail(
            f"refusing to bind {host}: other machines could reach this server",
            hint="pass --allow-remote (with TLS in front of the server, and "
            "--allowed-host <name> for the name clients use), or bind 127.0.0.1",
        )
    env = {
        "KEEL_SERVER_HOST": host,
        "KEEL_SERVER_PORT": str(port),
        "KEEL_SERVER_WORKERS": str(workers),
    }
    if tracking_uri:
        env["KEEL_SERVER_TRACKING_URI"] = tracking_uri
    if artifact_uri:
        env["KEEL_SERVER_ARTIFACTS_URI"] = artifact_uri
    if allowed_host:
        env["KEEL_SERVER_ALLOWED_HOSTS"] = _json_list(allowed_host)
    if cors_origin:
        env["KEEL_SERVER_CORS_ORIGINS"] = _json_list(cors_origin)
    if https:
        env["KEEL_SERVER_HTTPS"] = "true"
    # Worker processes build their app from these variables alone (see ServerSettings).
    os.environ.update(env)
    settings, tracking, artifacts = _prepare()
    scheme = "https" if settings.https else "http"
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"Keel server on {scheme}://{shown}:{port} ({workers} worker{'s' * (workers > 1)})\n"
        f"  metadata:  {_hide_password(tracking)}\n  artifacts: {artifacts}\n"
        f"  API docs:  {scheme}://{shown}:{port}/docs",
        highlight=False,
        markup=False,  # paths and URLs may hold brackets
    )
    _run(host=host, port=port, workers=workers, log_level=log_level)


def _json_list(values: list[str]) -> str:
    import orjson

    return orjson.dumps(values).decode()


def _prepare() -> tuple[ServerSettings, str, str]:
    """Check the settings, migrate the database and create the admin on first start, once,
    in this process, before any worker starts."""
    from pydantic import ValidationError

    from keel.server._settings import ServerSettings
    from keel.server._state import open_state

    try:
        settings = ServerSettings()
    except ValidationError as exc:
        fail(f"server settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    password = os.environ.pop("KEEL_ADMIN_PASSWORD", None) or None
    state = open_state(settings)
    try:
        generated = state.auth.bootstrap_admin(password)
    finally:
        state.close()
        from keel.db import dispose_all

        dispose_all()  # workers open their own connections
    if generated is not None:
        _show_generated(generated)
    return settings, state.tracking_uri, state.artifacts_uri


def _show_generated(password: str) -> None:
    from rich.panel import Panel
    from rich.text import Text

    # Printed to the terminal once; never passed to logging, never stored in plain text.
    console.print(
        Panel(
            Text(
                f"user:     admin\npassword: {password}\n\n"
                "Shown only now. Sign in and create your own users and tokens; set "
                "KEEL_ADMIN_PASSWORD on the first start to choose it instead."
            ),
            title="Keel admin account created",
            border_style="yellow",
        ),
        highlight=False,
    )


def _run(*, host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    from keel._uvicorn import KeelHttpProtocol

    uvicorn.run(
        "keel.server._app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=KeelHttpProtocol,
        ws="none",
        lifespan="on",  # closes the stores on shutdown
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )
