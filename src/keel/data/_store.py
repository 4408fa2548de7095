"""Choosing the data store by URI, at the edge: ``open_data_store()`` is how the rest of Keel
gets one. Dataset metadata lives in the same database as tracking (``tracking_uri``)."""

from __future__ import annotations

from keel.config import get_settings, normalize_tracking_uri
from keel.data._base import DataStore
from keel.errors import ConfigError


def open_data_store(uri: str | None = None) -> DataStore:
    """The data store for ``uri`` (default: the ``tracking_uri`` setting)."""
    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    if normal.startswith(("sqlite:", "postgresql")):
        from keel.data._sql import SqlDataStore

        return SqlDataStore(normal)
    if normal.startswith(("http:", "https:")):
        from keel.data._http import HttpDataStore  # a team server's (token: KEEL_TOKEN)

        return HttpDataStore(normal)
    raise ConfigError(
        f"KEEL_TRACKING_URI: no data store for {normal!r} yet; use sqlite:///path or postgresql://…"
    )
