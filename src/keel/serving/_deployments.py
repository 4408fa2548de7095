"""Deployments: a named, stored endpoint configuration (which model versions answer, how the
traffic is split, how requests are batched and bounded), with a history of every change.

``DeploymentStore`` is the small persistence contract (SQL implementation in
``_deployments_sql.py``); ``Deployments`` puts the registry check in front of it: a deployment
can only name versions that exist and are READY.
"""

from __future__ import annotations

import abc
import builtins
import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring._predlog import check_name

if TYPE_CHECKING:
    from keel.models import ModelRegistry
    from keel.serving._settings import ServingSettings

_MAX_MODEL_NAME = 250


class Mode(enum.StrEnum):
    """How traffic is split between champion and challenger."""

    SINGLE = "single"
    SHADOW = "shadow"
    CANARY = "canary"


class Role(enum.StrEnum):
    """Which of a deployment's versions handled a request."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


# (default, minimum, maximum) of each batching and limit setting.
_SETTING_BOUNDS: dict[str, tuple[float, float, float]] = {
    "max_batch_size": (32, 1, 4096),
    "max_latency_ms": (2.0, 0.0, 1000.0),
    "max_queue": (1024, 1, 1_000_000),
    "timeout_s": (10.0, 0.001, 600.0),
    "max_rows": (10_000, 1, 10_000_000),
    "max_body_bytes": (32 * 1024 * 1024, 1024, 1024**3),
}


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """Batching and limits of one deployment, named and defaulted as the inference app's
    ``ServingSettings``: a micro-batch gathers up to ``max_batch_size`` rows and waits at most
    ``max_latency_ms`` for company; at most ``max_queue`` requests wait (then 503); a predict
    call times out after ``timeout_s``; one request holds at most ``max_rows`` rows and
    ``max_body_bytes`` bytes."""

    max_batch_size: int = 32
    max_latency_ms: float = 2.0
    max_queue: int = 1024
    timeout_s: float = 10.0
    max_rows: int = 10_000
    max_body_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, (_, low, high) in _SETTING_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"must be a number, got {value!r}", field=name)
            if isinstance(_SETTING_BOUNDS[name][0], int) and not float(value).is_integer():
                raise InvalidInput(f"must be a whole number, got {value!r}", field=name)
            if not math.isfinite(value) or not low <= value <= high:
                raise InvalidInput(f"must be between {low:g} and {high:g}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def serving_settings(self) -> ServingSettings:
        """The inference app's settings for this deployment."""
        from keel.serving._settings import ServingSettings

        return ServingSettings(**self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentSettings:
        unknown = set(data) - set(_SETTING_BOUNDS)
        if unknown:
            raise InvalidInput(f"unknown setting(s) {sorted(unknown)}", field="settings")
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment as stored: ``revision`` counts its changes (1 at creation)."""

    name: str
    model: str
    champion: int
    challenger: int | None = None
    mode: Mode = Mode.SINGLE
    percent: float = 0.0  # canary only: share of traffic (0-100) the challenger answers
    sticky_key: str | None = None  # canary only: request field hashed for a stable split
    settings: DeploymentSettings = field(default_factory=DeploymentSettings)
    revision: int = 0
    created_ms: int = 0
    updated_ms: int = 0
    updated_by: str = ""

    def config_dict(self) -> dict[str, Any]:
        """What a change can alter (the history records snapshots of this)."""
        return {
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "mode": str(self.mode),
            "percent": self.percent,
            "sticky_key": self.sticky_key,
            "settings": self.settings.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.config_dict(),
            "revision": self.revision,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class DeploymentChange:
    """One entry of a deployment's history: who changed what, when, and the result."""

    name: str
    revision: int
    actor: str
    action: str  # "create" or "set"
    changes: Mapping[str, tuple[Any, Any]]  # field -> (old, new); old is None at creation
    config: Mapping[str, Any]  # Deployment.config_dict() after the change
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.revision,
            "actor": self.actor,
            "action": self.action,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "config": dict(self.config),
            "created_ms": self.created_ms,
        }


def validate(deployment: Deployment) -> Deployment:
    """Check a deployment's own consistency (no registry needed); returns it normalised."""
    check_name(deployment.name)
    if not deployment.model or len(deployment.model) > _MAX_MODEL_NAME:
        raise InvalidInput(f"must be 1..{_MAX_MODEL_NAME} characters", field="model")
    try:
        mode = Mode(deployment.mode)
    except ValueError:
        raise InvalidInput(
            f"must be one of {', '.join(m.value for m in Mode)}; got {deployment.mode!r}",
            field="mode",
        ) from None
    for name in ("champion", "challenger"):
        value = getattr(deployment, name)
        if value is None and name == "challenger":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"must be a version number >= 1, got {value!r}", field=name)
    if mode is not Mode.SINGLE and deployment.challenger is None:
        raise InvalidInput(f"mode {mode.value!r} needs a challenger version", field="challenger")
    if deployment.challenger is not None and deployment.challenger == deployment.champion:
        raise InvalidInput("must differ from the champion version", field="challenger")
    percent = deployment.percent
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise InvalidInput(f"must be a number, got {percent!r}", field="percent")
    if mode is Mode.CANARY:
        if not math.isfinite(percent) or not 0 < percent < 100:
            raise InvalidInput(
                "a canary sends between 0 and 100 percent (exclusive) to the challenger",
                field="percent",
            )
    elif percent != 0:
        raise InvalidInput(f"only a canary takes a percent (mode is {mode.value})", field="percent")
    if deployment.sticky_key is not None:
        if mode is not Mode.CANARY:
            raise InvalidInput(
                f"only a canary takes a sticky key (mode is {mode.value})", field="sticky_key"
            )
        if not deployment.sticky_key or len(deployment.sticky_key) > _MAX_MODEL_NAME:
            raise InvalidInput(f"must be 1..{_MAX_MODEL_NAME} characters", field="sticky_key")
    if not isinstance(deployment.settings, DeploymentSettings):
        raise InvalidInput("must be DeploymentSettings", field="settings")
    return replace(deployment, mode=mode, percent=float(percent))


class DeploymentStore(abc.ABC):
    """Deployments and their history. Every method raises only ``keel.errors`` types."""

    @abc.abstractmethod
    def create(self, deployment: Deployment, *, actor: str) -> Deployment:
        """Store a new deployment at revision 1; ``AlreadyExists`` if the name is taken."""

    @abc.abstractmethod
    def get(self, name: str) -> Deployment:
        """The deployment; ``NotFound`` if absent."""

    @abc.abstractmethod
    def list(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abc.abstractmethod
    def update(
        self, name: str, changes: Mapping[str, Any], *, actor: str, expected_revision: int | None
    ) -> Deployment:
        """Apply ``changes`` (fields of ``Deployment.config_dict``) as the next revision.
        ``Conflict`` if ``expected_revision`` is given and is no longer current."""

    @abc.abstractmethod
    def history(self, name: str) -> builtins.list[DeploymentChange]:
        """Every change of ``name``, oldest first; ``NotFound`` if it never existed."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class Deployments:
    """The deployment API: the store, with every named version checked against the registry
    (it must exist and be READY) before anything is written."""

    def __init__(self, store: DeploymentStore, registry: ModelRegistry) -> None:
        self.store = store
        self.registry = registry

    def _check_versions(self, deployment: Deployment) -> None:
        from keel.errors import NotFound
        from keel.models import VersionStatus

        for role in ("champion", "challenger"):
            number = getattr(deployment, role)
            if number is None:
                continue
            try:
                version = self.registry.get_version(deployment.model, number)
            except NotFound:
                raise InvalidInput(
                    f"model {deployment.model!r} has no version {number}", field=role
                ) from None
            if version.status is not VersionStatus.READY:
                raise InvalidInput(
                    f"{deployment.model} v{number} is {version.status.value}, not ready",
                    field=role,
                )

    def create(self, deployment: Deployment, *, actor: str = "local") -> Deployment:
        """Validate and store a new deployment."""
        checked = validate(deployment)
        self._check_versions(checked)
        return self.store.create(checked, actor=actor)

    def set(
        self,
        name: str,
        *,
        actor: str = "local",
        expected_revision: int | None = None,
        **changes: Any,
    ) -> Deployment:
        """Change some fields (``champion=4``, ``mode="canary"``, ``percent=10``,
        ``settings={"max_batch_size": 32}`` merges into the current settings)."""
        current = self.store.get(name)
        allowed = set(current.config_dict())
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"unknown field(s) {sorted(unknown)}", field=sorted(unknown)[0])
        values = dict(changes)
        if "settings" in values:
            merged = {**current.settings.to_dict(), **dict(values["settings"])}
            values["settings"] = DeploymentSettings.from_dict(merged)
        if values.get("mode", current.mode) != Mode.CANARY:
            # Leaving canary drops its split, so "set --mode single" alone is enough.
            values.setdefault("percent", 0.0)
            values.setdefault("sticky_key", None)
        candidate = validate(replace(current, **values))
        self._check_versions(candidate)
        return self.store.update(
            name, candidate.config_dict(), actor=actor, expected_revision=expected_revision
        )

    def get(self, name: str) -> Deployment:
        return self.store.get(check_name(name))

    def list(self) -> list[Deployment]:
        return self.store.list()

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        return self.store.history(check_name(name))


def open_deployments(uri: str | None = None) -> Deployments:
    """Deployments on the metadata store at ``uri`` (default: the ``tracking_uri`` setting),
    checked against the model registry in the same database."""
    from keel.config import get_settings, normalize_tracking_uri
    from keel.models import open_registry
    from keel.serving._deployments_sql import SqlDeploymentStore

    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    if normal.startswith(("http:", "https:")):
        from keel.serving._deployments_http import HttpDeploymentStore  # a team server's

        return Deployments(HttpDeploymentStore(normal), open_registry(normal))
    return Deployments(SqlDeploymentStore(normal), open_registry(normal))
