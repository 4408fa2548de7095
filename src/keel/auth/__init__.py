"""Users, passwords, sessions, API tokens, project roles and the audit log (layer 5).

Domain packages never import this: the server and the serving app enforce it, so the library
works without auth. The records and ``Role`` load light; ``AuthStore`` and ``open_auth_store``
load SQLAlchemy and argon2 on first access. See docs/auth.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel.auth._records import (
    AuditRecord,
    AuditVerification,
    Grant,
    Principal,
    Role,
    SessionSecret,
    TokenInfo,
    User,
)

if TYPE_CHECKING:
    from keel.auth._limits import LoginLimits
    from keel.auth._passwords import HashParams
    from keel.auth._sql import AuthStore
    from keel.auth._store import open_auth_store

_LAZY = {
    "AuthStore": "keel.auth._sql",
    "open_auth_store": "keel.auth._store",
    "HashParams": "keel.auth._passwords",
    "LoginLimits": "keel.auth._limits",
}

__all__ = [
    "AuditRecord",
    "AuditVerification",
    "AuthStore",
    "Grant",
    "HashParams",
    "LoginLimits",
    "Principal",
    "Role",
    "SessionSecret",
    "TokenInfo",
    "User",
    "open_auth_store",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.auth' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
