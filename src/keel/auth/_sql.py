"""``AuthStore``: users, passwords, sessions, tokens, project roles and the audit log in the
metadata database (SQLite or PostgreSQL).

Every method is one ``keel.db.transaction`` (retried whole on transient failures). The store
writes audit records for its own security events in the same transaction as the change, so a
change and its record commit together whichever program (server, CLI) made it. ``actor`` and
``address`` on the mutating methods say who asked, for those records.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from keel import _time
from keel.auth import _audit, _limits, _names, _passwords
from keel.auth import _sql_creds as creds
from keel.auth import _sql_users as db
from keel.auth._limits import LoginLimits
from keel.auth._passwords import HashParams
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
from keel.db import SqlStore
from keel.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)

T = TypeVar("T")
ADMIN_USERNAME = "admin"
_LOGIN_FAILED = "invalid username or password"
_MAX_TOKEN_NAME = 100
_MAX_EXPIRY = timedelta(days=3660)


class AuthStore(SqlStore):
    """Auth state in the SQL database at ``url``; see ``open_auth_store``."""

    def __init__(
        self,
        url: str,
        *,
        hash_params: HashParams | None = None,
        login_limits: LoginLimits | None = None,
        session_ttl: timedelta = timedelta(hours=12),
        clock: Callable[[], int] = _time.now_ms,
    ) -> None:
        super().__init__(url)
        self.hash_params = hash_params or HashParams()
        self.login_limits = login_limits or LoginLimits()
        self.session_ttl_ms = int(session_ttl.total_seconds() * 1000)
        self._now = clock

    def _audited(
        self,
        work: Callable[[Connection], T],
        *,
        actor: str | None,
        action: str,
        resource: str,
        address: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> T:
        """Run ``work`` and append its audit record in the same write transaction."""

        def unit(conn: Connection) -> T:
            result = work(conn)
            _audit.append(
                conn,
                ts_ms=self._now(),
                actor=actor,
                action=action,
                resource=resource,
                address=address,
                outcome="ok",
                detail=detail,
            )
            return result

        return self._write(unit)

    # -- users ------------------------------------------------------------------------------

    def bootstrap_admin(self, password: str | None = None) -> str | None:
        """Create the ``admin`` account on first start. With ``password`` (from
        ``KEEL_ADMIN_PASSWORD``) it must pass the password rules and None is returned; without,
        a random password is generated and returned once, to be shown to the operator. Returns
        None and changes nothing when an admin account already exists."""
        if self._read(db.any_admin):
            return None
        generated = None
        if password is None:
            while True:  # a random 24-character password passes the rules in practice at once
                generated = secrets.token_urlsafe(18)
                try:
                    _passwords.check_strength(generated, username=ADMIN_USERNAME)
                    break
                except InvalidInput:
                    continue
            password = generated
        try:
            self.create_user(ADMIN_USERNAME, password, is_admin=True, actor="system")
        except AlreadyExists:
            if self._read(db.any_admin):
                return None  # another server process bootstrapped at the same moment
            raise Conflict(
                f"a user {ADMIN_USERNAME!r} exists but no admin does; create one with "
                "`keel users create NAME --admin`"
            ) from None
        return generated

    def create_user(
        self,
        username: str,
        password: str,
        *,
        is_admin: bool = False,
        actor: str | None = None,
        address: str | None = None,
    ) -> User:
        display, key = _names.username(username)
        _passwords.check_strength(password, username=display)
        password_hash = _passwords.hash_password(password, self.hash_params)
        now = self._now()
        user: User = self._audited(
            lambda conn: db.insert_user(
                conn,
                display=display,
                key=key,
                password_hash=password_hash,
                is_admin=bool(is_admin),
                now_ms=now,
            ),
            actor=actor,
            action="user.create",
            resource=f"user:{key}",
            address=address,
            detail={"is_admin": bool(is_admin)},
        )
        return user

    def get_user(self, username: str) -> User:
        key = _names.username(username)[1]
        user: User = self._read(lambda conn: db.find_user(conn, key))
        return user

    def list_users(self) -> list[User]:
        found: list[User] = self._read(db.all_users)
        return found

    def disable_user(
        self, username: str, *, actor: str | None = None, address: str | None = None
    ) -> User:
        """Disable an account: its sessions end and its tokens stop working at once."""
        return self._set_disabled(username, True, actor=actor, address=address)

    def enable_user(
        self, username: str, *, actor: str | None = None, address: str | None = None
    ) -> User:
        return self._set_disabled(username, False, actor=actor, address=address)

    def _set_disabled(
        self, username: str, disabled: bool, *, actor: str | None, address: str | None
    ) -> User:
        key = _names.username(username)[1]
        user: User = self._audited(
            lambda conn: db.set_disabled(conn, key, disabled),
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            resource=f"user:{key}",
            address=address,
        )
        return user

    def change_password(
        self,
        username: str,
        new_password: str,
        *,
        actor: str | None = None,
        address: str | None = None,
    ) -> None:
        """Set a new password and end every session of the user (tokens stay valid)."""
        display, key = _names.username(username)
        _passwords.check_strength(new_password, username=display)
        password_hash = _passwords.hash_password(new_password, self.hash_params)
        now = self._now()

        def work(conn: Connection) -> None:
            db.set_password(conn, key, password_hash, now)
            _limits.clear_user(conn, key)

        self._audited(
            work, actor=actor, action="user.password", resource=f"user:{key}", address=address
        )

    # -- login and sessions -----------------------------------------------------------------

    def login(self, username: str, password: str, *, address: str) -> Principal:
        """Check a username and password. The error is the same for an unknown user, a wrong
        password and a disabled account, and takes as long (unknown users are checked against
        a dummy hash). Too many failures raise ``RateLimited`` without checking anything."""
        key = _names.username_key(username) if isinstance(username, str) else ""
        now = self._now()

        def lookup(conn: Connection) -> Any:
            _limits.check(conn, user_key=key, address=address, now_ms=now, limits=self.login_limits)
            return db.credentials(conn, key)

        try:
            row = self._read(lookup)
        except RateLimited as exc:
            self._audit_login(key, address, "rate_limited", {"retry_after": exc.retry_after})
            raise
        new_hash = None
        if not isinstance(password, str) or len(password) > _passwords.MAX_LENGTH:
            ok = False
        elif row is None:
            _passwords.verify_dummy(password, self.hash_params)
            ok = False
        else:
            ok, new_hash = _passwords.verify(row.password_hash, password, self.hash_params)
        if not ok or row is None or row.disabled:
            reason = "unknown user" if row is None else "disabled" if ok else "bad password"
            self._login_failed(key, address, reason)
            raise Unauthenticated(_LOGIN_FAILED)

        def success(conn: Connection) -> None:
            _limits.clear_user(conn, key)
            db.record_login(conn, row.id, now_ms=now, new_hash=new_hash)

        self._audited(
            success,
            actor=row.username,
            action="login",
            resource=f"user:{key}",
            address=address,
            detail={"rehashed": new_hash is not None},
        )
        return Principal(
            user_id=row.id, username=row.username, is_admin=bool(row.is_admin), via="password"
        )

    def _login_failed(self, key: str, address: str | None, reason: str) -> None:
        def work(conn: Connection) -> None:
            _limits.record_failure(
                conn, user_key=key, address=address, now_ms=self._now(), limits=self.login_limits
            )
            self._append_login(conn, key, address, "denied", {"reason": reason})

        self._write(work)

    def _audit_login(
        self, key: str, address: str | None, outcome: str, detail: Mapping[str, object]
    ) -> None:
        self._write(lambda conn: self._append_login(conn, key, address, outcome, detail))

    def _append_login(
        self,
        conn: Connection,
        key: str,
        address: str | None,
        outcome: str,
        detail: Mapping[str, object],
    ) -> None:
        # The attempted name (its key: bounded, control characters replaced) is recorded in
        # the detail; the actor column holds it only when it is a well-formed username.
        shown = key[:64]
        try:
            actor: str | None = _names.username(key)[0]
        except InvalidInput:
            actor = None
        _audit.append(
            conn,
            ts_ms=self._now(),
            actor=actor,
            action="login",
            resource=f"user:{shown}",
            address=None if address is None else address[:100],
            outcome=outcome,
            detail={**detail, "username": shown},
        )

    def create_session(self, principal: Principal) -> SessionSecret:
        """A login session for a user who just logged in with a password (or a session)."""
        if principal.via == "token":
            raise PermissionDenied("a session is started by a password login, not by a token")
        now = self._now()
        secret: SessionSecret = self._write(
            lambda conn: creds.new_session(
                conn, principal.user_id, now_ms=now, ttl_ms=self.session_ttl_ms
            )
        )
        return secret

    def authenticate_session(self, cookie_value: str) -> tuple[Principal, str]:
        """``(principal, csrf_token)`` for a session cookie; ``Unauthenticated`` if it is
        unknown, expired, ended, or its user is disabled."""
        if not isinstance(cookie_value, str) or not 0 < len(cookie_value) <= 200:
            raise Unauthenticated("session expired or unknown; log in again")
        now = self._now()
        found: tuple[Principal, str] = self._read(
            lambda conn: creds.find_session(conn, cookie_value, now_ms=now)
        )
        return found

    def end_session(self, cookie_value: str) -> None:
        if isinstance(cookie_value, str) and cookie_value:
            self._write(lambda conn: creds.drop_session(conn, cookie_value))

    # -- API tokens ---------------------------------------------------------------------------

    def create_token(
        self,
        username: str,
        *,
        name: str,
        role: Role | str,
        projects: Sequence[str] | None = None,
        expires_in: timedelta | None = None,
        actor: str | None = None,
        address: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new API token for ``username``; the plaintext (``keel_…``) is returned only here.
        The token can do at most ``role``, only on ``projects`` (None: wherever the user can),
        and never more than the user's own role there."""
        key = _names.username(username)[1]
        token_name = _token_name(name)
        ceiling = Role.parse(role)
        scope = _scope(projects)
        now = self._now()
        expires_ms = None if expires_in is None else now + _expiry_ms(expires_in)

        def work(conn: Connection) -> tuple[str, TokenInfo]:
            user = db.find_user(conn, key)
            if user.disabled:
                raise Conflict(f"user {user.username!r} is disabled; enable it first")
            return creds.new_token(
                conn,
                user,
                name=token_name,
                role=ceiling,
                projects=scope,
                now_ms=now,
                expires_ms=expires_ms,
            )

        made: tuple[str, TokenInfo] = self._audited(
            work,
            actor=actor,
            action="token.create",
            resource=f"user:{key}",
            address=address,
            detail={
                "name": token_name,
                "role": ceiling.label,
                "projects": None if scope is None else list(scope),
                "expires_ms": expires_ms,
            },
        )
        return made

    def authenticate_token(self, plaintext: str) -> Principal:
        """The principal of an API token; ``Unauthenticated`` if unknown, expired, revoked, or
        its user is disabled. Records the last-used time at most once a minute."""
        now = self._now()
        principal, due = self._read(lambda conn: creds.check_token(conn, plaintext, now_ms=now))
        if due:
            assert principal.token_id is not None
            token_id = principal.token_id
            self._write(lambda conn: creds.touch_token(conn, token_id, now_ms=now))
        return principal

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        key = None if username is None else _names.username(username)[1]
        found: list[TokenInfo] = self._read(lambda conn: creds.list_tokens(conn, key))
        return found

    def revoke_token(
        self, token_id: int, *, actor: str | None = None, address: str | None = None
    ) -> TokenInfo:
        if isinstance(token_id, bool) or not isinstance(token_id, int):
            raise InvalidInput("must be an integer token id", field="token_id")
        now = self._now()
        info: TokenInfo = self._audited(
            lambda conn: creds.set_revoked(conn, token_id, now_ms=now),
            actor=actor,
            action="token.revoke",
            resource=f"token:{token_id}",
            address=address,
        )
        return info

    # -- project roles ------------------------------------------------------------------------

    def grant(
        self,
        project: str,
        username: str,
        role: Role | str,
        *,
        actor: str | None = None,
        address: str | None = None,
    ) -> None:
        """Give ``username`` ``role`` on ``project`` (replacing any role it had there). The
        project need not exist yet: runs create projects on first use."""
        name = _names.project(project)
        key = _names.username(username)[1]
        level = Role.parse(role)
        now = self._now()
        self._audited(
            lambda conn: db.upsert_grant(conn, name, db.find_user(conn, key), level, now),
            actor=actor,
            action="grant.set",
            resource=f"project:{name}",
            address=address,
            detail={"username": key, "role": level.label},
        )

    def revoke(
        self,
        project: str,
        username: str,
        *,
        actor: str | None = None,
        address: str | None = None,
    ) -> None:
        """Remove ``username``'s role on ``project``; ``NotFound`` if it had none."""
        name = _names.project(project)
        key = _names.username(username)[1]
        self._audited(
            lambda conn: db.delete_grant(conn, name, db.find_user(conn, key)),
            actor=actor,
            action="grant.revoke",
            resource=f"project:{name}",
            address=address,
            detail={"username": key},
        )

    def list_grants(
        self, *, project: str | None = None, username: str | None = None
    ) -> list[Grant]:
        name = None if project is None else _names.project(project)
        key = None if username is None else _names.username(username)[1]
        found: list[Grant] = self._read(
            lambda conn: db.list_grants(conn, project=name, user_key=key)
        )
        return found

    def role_in(self, principal: Principal, project: str) -> Role | None:
        """The principal's role on ``project`` now: ADMIN for a global admin, else the user's
        grant; capped by a token's ceiling and limited to its projects. None: no access."""
        name = _names.project(project)
        if principal.token_projects is not None and name not in principal.token_projects:
            return None
        is_admin, disabled, granted = self._read(
            lambda conn: db.access(conn, principal.user_id, name)
        )
        if disabled:
            return None
        role = Role.ADMIN if is_admin else granted
        if role is not None and principal.token_role is not None:
            role = min(role, principal.token_role)
        return role

    def visible_projects(self, principal: Principal) -> dict[str, Role] | None:
        """The projects the principal can read with its role on each, or None for "all"
        (an unscoped global admin)."""
        user_id = principal.user_id
        is_admin, disabled, _ = self._read(lambda conn: db.access(conn, user_id, ""))
        if disabled:
            return {}
        ceiling = principal.token_role or Role.ADMIN
        if is_admin:
            if principal.token_projects is None:
                return None
            return dict.fromkeys(principal.token_projects, ceiling)
        granted: dict[str, Role] = self._read(lambda conn: db.granted_projects(conn, user_id))
        out: dict[str, Role] = {}
        for name, role in granted.items():
            if principal.token_projects is None or name in principal.token_projects:
                out[name] = min(role, ceiling)
        return out

    # -- audit log ----------------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str | None,
        action: str,
        resource: str,
        address: str | None,
        outcome: str,
        detail: Mapping[str, object] | None = None,
    ) -> AuditRecord:
        """Append one record to the hash-chained audit log."""
        record: AuditRecord = self._write(
            lambda conn: _audit.append(
                conn,
                ts_ms=self._now(),
                actor=actor,
                action=action,
                resource=resource,
                address=address,
                outcome=outcome,
                detail=detail,
            )
        )
        return record

    def audit_verify(self) -> AuditVerification:
        """Walk the whole chain; the first edited, missing or cut-off record fails it."""
        result: AuditVerification = self._read(_audit.verify)
        return result

    def audit_record(self, record_id: int) -> AuditRecord | None:
        """One record by id (None if there is none, e.g. it was deleted)."""
        found: AuditRecord | None = self._read(lambda conn: _audit.get(conn, record_id))
        return found

    def audit_search(
        self,
        *,
        user: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records newest first; ``resource``/``action`` ending in ``*`` match as prefixes."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput("must be an integer from 1 to 100000", field="limit")
        for field, value in (("user", user), ("resource", resource), ("action", action)):
            if value is not None and (not isinstance(value, str) or "\x00" in value):
                raise InvalidInput("must be a string without NUL", field=field)
        found: list[AuditRecord] = self._read(
            lambda conn: _audit.search(
                conn,
                user=user,
                resource=resource,
                action=action,
                since_ms=since_ms,
                until_ms=until_ms,
                limit=limit,
            )
        )
        return found


def _token_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("must be a non-empty string", field="name")
    if len(name) > _MAX_TOKEN_NAME:
        raise InvalidInput(f"longer than {_MAX_TOKEN_NAME} characters", field="name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput("must not contain control characters", field="name")
    return name.strip()


def _scope(projects: Sequence[str] | None) -> tuple[str, ...] | None:
    if projects is None:
        return None
    if isinstance(projects, str):
        raise InvalidInput("must be a list of project names, not one string", field="projects")
    scope = tuple(dict.fromkeys(_names.project(p, "projects") for p in projects))
    if not scope:
        raise InvalidInput("give at least one project, or None for all", field="projects")
    return scope


def _expiry_ms(expires_in: timedelta) -> int:
    if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0):
        raise InvalidInput("must be a positive duration", field="expires_in")
    if expires_in > _MAX_EXPIRY:
        raise InvalidInput("must be at most 10 years", field="expires_in")
    return int(expires_in.total_seconds() * 1000)
