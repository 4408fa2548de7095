"""Failed-login rate limiting, with its counters in the database so that every server process
sees the same numbers.

Each failure bumps two counters: one keyed by the username's canonical form (whether or not the
account exists, so probing unknown names costs the same) and one by the client address. A
counter's window starts at its first failure; once it holds ``per_user`` / ``per_address``
failures, logins on that key are refused until the window ends. A successful login clears the
username's counter but not the address's, so one valid account does not buy an address more
guesses at others.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel.auth._tables import login_failures as lf
from keel.errors import RateLimited

USER, ADDRESS = "user", "addr"


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failures allowed per window, per username and per client address."""

    per_user: int = 10
    per_address: int = 50
    window_s: float = 900.0

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)


def _keys(user_key: str, address: str | None) -> list[tuple[str, str]]:
    keys = [(USER, user_key[:200])]
    if address:
        keys.append((ADDRESS, address[:200]))
    return keys


def check(
    conn: Connection, *, user_key: str, address: str | None, now_ms: int, limits: LoginLimits
) -> None:
    """Raise ``RateLimited`` when the username or the address is out of attempts."""
    keys = _keys(user_key, address)
    rows = conn.execute(
        select(lf.c.scope, lf.c.count, lf.c.window_start_ms).where(
            or_(*(and_(lf.c.scope == s, lf.c.key == k) for s, k in keys))
        )
    ).all()
    wait_ms = 0
    for scope, count, start in rows:
        allowed = limits.per_user if scope == USER else limits.per_address
        ends = start + limits.window_ms
        if count >= allowed and ends > now_ms:
            wait_ms = max(wait_ms, ends - now_ms)
    if wait_ms:
        raise RateLimited(
            f"too many failed logins; try again in {wait_ms / 1000:.0f} s",
            retry_after=wait_ms / 1000,
        )


def record_failure(
    conn: Connection, *, user_key: str, address: str | None, now_ms: int, limits: LoginLimits
) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    window_ms = limits.window_ms
    # Counters whose window ended long ago are dropped, so the table holds one window's worth.
    conn.execute(delete(lf).where(lf.c.window_start_ms < now_ms - 2 * window_ms))
    for scope, key in _keys(user_key, address):
        conn.execute(
            insert(lf)
            .values(scope=scope, key=key, count=0, window_start_ms=now_ms)
            .on_conflict_do_nothing(index_elements=["scope", "key"])
        )
        expired = lf.c.window_start_ms <= now_ms - window_ms
        # One UPDATE, so concurrent failures from several processes each count.
        conn.execute(
            update(lf)
            .where(lf.c.scope == scope, lf.c.key == key)
            .values(
                count=case((expired, 1), else_=lf.c.count + 1),
                window_start_ms=case((expired, now_ms), else_=lf.c.window_start_ms),
            )
        )


def clear_user(conn: Connection, user_key: str) -> None:
    conn.execute(delete(lf).where(lf.c.scope == USER, lf.c.key == user_key[:200]))
