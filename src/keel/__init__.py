"""Keel: the machine-learning loop in one self-hosted tool.

Importing ``keel`` only defines names; every module behind them loads on first use, so
``import keel`` stays fast (a test asserts that pandas, SQLAlchemy and friends are not imported).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "start_run": "keel.tracking",
    "end_run": "keel.tracking",
    "active_run": "keel.tracking",
    "log_param": "keel.tracking",
    "log_params": "keel.tracking",
    "log_metric": "keel.tracking",
    "log_metrics": "keel.tracking",
    "set_note": "keel.tracking",
    "set_tag": "keel.tracking",
    "set_tags": "keel.tracking",
    "log_artifact": "keel.tracking",
    "log_artifacts": "keel.tracking",
    "log_input": "keel.tracking",
    "flush": "keel.tracking",
    "search_runs": "keel.tracking",
    "get_run": "keel.tracking",
    "Client": "keel.tracking",
    "autolog": "keel.tracking.autolog",
    "PythonModel": "keel.models",
}
_SUBPACKAGES = {"data", "models", "tracking", "artifacts", "db", "errors", "config", "testing"}

__all__ = [
    "Client",
    "PythonModel",
    "__version__",
    "active_run",
    "autolog",
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
    "search_runs",
    "set_note",
    "set_tag",
    "set_tags",
    "start_run",
]

if TYPE_CHECKING:
    from keel.models import PythonModel
    from keel.tracking import (
        Client,
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
    from keel.tracking.autolog import autolog


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keel.{name}")
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
