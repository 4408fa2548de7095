"""``keel serve``: the inference server for one registered model (FastAPI on uvicorn)."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Any

import typer

from keel.cli._output import console, fail


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(  # noqa: PLR0917 - Typer passes every option positionally
    model: Annotated[
        str, typer.Argument(help="The version to serve: churn@champion, churn/3, models:/churn/3.")
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Processes, each with the model.")
    ] = 1,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Rows per coalesced predict call.")
    ] = 32,
    max_latency_ms: Annotated[
        float,
        typer.Option("--max-latency-ms", min=0, help="How long a batch waits for company."),
    ] = 2.0,
    max_queue: Annotated[
        int,
        typer.Option("--max-queue", min=1, help="Waiting requests before 503 + Retry-After."),
    ] = 1024,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", min=0.001, help="Predict time before 504.")
    ] = 10.0,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Rows in one request before 413.")
    ] = 10_000,
    allow_extra_columns: Annotated[
        bool,
        typer.Option("--allow-extra-columns", help="Drop unknown columns instead of 422."),
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow binding an address other hosts can reach (the app has no auth: "
            "put an authenticating proxy in front).",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level (debug, info, warning).")
    ] = "warning",
) -> None:
    """Serve a model: POST /invocations (MLflow payloads), /v2/models/NAME/infer (Open
    Inference Protocol v2), /v2/health/ready, /metrics (Prometheus), /docs.

    Concurrent requests are micro-batched; inputs are checked against the model's signature.
    There is no user auth in the inference app: it binds 127.0.0.1 by default. See
    docs/serving.md.
    """
    from keel.serving._factory import MODEL_VAR, SETTINGS_VAR, settings_to_env
    from keel.serving._settings import ServingSettings

    if not _is_loopback(host) and not allow_remote:
        fail(
            f"refusing to bind {host}: the inference app has no auth and other machines "
            "could reach it",
            hint="bind 127.0.0.1, or pass --allow-remote with an authenticating proxy in front",
        )
    settings = ServingSettings(
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        max_queue=max_queue,
        timeout_s=timeout_s,
        max_rows=max_rows,
        allow_extra_columns=allow_extra_columns,
    )
    from keel.serving._host import ModelHost

    served: ModelHost | None = None
    if workers == 1:
        # Loaded here, once: a missing, unready, untrusted or signature-less model is one
        # readable error, and the single worker serves this very copy.
        served = ModelHost.load(model, settings=settings)
        uri = f"models:/{served.ref}"
    else:
        uri = _check_version(model)  # each worker loads its own copy
    os.environ[MODEL_VAR] = uri
    os.environ[SETTINGS_VAR] = settings_to_env(settings)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"Serving {uri} on http://{shown}:{port} "
        f"({workers} worker{'s' * (workers > 1)}); docs at http://{shown}:{port}/docs",
        highlight=False,
        markup=False,
    )
    import uvicorn

    from keel.serving._protocol import ServingHttpProtocol

    target: Any = "keel.serving._factory:create_app_from_env"
    if served is not None:
        from keel.serving._app import create_serving_app

        target = create_serving_app({served.name: served}, settings=settings)
    uvicorn.run(
        target,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        http=ServingHttpProtocol,
        ws="none",
        lifespan="on",
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


def _check_version(model: str) -> str:
    """The version's URI, after the checks ``load`` would fail on, read from its record only
    (the supervising process of several workers never loads the model itself)."""
    import keel.models
    from keel.models import VersionStatus

    version = keel.models.resolve_uri(model)
    if version.status is not VersionStatus.READY:
        fail(f"{version.uri} is {version.status}; only ready versions can be served")
    if version.signature is None or not version.signature.inputs:
        fail(
            f"{version.uri} has no signature",
            hint="log it with keel.models.log(..., signature_from=X) to serve it",
        )
    if version.requires_trust and not version.trusted:
        fail(
            f"{version.uri} runs code when loaded and is not trusted",
            hint=f"an admin can run: keel models trust {version.name} {version.version} "
            "--reason '…'",
        )
    return version.uri
