"""Server settings: ``KEEL_SERVER_*`` environment variables > defaults.

The stores come from ``keel.config`` (``KEEL_TRACKING_URI``, ``KEEL_ARTIFACTS_URI``) unless the
server settings name them. ``keel server`` passes its options down to every worker process
through these variables, so each worker builds the same app from the environment alone.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
# Bind-everything addresses are not names a client puts in a Host header.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104


class ServerSettings(BaseSettings):
    """Every setting of the team server. Field ``x`` is set by ``KEEL_SERVER_X``; lists are
    JSON (``KEEL_SERVER_ALLOWED_HOSTS='["keel.example.com"]'``)."""

    model_config = SettingsConfigDict(env_prefix="KEEL_SERVER_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Empty: the tracking_uri / artifacts_uri of keel.config.
    tracking_uri: str = ""
    artifacts_uri: str = ""
    # Host header allowlist; the loopback names and the bind host are always added.
    allowed_hosts: tuple[str, ...] = ()
    # CORS is off unless origins are listed; "*" is refused (credentials never go cross-site).
    cors_origins: tuple[str, ...] = ()
    # Mark the session cookie Secure and send HSTS even when the server itself speaks plain
    # HTTP (TLS ends at a proxy in front of it).
    https: bool = False
    session_cookie: str = "keel_session"
    # Limits (see docs/server.md).
    # Raw bodies (artifact uploads) stream to storage, so their bound is about disk, not memory;
    # JSON bodies are parsed whole, so theirs is small.
    max_body_bytes: int = Field(default=5 << 30, ge=1024)
    max_json_bytes: int = Field(default=8 << 20, ge=1024)
    max_json_depth: int = Field(default=32, ge=2, le=1000)
    max_batch_items: int = Field(default=10_000, ge=1)
    max_name_length: int = Field(default=250, ge=1)
    max_tag_length: int = Field(default=8000, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    # Requests per minute per principal (or per address before authentication); 0 disables.
    rate_per_minute: int = Field(default=6000, ge=0)
    # Requests one server process works on at once; more are answered 503 + Retry-After at
    # once (0: no bound).
    max_in_flight: int = Field(default=512, ge=0)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for origin in v:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError(
                    f"CORS origins are full origins like https://app.example.com, got {origin!r}"
                )
        return tuple(o.rstrip("/") for o in v)

    def host_allowlist(self) -> frozenset[str]:
        """Host header values (without port) the server answers to."""
        names = {*LOOPBACK_NAMES, *(h.lower() for h in self.allowed_hosts)}
        if self.host not in _WILDCARDS:
            names.add(self.host.lower())
        return frozenset(names)
