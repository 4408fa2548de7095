"""Choosing the registry by URI, at the edge: model metadata lives in the same database as
tracking (``tracking_uri``)."""

from __future__ import annotations

from keel.config import get_settings, normalize_tracking_uri
from keel.errors import ConfigError
from keel.models._base import ModelRegistry


def open_registry(uri: str | None = None) -> ModelRegistry:
    """The model registry for ``uri`` (default: the ``tracking_uri`` setting)."""
    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    if normal.startswith(("sqlite:", "postgresql")):
        from keel.models._sql import SqlModelRegistry

        return SqlModelRegistry(normal)
    if normal.startswith(("http:", "https:")):
        from keel.models._http import HttpModelRegistry  # a team server's (token: KEEL_TOKEN)

        return HttpModelRegistry(normal)
    raise ConfigError(
        f"KEEL_TRACKING_URI: no model registry for {normal!r}; use sqlite:///path, "
        "postgresql://… or a team server's http(s)://…"
    )
