"""The team server: a FastAPI app over the SQL stores and the artifact store, with users,
tokens, roles and an audit log from ``keel.auth``. Start it with ``keel server``; see
``docs/server.md``. Only ``keel.cli`` imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.server._app import create_app
    from keel.server._settings import ServerSettings
    from keel.server._state import Limits, ServerState

__all__ = ["Limits", "ServerSettings", "ServerState", "create_app"]

_LAZY = {
    "create_app": "keel.server._app",
    "ServerSettings": "keel.server._settings",
    "Limits": "keel.server._state",
    "ServerState": "keel.server._state",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.server' has no attribute {name!r}")
