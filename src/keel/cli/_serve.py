"""``keel serve``: the inference server for a registered model and/or stored deployments
(FastAPI on uvicorn)."""

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
        str | None,
        typer.Argument(
            help="The version to serve: churn@champion, churn/3, models:/churn/3 "
            "(optional with --deployment)."
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            "-d",
            help="A stored deployment to serve (repeatable): champion, challenger, shadow or "
            "canary, batching and limits from its record.",
        ),
    ] = None,
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
    poll_s: Annotated[
        float,
        typer.Option(
            "--poll-s",
            min=0.05,
            help="Seconds between checks for a moved alias or a changed deployment (hot swap).",
        ),
    ] = 5.0,
    log_sample_rate: Annotated[
        float,
        typer.Option(
            "--log-sample-rate", min=0.0, max=1.0, help="Share of requests in the prediction log."
        ),
    ] = 1.0,
    log_exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--log-exclude",
            help="A column never written to the prediction log (repeatable; input.COL or "
            "output.COL for one side).",
        ),
    ] = None,
    no_prediction_log: Annotated[
        bool,
        typer.Option(
            "--no-log",
            "--no-prediction-log",
            help="Do not log predictions (of the model argument and of the deployments).",
        ),
    ] = False,
    log_as: Annotated[
        str | None,
        typer.Option(
            "--log-as",
            help="The deployment name the model argument's predictions are logged under "
            "(default: the model's name).",
        ),
    ] = None,
) -> None:
    """Serve a model or deployments: POST /invocations (MLflow payloads),
    /v2/models/NAME/infer (Open Inference Protocol v2), /v2/health/ready, /metrics
    (Prometheus), /docs; with deployments also POST /feedback.

    Concurrent requests are micro-batched; inputs are checked against the model's signature.
    A moved alias or a changed deployment is loaded and swapped in without dropping requests.
    Every request is logged to the artifact store (a plain model under its own name; --no-log
    turns it off). There is no user auth in the inference app: it binds 127.0.0.1 by default.
    See docs/serving.md.
    """
    from keel.errors import KeelError
    from keel.serving._factory import SPEC_VAR, ServeSpec
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

    if model is None and not deployment:
        fail("nothing to serve", hint="name a model (keel serve churn@champion) or --deployment")
    try:
        spec = ServeSpec(
            model=model,
            deployments=tuple(deployment or ()),
            settings=settings,
            poll_s=poll_s,
            prediction_log=not no_prediction_log,
            log_sample_rate=log_sample_rate,
            log_exclude=tuple(log_exclude or ()),
            log_as=log_as,
        )
    except KeelError as exc:
        fail(str(exc), hint="see: keel serve --help")
    served: ModelHost | None = None
    shown_what = []
    model_name = ""
    if model is not None:
        if workers == 1:
            # Loaded here, once: a missing, unready, untrusted or signature-less model is one
            # readable error, and the single worker serves this very copy.
            served = ModelHost.load(model, settings=settings)
            shown_what.append(f"models:/{served.ref}")
            model_name = served.name
        else:
            uri, model_name = _check_version(model)  # each worker loads its own copy
            shown_what.append(uri)
    shown_what += [f"deployment {d}" for d in spec.deployments]
    os.environ[SPEC_VAR] = spec.to_env()
    app: Any = None
    if workers == 1:
        from keel.serving._factory import build_app

        try:
            app = build_app(spec, model_host=served)
        except KeelError as exc:
            fail(str(exc), hint="check it with: keel deployments show NAME")
    else:
        for name in spec.deployments:
            _check_deployment(name)
    shown = f"[{host}]" if ":" in host else host
    if model is not None and spec.prediction_log:
        from keel.serving._factory import log_name

        logged_as = spec.log_as or log_name(model_name)
        console.print(
            f"Logging predictions of {model} as deployment {logged_as} (--no-log to turn off)",
            highlight=False,
            markup=False,
        )
    console.print(
        f"Serving {', '.join(shown_what)} on http://{shown}:{port} "
        f"({workers} worker{'s' * (workers > 1)}); docs at http://{shown}:{port}/docs",
        highlight=False,
        markup=False,
    )
    import uvicorn

    from keel._uvicorn import KeelHttpProtocol

    target: Any = app if app is not None else "keel.serving._factory:create_app_from_env"
    uvicorn.run(
        target,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        http=KeelHttpProtocol,
        ws="none",
        lifespan="on",
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )


def _check_deployment(name: str) -> None:
    """Fail before forking workers if ``name`` is not a stored deployment."""
    from keel.errors import KeelError
    from keel.serving._deployments import open_deployments

    deployments = open_deployments()
    try:
        deployments.get(name)
    except KeelError as exc:
        fail(str(exc), hint="list them with: keel deployments ls")
    finally:
        deployments.store.close()
        deployments.registry.close()


def _check_version(model: str) -> tuple[str, str]:
    """The version's URI and model name, after the checks ``load`` would fail on, read from
    its record only (the supervising process of several workers never loads the model)."""
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
    return version.uri, version.name
