"""Input checks of the SQL tracking store: a bad value is ``InvalidInput`` naming its field.

The limits match the column sizes in ``_tables.py``, so a value that passes is always storable.
Metric values are floats; ``NaN`` and ``±inf`` are accepted (a diverging loss is worth keeping),
and ``NaN`` is stored as SQL NULL so that no comparison in a search matches it on either dialect.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keel.errors import InvalidInput, UnsafePath
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import ArtifactFile, Metric, RunIO

MAX_NAME = 250
MAX_VALUE = 8000
MAX_PATH = 1024
MAX_DIGEST = 80
MAX_KIND = 32
MAX_BATCH_METRICS = 100_000
MAX_BATCH_ITEMS = 10_000
MAX_RESULTS = 50_000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DIRECTIONS = ("input", "output")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")


def name(value: object, field: str) -> str:
    """A project/run name or a param/tag/metric key: text, 1-250 chars, no control chars."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if not value or not value.strip():
        raise InvalidInput("must not be empty", field=field)
    if len(value) > MAX_NAME:
        raise InvalidInput(f"longer than {MAX_NAME} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInput("must not contain control characters", field=field)
    return value


def text(value: object, field: str, *, limit: int = MAX_VALUE) -> str:
    """A param/tag value or a note: text up to ``limit`` chars without NUL."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if len(value) > limit:
        raise InvalidInput(f"longer than {limit} characters", field=field)
    if "\x00" in value:
        raise InvalidInput("must not contain NUL", field=field)
    return value


def integer(value: object, field: str, *, minimum: int = INT64_MIN) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"must be an integer, got {type(value).__name__}", field=field)
    if not minimum <= value <= INT64_MAX:
        raise InvalidInput(f"out of range [{minimum}, {INT64_MAX}]", field=field)
    return value


def run_id(value: object, field: str = "run_id") -> str:
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise InvalidInput("must be 1-32 characters of [0-9A-Za-z_-]", field=field)
    return value


def mapping(values: Mapping[str, str] | None, field: str) -> dict[str, str]:
    """Validated copy of a params/tags mapping; fields are named like ``params.lr``."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput("must be a mapping of strings", field=field)
    if len(values) > MAX_BATCH_ITEMS:
        raise InvalidInput(f"more than {MAX_BATCH_ITEMS} entries", field=field)
    out: dict[str, str] = {}
    for key, value in values.items():
        name(key, f"{field}.key")
        out[key] = text(value, f"{field}.{key}")
    return out


def metrics(points: Sequence[Metric]) -> MetricColumns:
    """The points checked, as columns for the metrics table: values float (NaN as None).

    The columns are checked whole (the types of a column at once, each distinct key once, the
    range of a column by its min and max), so a batch from the wire costs microseconds per
    thousand points; only a batch that fails a check is walked point by point, to name the
    problem exactly.
    """
    if len(points) > MAX_BATCH_METRICS:
        raise InvalidInput(f"more than {MAX_BATCH_METRICS} points in one batch", field="metrics")
    if not isinstance(points, MetricColumns):
        for i, point in enumerate(points):
            if not isinstance(point, Metric):
                raise InvalidInput(f"item {i} is not a Metric", field="metrics")
    cols = MetricColumns.of(points)
    keys, values, steps, stamps = cols.keys, cols.values, cols.steps, cols.timestamps
    try:
        distinct: Iterable[object] = set(keys)
    except TypeError:  # an unhashable key from the wire: name() says what is wrong with it
        distinct = keys
    for key in distinct:
        name(key, "metrics.key")
    if set(map(type, values)) - {float}:
        values = [_metric_value(key, value) for key, value in zip(keys, values, strict=True)]
    if math.isnan(sum(values)):  # a NaN (or inf - inf) somewhere: NaN is stored as NULL
        values = [None if math.isnan(v) else v for v in values]
    _int64_column(steps, "metrics.step", INT64_MIN)
    _int64_column(stamps, "metrics.timestamp_ms", 0)
    return MetricColumns(keys, values, steps, stamps)


def _metric_value(key: str, value: object) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"value of {key!r} must be a number", field="metrics.value")
    try:
        return float(value)
    except OverflowError as exc:
        raise InvalidInput(f"value of {key!r} is out of range", field="metrics.value") from exc


def _int64_column(column: Sequence[Any], field: str, minimum: int) -> None:
    if not column:
        return
    if set(map(type, column)) == {int}:
        low, high = min(column), max(column)
        if minimum <= low and high <= INT64_MAX:
            return
    for value in column:
        integer(value, field, minimum=minimum)


def io_items(items: Iterable[RunIO]) -> list[RunIO]:
    out: list[RunIO] = []
    for item in items:
        if not isinstance(item, RunIO):
            raise InvalidInput("items must be RunIO records", field="io")
        text(item.ref, "io.ref")
        if not item.ref:
            raise InvalidInput("must not be empty", field="io.ref")
        name(item.kind, "io.kind")
        if len(item.kind) > MAX_KIND:
            raise InvalidInput(f"longer than {MAX_KIND} characters", field="io.kind")
        direction(item.direction, "io.direction")
        if item.digest is not None:
            text(item.digest, "io.digest", limit=MAX_DIGEST)
        out.append(item)
        if len(out) > MAX_BATCH_ITEMS:
            raise InvalidInput(f"more than {MAX_BATCH_ITEMS} items", field="io")
    return out


def direction(value: object, field: str = "direction") -> str:
    if value not in DIRECTIONS:
        raise InvalidInput(f"must be one of {DIRECTIONS}, got {value!r}", field=field)
    return str(value)


def artifact_path(value: object, field: str = "path") -> str:
    """A relative POSIX path inside the run's artifact tree, normalised; ``UnsafePath`` if not."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("must be a non-empty string", field=field)
    if len(value) > MAX_PATH:
        raise InvalidInput(f"longer than {MAX_PATH} characters", field=field)
    if _CONTROL.search(value) or "\\" in value:
        raise UnsafePath(f"control character or backslash in {value!r}", field=field)
    if value.startswith("/"):
        raise UnsafePath(f"absolute path {value!r}", field=field)
    normal = posixpath.normpath(value)
    if normal in (".", "..") or normal.startswith("../"):
        raise UnsafePath(f"{value!r} escapes the run's artifact root", field=field)
    return normal


def artifacts(files: Iterable[ArtifactFile]) -> list[ArtifactFile]:
    out: dict[str, ArtifactFile] = {}
    for item in files:
        if not isinstance(item, ArtifactFile):
            raise InvalidInput("files must be ArtifactFile records", field="files")
        path = artifact_path(item.path, "files.path")
        digest = text(item.digest, "files.digest", limit=MAX_DIGEST)
        if not digest:
            raise InvalidInput("must not be empty", field="files.digest")
        size = integer(item.size, "files.size", minimum=0)
        out[path] = ArtifactFile(path=path, digest=digest, size=size)
        if len(out) > MAX_BATCH_ITEMS:
            raise InvalidInput(f"more than {MAX_BATCH_ITEMS} files", field="files")
    return list(out.values())


def max_results(value: object) -> int:
    count = integer(value, "max_results", minimum=1)
    if count > MAX_RESULTS:
        raise InvalidInput(f"at most {MAX_RESULTS}", field="max_results")
    return count
