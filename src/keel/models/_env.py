"""The environment a model needs: the Python it was logged with and the exact versions of the
packages its flavour loads (plus the distribution of user code it names, when installed)."""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable
from importlib import metadata

from keel.models._records import ModelEnv

# Always recorded (import names): a model is fed NumPy arrays or pandas frames.
_BASE = ("numpy", "pandas")


@functools.cache
def _module_dists() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def distributions_of(modules: Iterable[str]) -> list[str]:
    """Installed distributions providing the top-level packages of ``modules`` (user code that
    is not installed, e.g. a script's module, has none)."""
    found: list[str] = []
    for module in modules:
        top = module.split(".", 1)[0]
        found.extend(_module_dists().get(top, []))
    return found


def capture(modules: Iterable[str]) -> ModelEnv:
    """A ``ModelEnv`` with the exact versions of the distributions that provide ``modules``
    (import names: ``sklearn`` is recorded as ``scikit-learn``, ``xgboost`` as whichever
    of ``xgboost``/``xgboost-cpu`` is installed) and of the base packages. Modules that no
    installed distribution provides (a script's own module) are left out."""
    wanted = distributions_of([*_BASE, *modules])
    versions: dict[str, str] = {}
    for dist in wanted:
        version = dist_version(dist)
        if version is not None:
            versions[dist] = version
    return ModelEnv(
        python_version=platform.python_version(), packages=dict(sorted(versions.items()))
    )
