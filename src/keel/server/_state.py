"""What every request handler reaches: the stores, the limits and the settings.

One ``ServerState`` is built per process by ``create_app`` and hung on ``app.state.keel``.
Nothing in it is per-request or per-process state that matters to users: sessions, tokens,
audit, idempotency and request-rate counters live in the database, so several server
processes behave as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from keel.server._objects import ObjectAccess
from keel.server._ratelimit import RateLimiter
from keel.server._settings import ServerSettings

if TYPE_CHECKING:
    from keel.artifacts import ContentStore
    from keel.auth import AuthStore
    from keel.data import DataStore
    from keel.models import Models
    from keel.models._release_base import ReleaseStore
    from keel.serving._deployments import Deployments
    from keel.tracking import TrackingStore


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the routes enforce; each is a ``KEEL_SERVER_*`` setting (docs/server.md)."""

    max_body_bytes: int = 5 << 30  # any request body (streamed uploads included)
    max_json_bytes: int = 8 << 20  # a JSON request body
    max_json_depth: int = 32  # nesting of a JSON request body
    max_batch_items: int = 10_000  # metrics/params/tags/items in one batch call
    max_name_length: int = 250  # project, run, dataset, user and token names
    max_tag_length: int = 8000  # a tag or param value
    max_page_size: int = 1000  # max_results of a search or list call
    rate_per_minute: int = 6000  # per principal (or address), all processes together; 0 = off

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Limits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_json_bytes=min(settings.max_json_bytes, settings.max_body_bytes),
            max_json_depth=settings.max_json_depth,
            max_batch_items=settings.max_batch_items,
            max_name_length=settings.max_name_length,
            max_tag_length=settings.max_tag_length,
            max_page_size=settings.max_page_size,
            rate_per_minute=settings.rate_per_minute,
        )


@dataclass(frozen=True, slots=True)
class ServerState:
    tracking: TrackingStore
    content: ContentStore
    data: DataStore
    auth: AuthStore
    models: Models  # the registry, on the content and tracking stores above
    releases: ReleaseStore
    deployments: Deployments
    limits: Limits
    settings: ServerSettings
    rate: RateLimiter
    objects: ObjectAccess
    tracking_uri: str
    artifacts_uri: str

    def close(self) -> None:
        self.tracking.close()
        self.data.close()
        self.auth.close()
        self.models.registry.close()
        self.releases.close()
        self.deployments.store.close()
        self.content.backend.close()


def store_uris(settings: ServerSettings) -> tuple[str, str]:
    """The metadata URL and artifact root the server uses (server settings > keel.config)."""
    from keel.config import get_settings, normalize_artifacts_uri, normalize_tracking_uri

    base = get_settings()
    tracking = (
        normalize_tracking_uri(settings.tracking_uri)
        if settings.tracking_uri
        else base.tracking_uri
    )
    artifacts = (
        normalize_artifacts_uri(settings.artifacts_uri)
        if settings.artifacts_uri
        else base.artifacts_uri
    )
    if not tracking.startswith(("sqlite:", "postgresql")):
        from keel.errors import ConfigError

        raise ConfigError(
            "KEEL_TRACKING_URI: the server keeps metadata in SQLite or PostgreSQL, "
            f"got {tracking!r}"
        )
    return tracking, artifacts


def open_state(settings: ServerSettings, *, auth: AuthStore | None = None) -> ServerState:
    """Open every store the server needs (migrating the database to the newest schema);
    ``auth`` is an already-open auth store (tests pass one with cheap password hashing)."""
    from keel.artifacts import open_content_store
    from keel.auth import open_auth_store
    from keel.data import open_data_store
    from keel.db import connect
    from keel.models import Models, open_registry
    from keel.models._release_sql import open_release_store
    from keel.serving._deployments import open_deployments
    from keel.tracking import open_store

    tracking_uri, artifacts_uri = store_uris(settings)
    engine = connect(tracking_uri)
    tracking = open_store(tracking_uri)
    content = open_content_store(artifacts_uri)
    return ServerState(
        tracking=tracking,
        content=content,
        data=open_data_store(tracking_uri),
        auth=auth if auth is not None else open_auth_store(tracking_uri),
        models=Models(open_registry(tracking_uri), content, tracking),
        releases=open_release_store(tracking_uri),
        deployments=open_deployments(tracking_uri),
        limits=Limits.from_settings(settings),
        settings=settings,
        rate=RateLimiter(engine, per_minute=settings.rate_per_minute),
        objects=ObjectAccess(engine),
        tracking_uri=tracking_uri,
        artifacts_uri=artifacts_uri,
    )


def get_state(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.keel
    return state
