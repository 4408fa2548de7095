"""Concept-drift detectors on a model's error stream, through ``river`` (0.26): ADWIN,
Page-Hinkley and DDM find the points where the error rate (or the size of the errors) changed.

The error stream is one number per labelled prediction, in prediction-time order: 1/0 for
misclassified/correct (classification) or the absolute error (regression). Each detector sees
the values one at a time (river's update is inherently per element; ADWIN's core is Rust) and
restarts after a detection, so a stream can hold several change points. A change point is the
index of the value at which the detector fired, with that value's timestamp: the detection
lags the true change by the detector's delay.

Defaults (river's for ADWIN; Keel's for Page-Hinkley and DDM, chosen so that an unshifted
stream of 4,000 errors at a 5% error rate alarms in at most 10% of seeds, and a jump to 40%
is caught within 400 values; ``tests/monitoring/test_detectors.py`` measures both):

* ``adwin``: ``delta=0.002`` (significance), ``clock=32`` (checks every 32 values),
  ``min_window_length=5``, ``grace_period=10``.
* ``page_hinkley``: ``min_instances=30``, ``delta=0.2``, ``threshold=50``,
  ``alpha=1 - 1e-4``, ``mode="both"``. River's ``delta`` and ``threshold`` are in the units of
  the stream, so one default cannot suit both error rates and errors in dollars. Keel divides
  the stream by ``scale``, by default the standard deviation of its first
  ``max(min_instances, 200)`` values (the in-control stretch), which puts ``delta`` and
  ``threshold`` in standard deviations; pass ``scale=1.0`` for river's raw units.
* ``ddm``: ``warm_start=300``, ``warning_threshold=2``, ``drift_threshold=4`` (river's 30 and
  3 alarm on half of unshifted streams: the minimum error rate DDM compares with is set by an
  early lucky stretch); binary streams only (0/1 errors of a classifier).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput

METHODS = ("adwin", "page_hinkley", "ddm")
_DEFAULTS: dict[str, dict[str, Any]] = {
    "adwin": {},
    "page_hinkley": {"delta": 0.2, "threshold": 50.0},
    "ddm": {"warm_start": 300, "drift_threshold": 4.0},
}
_SCALE_PREFIX = 200


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A detected change: the ``index`` of the value at which ``method`` fired in the error
    stream, and that value's time (epoch ms; None when no times were given)."""

    index: int
    timestamp_ms: int | None
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "timestamp_ms": self.timestamp_ms, "method": self.method}


def _detector(method: str, params: dict[str, Any]) -> Any:
    from river import drift

    options = {**_DEFAULTS[method], **params}
    factories: dict[str, Any] = {
        "adwin": drift.ADWIN,
        "page_hinkley": drift.PageHinkley,
        "ddm": drift.binary.DDM,
    }
    try:
        return factories[method](**options)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"bad parameters for {method}: {exc}", field="params") from None


def _scale(values: Any, min_instances: int) -> float:
    import numpy as np

    prefix = values[: max(min_instances, _SCALE_PREFIX)]
    for part in (prefix, values):
        sd = float(np.std(part))
        if sd > 0 and math.isfinite(sd):
            return sd
    return 1.0


def detect_changes(
    values: Sequence[float] | Any,
    timestamps_ms: Sequence[int] | Any | None = None,
    *,
    method: str = "adwin",
    **params: Any,
) -> list[ChangePoint]:
    """The change points ``method`` (``adwin``, ``page_hinkley`` or ``ddm``) finds in
    ``values`` (an error stream in time order; see the module docstring for the defaults and
    Page-Hinkley's ``scale``). ``params`` go to the river detector."""
    import numpy as np

    if method not in METHODS:
        raise InvalidInput(f"unknown detector {method!r}; choose one of {METHODS}", field="method")
    stream = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(stream).all():
        raise InvalidInput("the error stream holds NaN or infinite values", field="values")
    times = None
    if timestamps_ms is not None:
        times = np.asarray(timestamps_ms, dtype=np.int64).ravel()
        if len(times) != len(stream):
            raise InvalidInput(
                f"{len(times)} timestamps for {len(stream)} values", field="timestamps_ms"
            )
    options = dict(params)
    if method == "ddm" and not np.isin(stream, (0.0, 1.0)).all():
        raise InvalidInput(
            "DDM needs a binary error stream (1 = misclassified, 0 = correct); for regression "
            "errors use 'adwin' or 'page_hinkley'",
            field="method",
        )
    if method == "page_hinkley":
        scale = options.pop("scale", None)
        if scale is None:
            scale = _scale(stream, int(options.get("min_instances", 30)))
        if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
            raise InvalidInput("must be a positive number", field="scale")
        stream = stream / float(scale)
    detector = _detector(method, options)
    found: list[int] = []
    update = detector.update
    if method == "ddm":
        for i, x in enumerate(stream.astype(bool).tolist()):  # river: one update per value
            update(x)
            if detector.drift_detected:
                found.append(i)
    else:
        for i, x in enumerate(stream.tolist()):  # river: one update per value
            update(x)
            if detector.drift_detected:
                found.append(i)
    return [ChangePoint(i, None if times is None else int(times[i]), method) for i in found]


def error_stream(truth: Any, predicted: Any, *, task: str) -> Any:
    """The error stream of one model: 1.0/0.0 for a wrong/right class, or the absolute
    error of a regression (both as float64 arrays)."""
    import numpy as np

    if task == "classification":
        return (np.asarray(truth) != np.asarray(predicted)).astype(np.float64)
    return np.abs(np.asarray(truth, dtype=np.float64) - np.asarray(predicted, dtype=np.float64))
