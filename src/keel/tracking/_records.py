"""Frozen records the tracking stores return (never ORM rows)."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    description: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class RunEnv:
    """Where a run executes, captured when it starts."""

    user: str = ""
    host: str = ""
    pid: int | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    python_version: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunIO:
    """Something a run read (``direction="input"``) or wrote (``"output"``), e.g. a dataset."""

    ref: str
    kind: str = "dataset"
    direction: str = "input"
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    project: str
    name: str
    status: RunStatus
    start_ms: int
    end_ms: int | None
    heartbeat_ms: int
    parent_id: str | None = None
    note: str = ""
    env: RunEnv = field(default_factory=RunEnv)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest value per key
    tags: Mapping[str, str] = field(default_factory=dict)
    io: tuple[RunIO, ...] = ()
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, as ``--json`` prints it."""
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "status": str(self.status),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "parent_id": self.parent_id,
            "note": self.note,
            "env": {
                "user": self.env.user,
                "host": self.env.host,
                "pid": self.env.pid,
                "git_commit": self.env.git_commit,
                "git_dirty": self.env.git_dirty,
                "python_version": self.env.python_version,
                "packages": dict(self.env.packages),
            },
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "io": [
                {"ref": i.ref, "kind": i.kind, "direction": i.direction, "digest": i.digest}
                for i in self.io
            ],
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; pass ``next_token`` back to get the next one (None: last page)."""

    items: tuple[T, ...]
    next_token: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
