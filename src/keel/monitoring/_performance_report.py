"""The records of a performance assessment (``PerformanceReport`` and its slices and
buckets) and the monitored quantities they expose; ``to_dict()`` is JSON-safe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.monitoring._detectors import ChangePoint
from keel.monitoring._performance_metrics import Comparison, Metrics
from keel.monitoring._quantities import Quantity


@dataclass(frozen=True, slots=True)
class SliceMetrics:
    """The metrics of the rows whose slice column has ``value`` (a class or a bin)."""

    value: str
    rows: int
    metrics: Metrics

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "rows": self.rows, **self.metrics.to_dict()}


@dataclass(frozen=True, slots=True)
class BucketMetrics:
    """One time bucket of the headline rows: predictions, labels, coverage and metrics."""

    start_ms: int
    end_ms: int
    rows: int
    requests: int
    labelled_requests: int
    metrics: Metrics

    @property
    def label_coverage(self) -> float | None:
        return self.labelled_requests / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "rows": self.rows,
            "requests": self.requests,
            "labelled_requests": self.labelled_requests,
            "label_coverage": self.label_coverage,
            **self.metrics.to_dict(),
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Performance of a window (see the module docstring); ``to_dict()`` is JSON-safe."""

    task: str | None
    prediction: str
    rows: int
    requests: int
    labelled_rows: int
    labelled_requests: int
    metrics: Metrics
    classes: tuple[str, ...] = ()
    positive_label: str | None = None
    roles: dict[str, Metrics] = field(default_factory=dict)
    versions: dict[str, Metrics] = field(default_factory=dict)
    slices: dict[str, tuple[SliceMetrics, ...]] = field(default_factory=dict)
    buckets: tuple[BucketMetrics, ...] = ()
    comparison: Comparison | None = None
    changes: tuple[ChangePoint, ...] = ()
    detectors: tuple[str, ...] = ()
    reason: str = ""

    @property
    def label_coverage(self) -> float | None:
        """Labelled requests / requests (None for an empty window)."""
        return self.labelled_requests / self.requests if self.requests else None

    @property
    def row_coverage(self) -> float | None:
        return self.labelled_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "prediction": self.prediction,
            "rows": self.rows,
            "requests": self.requests,
            "labelled_rows": self.labelled_rows,
            "labelled_requests": self.labelled_requests,
            "label_coverage": self.label_coverage,
            "row_coverage": self.row_coverage,
            "classes": list(self.classes),
            "positive_label": self.positive_label,
            "metrics": self.metrics.to_dict(),
            "roles": {k: v.to_dict() for k, v in self.roles.items()},
            "versions": {k: v.to_dict() for k, v in self.versions.items()},
            "slices": {k: [s.to_dict() for s in v] for k, v in self.slices.items()},
            "buckets": [b.to_dict() for b in self.buckets],
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "concept_drift": {
                "detectors": list(self.detectors),
                "changes": [c.to_dict() for c in self.changes],
            },
            "reason": self.reason,
        }

    def quantities(self) -> dict[str, Quantity]:
        out = {"label_coverage": Quantity(self.label_coverage, self.requests)}
        out.update(self.metrics.quantities("performance"))
        for role, metrics in self.roles.items():
            out.update(metrics.quantities(f"performance.{role}"))
        for version, metrics in self.versions.items():
            out.update(metrics.quantities(f"performance.version.{version}"))
        if self.comparison is not None:
            for name, diff in self.comparison.diffs.items():
                out[f"performance.challenger_gain.{name}"] = Quantity(diff.diff, self.comparison.n)
        if self.detectors:
            n = self.metrics.n
            count = float(len(self.changes)) if n else None
            out["concept_drift.changes"] = Quantity(count, n)
        return out
