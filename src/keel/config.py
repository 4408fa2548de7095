"""Typed settings: ``KEEL_*`` environment variables > the project's ``keel.toml`` > defaults.

With nothing set, everything lives in a ``.keel/`` folder found by walking up from the working
directory (like ``.git``), falling back to ``~/.keel``. URIs are normalised here, once, so the
rest of Keel sees one spelling per backend.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from keel.errors import ConfigError

HOME_DIRNAME = ".keel"
PROJECT_FILE = "keel.toml"


def find_home(start: Path | None = None) -> Path:
    """The nearest ``.keel`` folder at or above ``start`` (default: cwd), else ``~/.keel``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return Path.home() / HOME_DIRNAME


def _project_file() -> Path | None:
    home = Path(os.environ["KEEL_HOME"]) if os.environ.get("KEEL_HOME") else find_home()
    candidate = home.parent / PROJECT_FILE
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Every setting Keel reads. Field ``x`` is set by ``KEEL_X`` or ``x`` under ``[keel]``."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore", frozen=True)

    home: Path = Path()
    tracking_uri: str = ""
    artifacts_uri: str = ""
    # Project of runs started without one (``keel.start_run()``, autologging).
    project: str = "default"
    # Bounded queue of the asynchronous metric writer: back-pressure instead of memory growth.
    metric_queue_size: int = 200_000
    metric_batch_size: int = 5_000
    flush_timeout_s: float = 30.0
    heartbeat_interval_s: float = 15.0
    heartbeat_timeout_s: float = 120.0

    @field_validator("metric_queue_size", "metric_batch_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive integer")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        project = _project_file()
        if project is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=_keel_table(project)))
        return tuple(sources)

    def model_post_init(self, context: Any, /) -> None:
        home = self.home if str(self.home) not in ("", ".") else find_home()
        object.__setattr__(self, "home", home.expanduser().resolve())
        tracking = self.tracking_uri or f"sqlite:///{self.home / 'keel.db'}"
        object.__setattr__(self, "tracking_uri", normalize_tracking_uri(tracking))
        artifacts = self.artifacts_uri or str(self.home / "artifacts")
        object.__setattr__(self, "artifacts_uri", normalize_artifacts_uri(artifacts))


def _keel_table(path: Path) -> dict[str, Any]:
    """The ``[keel]`` table of a project file; other tables (``[gates]`` …) belong to other
    parts of Keel, and a file without ``[keel]`` is fine."""
    import tomllib

    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the project file: {exc}") from exc
    table = doc.get("keel", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'keel' must be a table ([keel]), not a {type(table).__name__}")
    return table


def normalize_tracking_uri(uri: str) -> str:
    """One spelling per backend: ``sqlite:///abs/path``, ``postgresql+psycopg://…``, ``http(s)://…``."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "sqlite":
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
        if not path or path == ":memory:":
            raise ConfigError(f"KEEL_TRACKING_URI: SQLite needs a file path, got {uri!r}")
        return f"sqlite:///{Path(path).expanduser().resolve()}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if scheme in ("http", "https"):
        return uri.rstrip("/")
    raise ConfigError(
        f"KEEL_TRACKING_URI: unsupported scheme {scheme!r} in {uri!r}; "
        "use sqlite:///path, postgresql://… or http(s)://host:port"
    )


def normalize_artifacts_uri(uri: str) -> str:
    """A local absolute path, or ``s3://bucket/prefix`` without a trailing slash."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"KEEL_ARTIFACTS_URI: missing bucket in {uri!r}")
        return f"s3://{parts.netloc}{parts.path.rstrip('/')}"
    if scheme == "file":
        return str(Path(parts.path).expanduser().resolve())
    if scheme and len(scheme) > 1:
        raise ConfigError(
            f"KEEL_ARTIFACTS_URI: unsupported scheme {scheme!r}; use a local path or s3://bucket/prefix"
        )
    return str(Path(uri).expanduser().resolve())


@lru_cache(maxsize=1)
def _cached() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError names the setting
        raise ConfigError(str(exc)) from exc


def get_settings() -> Settings:
    """The process-wide settings, read once; ``reset_settings()`` rereads them (tests, CLI)."""
    return _cached()


def reset_settings() -> None:
    _cached.cache_clear()
