"""The records the auth store hands out: frozen dataclasses, never ORM rows.

Importing this module is light (no SQLAlchemy, no argon2), so the server and the CLI can name
these types without loading the store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal


class Role(enum.IntEnum):
    """A role on one project, ordered: a higher role can do everything a lower one can.

    viewer reads; editor logs runs and adds data; maintainer registers and promotes models and
    manages deployments; admin manages users, tokens and settings.
    """

    VIEWER = 1
    EDITOR = 2
    MAINTAINER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, value: str | int | Role, *, field: str = "role") -> Role:
        """A role from its name (``"editor"``, any case) or number; ``InvalidInput`` otherwise."""
        from keel.errors import InvalidInput

        if isinstance(value, Role):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        names = ", ".join(r.label for r in cls)
        raise InvalidInput(f"unknown role {value!r}; use one of {names}", field=field)

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as established by a password, a session cookie or an API token."""

    user_id: int
    username: str
    # Global admin: admin on every project and allowed to manage users. For a token this holds
    # only when the user is an admin and the token is unscoped with the admin ceiling.
    is_admin: bool
    via: Literal["password", "session", "token"]
    token_id: int | None = None
    token_role: Role | None = None
    token_projects: tuple[str, ...] | None = None  # None: every project the user can reach


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str  # as created (NFC); compared case-insensitively
    is_admin: bool
    disabled: bool
    created_ms: int
    password_changed_ms: int
    last_login_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "is_admin": self.is_admin,
            "disabled": self.disabled,
            "created_ms": self.created_ms,
            "password_changed_ms": self.password_changed_ms,
            "last_login_ms": self.last_login_ms,
        }


@dataclass(frozen=True, slots=True)
class SessionSecret:
    """A new login session: ``cookie_value`` goes in the cookie, ``csrf_token`` in the page
    (and comes back in the ``X-CSRF-Token`` header); both are shown only now."""

    cookie_value: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_ms: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token without its secret."""

    id: int
    username: str
    name: str
    prefix: str  # the non-secret start of the token ("keel_" + lookup id), for recognising it
    role: Role
    projects: tuple[str, ...] | None  # None: every project the user can reach
    created_ms: int
    expires_ms: int | None = None
    last_used_ms: int | None = None
    revoked_ms: int | None = None

    def active(self, now_ms: int) -> bool:
        return self.revoked_ms is None and (self.expires_ms is None or now_ms < self.expires_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role.label,
            "projects": None if self.projects is None else list(self.projects),
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "last_used_ms": self.last_used_ms,
            "revoked_ms": self.revoked_ms,
        }


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the append-only audit log. ``hash`` is SHA-256 (hex) over the previous
    record's hash and this record's canonical JSON, so an edit anywhere breaks the chain."""

    id: int
    ts_ms: int
    actor: str | None
    action: str
    resource: str
    address: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts_ms": self.ts_ms,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "address": self.address,
            "outcome": self.outcome,
            "detail": self.detail,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The result of walking the audit chain: ``ok``, how many records were ``checked``, and on
    failure the id of the first bad record (or of the missing one) and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None
    head_hash: str | None = None  # the chain's newest hash; record it elsewhere to anchor the log

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_id": self.first_bad_id,
            "reason": self.reason,
            "head_hash": self.head_hash,
        }


@dataclass(frozen=True, slots=True)
class Grant:
    """A user's role on one project."""

    project: str
    username: str
    role: Role
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "username": self.username,
            "role": self.role.label,
            "created_ms": self.created_ms,
        }
