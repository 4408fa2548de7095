"""Frozen records the model registry returns (never ORM rows), and their JSON forms.

Everything a later stage needs about a version is on ``ModelVersion``: its files (digests and
sizes, checked before a load opens anything), signature, input example, environment, flavour,
size, predict latency at logging time, and its lineage (run, dataset inputs, code commit).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keel.errors import InvalidInput


class VersionStatus(enum.StrEnum):
    """A version is READY only once every file is stored and verified; FAILED if that failed."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a model: its path inside the model folder, BLAKE3 digest and size."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One input or output: a named column (``name``) or an unnamed tensor (``name=None``).
    ``dtype`` is a NumPy dtype name (``float64``, ``int64``, ``bool``, ``str`` for text,
    ``datetime64[ns]``, ``category``); ``shape`` is given for tensors, ``-1`` marking the
    batch axis (and any other free axis)."""

    name: str | None
    dtype: str
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColSpec:
        shape = data.get("shape")
        return cls(
            name=data.get("name"),
            dtype=str(data["dtype"]),
            shape=None if shape is None else tuple(int(s) for s in shape),
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and returns. ``kind="columns"``: a table whose ``inputs`` are its
    columns (by name); ``kind="tensor"``: one array described by ``inputs[0]``."""

    kind: Literal["columns", "tensor"]
    inputs: tuple[ColSpec, ...]
    outputs: tuple[ColSpec, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.inputs if c.name is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        kind = data.get("kind")
        if kind not in ("columns", "tensor"):
            raise InvalidInput(f"unknown signature kind {kind!r}", field="signature.kind")
        return cls(
            kind=kind,
            inputs=tuple(ColSpec.from_dict(c) for c in data.get("inputs", ())),
            outputs=tuple(ColSpec.from_dict(c) for c in data.get("outputs", ())),
        )


@dataclass(frozen=True, slots=True)
class ModelEnv:
    """What a model needs to load: the Python it was logged with and exact package versions."""

    python_version: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"python_version": self.python_version, "packages": dict(self.packages)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEnv:
        return cls(
            python_version=str(data.get("python_version", "")),
            packages={str(k): str(v) for k, v in dict(data.get("packages", {})).items()},
        )


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset version a model's run read (``direction="input"``) or wrote."""

    ref: str
    digest: str | None = None
    direction: str = "input"

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "direction": self.direction}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetInput:
        return cls(
            ref=str(data["ref"]),
            digest=data.get("digest"),
            direction=str(data.get("direction", "input")),
        )


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    tags: Mapping[str, str]
    aliases: Mapping[str, int]  # alias -> version number
    latest_version: int  # the last number handed out (0: none yet)
    created_ms: int
    updated_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }


@dataclass(frozen=True, slots=True)
class NewModelVersion:
    """What ``create_version`` records for a new (PENDING) version; files come at completion."""

    name: str
    flavor: str
    signature: Signature | None = None
    input_example: str | None = None  # path of the example among the version's files
    environment: ModelEnv = field(default_factory=ModelEnv)
    latency_ms: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # flavour metadata (JSON)
    requires_trust: bool = False  # pickle-like: loads only once an admin marks it trusted
    run_id: str | None = None
    source: str = ""  # where the files came from, e.g. runs:/<id>/model ("" if logged directly)
    datasets: tuple[DatasetInput, ...] = ()
    git_commit: str | None = None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version. ``size`` is the sum of its files; ``latency_ms`` the median
    time of one ``predict`` on the input example at logging time."""

    name: str
    version: int
    status: VersionStatus
    flavor: str
    files: tuple[ModelFile, ...] = ()
    signature: Signature | None = None
    input_example: str | None = None
    environment: ModelEnv = field(default_factory=ModelEnv)
    size: int = 0
    latency_ms: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    requires_trust: bool = False
    trusted: bool = False
    trust_reason: str = ""
    run_id: str | None = None
    source: str = ""
    datasets: tuple[DatasetInput, ...] = ()
    git_commit: str | None = None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    error: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "version": self.version,
            "status": str(self.status),
            "flavor": self.flavor,
            "files": [f.to_dict() for f in self.files],
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "environment": self.environment.to_dict(),
            "size": self.size,
            "latency_ms": self.latency_ms,
            "options": dict(self.options),
            "requires_trust": self.requires_trust,
            "trusted": self.trusted,
            "trust_reason": self.trust_reason,
            "run_id": self.run_id,
            "source": self.source,
            "datasets": [d.to_dict() for d in self.datasets],
            "git_commit": self.git_commit,
            "description": self.description,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
            "error": self.error,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }
