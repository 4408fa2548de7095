"""Opening the auth store by URL, at the edge."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from keel.config import get_settings, normalize_tracking_uri
from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.auth._limits import LoginLimits
    from keel.auth._passwords import HashParams
    from keel.auth._sql import AuthStore


def open_auth_store(
    url: str | None = None,
    *,
    hash_params: HashParams | None = None,
    login_limits: LoginLimits | None = None,
    session_ttl: timedelta = timedelta(hours=12),
) -> AuthStore:
    """The auth store in the metadata database at ``url`` (default: the ``tracking_uri``
    setting, i.e. the server's own database). Only SQL URLs: auth state lives with the server."""
    normal = normalize_tracking_uri(url) if url is not None else get_settings().tracking_uri
    if not normal.startswith(("sqlite:", "postgresql")):
        raise ConfigError(
            f"KEEL_TRACKING_URI: users and tokens live in the server's database; give its "
            f"sqlite:///… or postgresql://… URL, not {normal!r}"
        )
    from keel.auth._sql import AuthStore

    return AuthStore(
        normal, hash_params=hash_params, login_limits=login_limits, session_ttl=session_ttl
    )
