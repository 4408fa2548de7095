"""Units of work on users and grants, each run inside one ``AuthStore`` transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel.auth._records import Grant, Role, User
from keel.auth._tables import grants, sessions, users
from keel.errors import AlreadyExists, NotFound

USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.is_admin,
    users.c.disabled,
    users.c.created_ms,
    users.c.password_changed_ms,
    users.c.last_login_ms,
)


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def user_record(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_ms=row.created_ms,
        password_changed_ms=row.password_changed_ms,
        last_login_ms=row.last_login_ms,
    )


def insert_user(
    conn: Connection, *, display: str, key: str, password_hash: str, is_admin: bool, now_ms: int
) -> User:
    # RETURNING tells whether this statement inserted: a taken name is AlreadyExists, not a
    # database error, even when two processes race for it.
    inserted = conn.execute(
        _insert(conn)(users)
        .values(
            username=display,
            username_key=key,
            password_hash=password_hash,
            is_admin=is_admin,
            disabled=False,
            created_ms=now_ms,
            password_changed_ms=now_ms,
        )
        .on_conflict_do_nothing(index_elements=["username_key"])
        .returning(users.c.id)
    ).first()
    if inserted is None:
        raise AlreadyExists(f"user {display!r} already exists (names are compared ignoring case)")
    return find_user(conn, key)


def find_user(conn: Connection, key: str) -> User:
    row = conn.execute(select(*USER_COLUMNS).where(users.c.username_key == key)).first()
    if row is None:
        raise NotFound(f"user {key!r} does not exist")
    return user_record(row)


def credentials(conn: Connection, key: str) -> Any:
    """The row a login checks: id, names, flags and the password hash."""
    return conn.execute(
        select(*USER_COLUMNS, users.c.password_hash).where(users.c.username_key == key)
    ).first()


def all_users(conn: Connection) -> list[User]:
    rows = conn.execute(select(*USER_COLUMNS).order_by(users.c.username_key)).all()
    return [user_record(row) for row in rows]


def any_admin(conn: Connection) -> bool:
    return (
        conn.execute(select(users.c.id).where(users.c.is_admin.is_(True)).limit(1)).first()
        is not None
    )


def set_disabled(conn: Connection, key: str, disabled: bool) -> User:
    user = find_user(conn, key)
    conn.execute(update(users).where(users.c.id == user.id).values(disabled=disabled))
    if disabled:
        # Authentication checks the flag on every request anyway; dropping the sessions means
        # re-enabling the account does not bring old cookies back.
        conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
    return find_user(conn, key)


def set_password(conn: Connection, key: str, password_hash: str, now_ms: int) -> User:
    user = find_user(conn, key)
    conn.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(password_hash=password_hash, password_changed_ms=now_ms)
    )
    conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
    return user


def upsert_grant(conn: Connection, project: str, user: User, role: Role, now_ms: int) -> None:
    stmt = _insert(conn)(grants).values(
        project=project, user_id=user.id, role=int(role), created_ms=now_ms
    )
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["project", "user_id"], set_={"role": int(role)})
    )


def delete_grant(conn: Connection, project: str, user: User) -> Role:
    row = conn.execute(
        select(grants.c.role).where(grants.c.project == project, grants.c.user_id == user.id)
    ).first()
    if row is None:
        raise NotFound(f"user {user.username!r} has no role on project {project!r}")
    conn.execute(delete(grants).where(grants.c.project == project, grants.c.user_id == user.id))
    return Role(row.role)


def list_grants(conn: Connection, *, project: str | None, user_key: str | None) -> list[Grant]:
    query = select(grants.c.project, users.c.username, grants.c.role, grants.c.created_ms).join(
        users, users.c.id == grants.c.user_id
    )
    if project is not None:
        query = query.where(grants.c.project == project)
    if user_key is not None:
        query = query.where(users.c.username_key == user_key)
    rows = conn.execute(query.order_by(grants.c.project, users.c.username_key)).all()
    return [
        Grant(project=r.project, username=r.username, role=Role(r.role), created_ms=r.created_ms)
        for r in rows
    ]


def access(conn: Connection, user_id: int, project: str) -> tuple[bool, bool, Role | None]:
    """``(is_admin, disabled, granted_role)`` of a user on a project, read now."""
    row = conn.execute(
        select(users.c.is_admin, users.c.disabled, grants.c.role)
        .select_from(users)
        .outerjoin(grants, (grants.c.user_id == users.c.id) & (grants.c.project == project))
        .where(users.c.id == user_id)
    ).first()
    if row is None:
        return False, True, None
    return bool(row.is_admin), bool(row.disabled), None if row.role is None else Role(row.role)


def granted_projects(conn: Connection, user_id: int) -> dict[str, Role]:
    rows = conn.execute(
        select(grants.c.project, grants.c.role).where(grants.c.user_id == user_id)
    ).all()
    return {r.project: Role(r.role) for r in rows}


def record_login(conn: Connection, user_id: int, *, now_ms: int, new_hash: str | None) -> None:
    values: dict[str, object] = {"last_login_ms": now_ms}
    if new_hash is not None:
        values["password_hash"] = new_hash
    conn.execute(update(users).where(users.c.id == user_id).values(**values))
