"""The app ``keel serve`` runs: each uvicorn worker process builds it from the environment
(``KEEL_SERVE_MODEL``, ``KEEL_SERVE_SETTINGS`` as JSON), loading its own copy of the model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orjson

from keel.errors import ConfigError
from keel.serving._settings import ServingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

MODEL_VAR = "KEEL_SERVE_MODEL"
SETTINGS_VAR = "KEEL_SERVE_SETTINGS"


def settings_to_env(settings: ServingSettings) -> str:
    from dataclasses import asdict

    return orjson.dumps(asdict(settings)).decode()


def create_app_from_env() -> FastAPI:
    from keel.serving._app import create_serving_app
    from keel.serving._host import ModelHost

    uri = os.environ.get(MODEL_VAR)
    if not uri:
        raise ConfigError(f"{MODEL_VAR} is not set (run the app with `keel serve MODEL`)")
    settings = ServingSettings(**orjson.loads(os.environ.get(SETTINGS_VAR) or "{}"))
    host = ModelHost.load(uri, settings=settings)
    return create_serving_app({host.name: host}, settings=settings)
