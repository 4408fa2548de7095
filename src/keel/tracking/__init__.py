"""Experiment tracking: projects, runs, params, metrics, tags, artifacts, search.

The fluent API (``start_run``, ``log_metric`` …) and ``Client`` load light: the store,
SQLAlchemy and pandas are imported on first use, not by ``import keel.tracking``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel.tracking._client import Client
from keel.tracking._fluent import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_run,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    search_runs,
    set_note,
    set_tag,
    set_tags,
    start_run,
)
from keel.tracking._records import (
    ArtifactFile,
    Metric,
    Page,
    Project,
    Run,
    RunEnv,
    RunIO,
    RunStatus,
)

if TYPE_CHECKING:
    from keel.tracking._base import TrackingStore
    from keel.tracking._store import open_store

# Names whose modules import SQLAlchemy or pydantic: loaded on first access.
_LAZY = {"open_store": "keel.tracking._store", "TrackingStore": "keel.tracking._base"}

__all__ = [
    "ActiveRun",
    "ArtifactFile",
    "Client",
    "Metric",
    "Page",
    "Project",
    "Run",
    "RunEnv",
    "RunIO",
    "RunStatus",
    "TrackingStore",
    "active_run",
    "end_run",
    "flush",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "open_store",
    "search_runs",
    "set_note",
    "set_tag",
    "set_tags",
    "start_run",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.tracking' has no attribute {name!r}")
