"""What the app hands the ``on_prediction`` hook after answering a request, successfully or
not (the prediction log writer plugs in here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keel.serving._payload import Inputs


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answered request: its id, the model that answered, the checked inputs (arrays in
    the signature's dtypes), the raw outputs, the time it took, and its HTTP ``status``.

    A failed request (``status`` other than 200) has no ``outputs``, and ``inputs`` only if
    its body passed the signature check (a model error, a timeout, too many rows) and it was
    not an overload rejection (503: logged as cheaply as possible)."""

    request_id: str
    model: str
    version: str
    route: str
    inputs: Inputs | None
    outputs: np.ndarray | None
    latency_ms: float
    timestamp_ms: int
    non_finite: tuple[int, ...] = ()
    role: str = "champion"  # "challenger" for a canary's or a shadow's answer
    deployment: str = ""  # the deployment served, when the app serves deployments
    status: int = 200


PredictionHook = Callable[[PredictionRecord], object]  # a return value is ignored


def no_op(record: PredictionRecord) -> None:
    """The default hook: nothing is logged."""
