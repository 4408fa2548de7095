"""Building the app ``keel serve`` runs, from a ``ServeSpec``: one registered model
(``keel serve churn@champion``) and/or stored deployments (``--deployment churn-prod``), each
with its prediction log writer (a plain model logs under its own name, or ``log_as``), the
hot-swap sources, and ``POST /feedback``.

With several workers each uvicorn process builds its own app from the environment
(``KEEL_SERVE_SPEC`` as JSON; ``KEEL_SERVE_MODEL`` + ``KEEL_SERVE_SETTINGS`` still work).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import ConfigError, InvalidInput
from keel.serving._settings import ServingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from keel.serving._endpoint import Endpoint
    from keel.serving._host import ModelHost
    from keel.serving._reload import Source

MODEL_VAR = "KEEL_SERVE_MODEL"
SETTINGS_VAR = "KEEL_SERVE_SETTINGS"
SPEC_VAR = "KEEL_SERVE_SPEC"


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """What one ``keel serve`` serves. ``model``'s batching comes from ``settings``; a
    deployment's from its stored settings (``allow_extra_columns`` applies to all)."""

    model: str | None = None
    deployments: tuple[str, ...] = ()
    settings: ServingSettings = field(default_factory=ServingSettings)
    poll_s: float = 5.0
    prediction_log: bool = True
    log_sample_rate: float = 1.0
    log_exclude: tuple[str, ...] = ()
    log_as: str | None = None  # the log's deployment name for ``model`` (default: its name)

    def __post_init__(self) -> None:
        if self.model is None and not self.deployments:
            raise InvalidInput("name a model or at least one --deployment", field="model")
        if len(set(self.deployments)) != len(self.deployments):
            raise InvalidInput("a deployment is named twice", field="deployment")
        if not self.poll_s > 0:
            raise InvalidInput("must be a positive number of seconds", field="poll_s")
        if not 0.0 <= self.log_sample_rate <= 1.0:
            raise InvalidInput("must be between 0 and 1", field="log_sample_rate")
        if self.log_as is not None:
            from keel.monitoring._predlog import check_name

            check_name(self.log_as, "log_as")
            if self.model is None:
                raise InvalidInput("names the log of a model argument; none given", field="log_as")

    def to_env(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_env(cls, text: str) -> ServeSpec:
        data: dict[str, Any] = orjson.loads(text)
        data["settings"] = ServingSettings(**data.get("settings", {}))
        data["deployments"] = tuple(data.get("deployments", ()))
        data["log_exclude"] = tuple(data.get("log_exclude", ()))
        return cls(**data)


def settings_to_env(settings: ServingSettings) -> str:
    return orjson.dumps(asdict(settings)).decode()


def _deployment_endpoint(name: str, spec: ServeSpec, closers: list[Callable[[], None]]) -> Endpoint:
    from keel.serving._deployments import open_deployments
    from keel.serving._endpoint import Endpoint
    from keel.serving._host import ModelHost

    deployments = open_deployments()
    try:
        dep = deployments.get(name)
    finally:
        deployments.store.close()
        deployments.registry.close()
    settings = ServingSettings(
        **dep.settings.to_dict(), allow_extra_columns=spec.settings.allow_extra_columns
    )
    champion = ModelHost.load(f"models:/{dep.model}/{dep.champion}", settings=settings)
    challenger = None
    if dep.challenger is not None:
        challenger = ModelHost.load(f"models:/{dep.model}/{dep.challenger}", settings=settings)
        if challenger.signature != champion.signature:
            raise InvalidInput(
                f"{dep.model} v{dep.challenger} takes another signature than the champion "
                f"v{dep.champion}; a challenger must accept the same requests",
                field="challenger",
            )
    writer = _log_writer(name, spec, closers) if spec.prediction_log else None
    return Endpoint(name, champion, challenger=challenger, deployment=dep, on_prediction=writer)


def log_name(model: str) -> str:
    """The prediction log a plain ``keel serve MODEL`` writes to: the model's name (names
    share one alphabet; a deployment name holds at most 128 characters)."""
    return model[:128]


def _log_writer(name: str, spec: ServeSpec, closers: list[Callable[[], None]]) -> Any:
    from keel.artifacts import open_backend
    from keel.serving._predlog import PredictionLogWriter

    writer = PredictionLogWriter(
        open_backend(),
        deployment=name,
        sample_rate=spec.log_sample_rate,
        exclude_columns=spec.log_exclude,
    )
    closers.append(writer.close)
    return writer


def build_app(spec: ServeSpec, *, model_host: ModelHost | None = None) -> FastAPI:
    """The app for ``spec``; ``model_host`` is ``spec.model`` already loaded (the CLI loads
    it before binding, to fail with one readable error)."""
    from keel.serving._app import create_serving_app
    from keel.serving._endpoint import Endpoint
    from keel.serving._host import ModelHost
    from keel.serving._reload import alias_source, deployment_source

    hosts: dict[str, ModelHost | Endpoint] = {}
    sources: dict[str, Source] = {}
    closers: list[Callable[[], None]] = []
    try:
        if spec.model is not None:
            host = model_host or ModelHost.load(spec.model, settings=spec.settings)
            hosts[host.name] = host
            if spec.prediction_log:
                logged_as = spec.log_as or log_name(host.name)
                if logged_as in spec.deployments:
                    raise InvalidInput(
                        f"the model's predictions would share deployment {logged_as!r}'s log; "
                        "name another with --log-as",
                        field="log_as",
                    )
                writer = _log_writer(logged_as, spec, closers)
                hosts[host.name] = Endpoint(host.name, host, on_prediction=writer)
            if "@" in spec.model:  # an alias can move: follow it
                sources[host.name] = alias_source(spec.model)
        for name in spec.deployments:
            if name in hosts:
                raise InvalidInput(f"{name!r} is served twice", field="deployment")
            hosts[name] = _deployment_endpoint(name, spec, closers)
            sources[name] = deployment_source(name)
        feedback_store = None
        if spec.deployments or spec.prediction_log:  # labels join what is logged
            from keel.monitoring._feedback import open_feedback_store

            feedback_store = open_feedback_store()
            closers.append(feedback_store.close)
    except BaseException:
        for close in closers:
            close()
        raise
    return create_serving_app(
        hosts,
        settings=spec.settings,
        sources=sources,
        poll_s=spec.poll_s,
        feedback_store=feedback_store,
        on_shutdown=closers,
    )


def create_app_from_env() -> FastAPI:
    text = os.environ.get(SPEC_VAR)
    if text:
        return build_app(ServeSpec.from_env(text))
    uri = os.environ.get(MODEL_VAR)
    if not uri:
        raise ConfigError(f"{SPEC_VAR} is not set (run the app with `keel serve`)")
    settings = ServingSettings(**orjson.loads(os.environ.get(SETTINGS_VAR) or "{}"))
    return build_app(ServeSpec(model=uri, settings=settings))
