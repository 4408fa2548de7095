"""What every SQL-backed store shares: opening its database by URL and running transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from keel.config import normalize_tracking_uri
from keel.db._engine import connect, transaction
from keel.errors import ConfigError, StoreError

T = TypeVar("T")


class SqlStore:
    """Base of the SQL store implementations: the database at ``url`` (SQLite or PostgreSQL),
    migrated on open, and ``_read``/``_write`` transactions with retries."""

    def __init__(self, url: str) -> None:
        normal = normalize_tracking_uri(url)
        if not normal.startswith(("sqlite:", "postgresql")):
            raise ConfigError(
                f"{type(self).__name__} needs a sqlite:// or postgresql:// URL, got {url!r}"
            )
        self.url = normal
        try:
            self._engine: Engine = connect(normal)
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(f"metadata store: cannot open {normal}: {exc}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._engine.url.render_as_string(hide_password=True)!r})"

    def _write(self, work: Callable[[Connection], T]) -> T:
        return transaction(self._engine, work, write=True)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return transaction(self._engine, work, write=False)

    def close(self) -> None:
        self._engine.dispose()
