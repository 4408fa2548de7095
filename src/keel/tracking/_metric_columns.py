"""A batch of metric points held as four columns: the shape a batch has on the wire.

``MetricColumns`` is a ``Sequence[Metric]``, so every store and sink takes it unchanged, but
the code on the hot path reads its columns directly: the writer builds one from its queued
tuples, ``HttpTrackingStore`` sends the columns as they are, the server decodes a request into
one, and the SQL store checks and COPYs the columns. A batch of thousands of points never
becomes thousands of ``Metric`` objects on the way (building one costs more than storing it).

The columns are whatever the caller gave until a store checks them (``_sql_validate``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from keel.tracking._records import Metric


class MetricColumns(Sequence[Metric]):
    """Points ``i`` = ``Metric(keys[i], values[i], steps[i], timestamps[i])``."""

    __slots__ = ("keys", "steps", "timestamps", "values")

    def __init__(
        self,
        keys: Sequence[str],
        values: Sequence[Any],
        steps: Sequence[int],
        timestamps: Sequence[int],
    ) -> None:
        if not len(keys) == len(values) == len(steps) == len(timestamps):
            raise ValueError("the columns of a metric batch must have one length")
        self.keys = keys
        self.values = values
        self.steps = steps
        self.timestamps = timestamps

    @classmethod
    def of(cls, points: Sequence[Metric]) -> MetricColumns:
        """``points`` as columns (itself if it already is)."""
        if isinstance(points, MetricColumns):
            return points
        return cls(
            [p.key for p in points],
            [p.value for p in points],
            [p.step for p in points],
            [p.timestamp_ms for p in points],
        )

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> Metric: ...

    @overload
    def __getitem__(self, index: slice) -> MetricColumns: ...

    def __getitem__(self, index: int | slice) -> Metric | MetricColumns:
        if isinstance(index, slice):
            return MetricColumns(
                self.keys[index], self.values[index], self.steps[index], self.timestamps[index]
            )
        return Metric(
            self.keys[index], self.values[index], self.steps[index], self.timestamps[index]
        )

    def __iter__(self) -> Iterator[Metric]:
        return map(Metric, self.keys, self.values, self.steps, self.timestamps)

    def __repr__(self) -> str:
        return f"MetricColumns(<{len(self)} points>)"
