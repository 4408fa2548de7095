"""Typed settings: ``KEEL_*`` environment variables > the project's ``keel.toml`` > defaults.

With nothing set, everything lives in a ``.keel/`` folder found by walking up from the working
directory (like ``.git``), falling back to ``~/.keel``. URIs are normalised here, once, so the
rest of Keel sees one spelling per backend.

A plain dataclass rather than pydantic-settings: every command reads these, and importing
pydantic-settings (and the plugin scan it triggers) cost each CLI start-up tens of milliseconds.
"""

from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keel.errors import ConfigError

HOME_DIRNAME = ".keel"
PROJECT_FILE = "keel.toml"
ENV_PREFIX = "KEEL_"


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


@dataclasses.dataclass(frozen=True, init=False)
class Settings:
    """Every setting Keel reads. Field ``x`` is set by ``KEEL_X`` (any case) or ``x`` under
    ``[keel]`` in the project file; keyword arguments override both. Unknown ``KEEL_*``
    variables and ``[keel]`` keys are ignored (other parts of Keel read theirs)."""

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

    def __init__(self, **overrides: Any) -> None:
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise TypeError(f"Settings has no field {sorted(unknown)[0]!r}")
        env = {k.lower(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
        project = _project_file()
        table = _keel_table(project) if project is not None else {}
        origin: dict[str, str] = {}
        for name, field in fields.items():
            if name in overrides:
                raw, origin[name] = overrides[name], name
            elif (ENV_PREFIX + name).lower() in env:
                raw, origin[name] = env[(ENV_PREFIX + name).lower()], ENV_PREFIX + name.upper()
            elif name in table:
                raw, origin[name] = table[name], f"{project}: [keel] {name}"
            else:
                raw, origin[name] = field.default, name
            object.__setattr__(self, name, _coerce(field.default, raw, origin[name]))
        for name in ("metric_queue_size", "metric_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"{origin[name]}: {name} must be a positive integer, got {getattr(self, name)}"
                )
        home = self.home if str(self.home) not in ("", ".") else find_home()
        object.__setattr__(self, "home", home.expanduser().resolve())
        tracking = self.tracking_uri or f"sqlite:///{self.home / 'keel.db'}"
        object.__setattr__(self, "tracking_uri", normalize_tracking_uri(tracking))
        artifacts = self.artifacts_uri or str(self.home / "artifacts")
        object.__setattr__(self, "artifacts_uri", normalize_artifacts_uri(artifacts))


def _coerce(default: object, raw: object, where: str) -> Any:
    """``raw`` (text from the environment, a TOML value, or a default) as the type of the
    field's ``default``; ``ConfigError`` naming ``where`` when it is not one."""
    if isinstance(default, Path) and isinstance(raw, str | Path):
        return Path(raw)
    if isinstance(default, str) and isinstance(raw, str):
        return raw
    if not isinstance(raw, bool):
        try:
            if isinstance(default, int) and isinstance(raw, int | str):
                return int(raw)
            if isinstance(default, float) and isinstance(raw, int | float | str):
                return float(raw)
        except ValueError:
            pass
    kind = "a whole number" if isinstance(default, int) else type(default).__name__
    raise ConfigError(f"{where}: expected {kind}, got {raw!r}")


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
    return Settings()


def get_settings() -> Settings:
    """The process-wide settings, read once; ``reset_settings()`` rereads them (tests, CLI)."""
    return _cached()


def reset_settings() -> None:
    _cached.cache_clear()
