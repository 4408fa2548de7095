"""Autologging: ``keel.autolog()`` records params, training metrics and the model of every
``fit`` of a supported library, without changes to the training code.

Only scikit-learn is supported so far; ``keel.tracking.autolog.sklearn()`` turns it on alone
and ``disable()`` restores the libraries' own methods. The library is imported only when its
autologger is enabled.
"""

from __future__ import annotations

from keel.tracking.autolog._sklearn import AutologWarning, disable_sklearn, enable_sklearn

__all__ = ["AutologWarning", "autolog", "disable", "sklearn"]


def sklearn(log_models: bool = True, *, disable: bool = False) -> None:
    """Log every scikit-learn ``fit`` (estimators, Pipelines, search CV; nested fits once)."""
    if disable:
        disable_sklearn()
    else:
        enable_sklearn(log_models=log_models)


def autolog(log_models: bool = True, *, disable: bool = False) -> None:
    """Turn on (or with ``disable=True`` off) autologging for every supported library."""
    sklearn(log_models, disable=disable)


def disable() -> None:
    """Turn every autologger off, restoring the original methods."""
    disable_sklearn()
