"""Choosing the tracking store by URI, at the edge: ``open_store()`` is how the rest of Keel gets
one. The URI is normalised once by ``keel.config``; SQL URLs get ``SqlTrackingStore``,
``http(s)://`` URLs a team server's ``HttpTrackingStore`` (token from ``KEEL_TOKEN``)."""

from __future__ import annotations

from keel.config import get_settings, normalize_tracking_uri
from keel.errors import ConfigError
from keel.tracking._base import TrackingStore


def open_store(uri: str | None = None) -> TrackingStore:
    """The tracking store for ``uri`` (default: the ``tracking_uri`` setting)."""
    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    if normal.startswith(("sqlite:", "postgresql")):
        from keel.tracking._sql import SqlTrackingStore

        return SqlTrackingStore(normal)
    if normal.startswith(("http:", "https:")):
        from keel.tracking._http import HttpTrackingStore

        return HttpTrackingStore(normal)
    raise ConfigError(f"KEEL_TRACKING_URI: no tracking store for {normal!r}")
