"""Monitored quantities: the flat names that monitoring results expose, alert rules test, the
stored history charts and the Prometheus export publishes.

Every part of a monitoring result (drift, performance, operations) reports its numbers as a
mapping ``name -> Quantity``. Names are dotted, lower case, and stable across runs:

==================================  =======================================================
``drift.share``                     share of columns that drifted (0..1)
``drift.drifted_columns``           how many columns drifted
``drift.column.<col>``              that column's drift score (the test's statistic)
``drift.multivariate.auc``          the domain classifier's AUC (0.5 = no drift)
``prediction_drift.<output>``       drift score of one model output
``label_coverage``                  share of logged predictions that have a label (0..1)
``performance.<metric>``            a metric of the champion over labelled rows
``performance.<role>.<metric>``     the same per role (``champion``, ``challenger``)
``performance.version.<v>.<metric>`` the same per model version
``performance.business.<name>``     a business metric (cost or value per outcome)
``performance.challenger_gain.<m>`` challenger minus champion on the same labelled requests
``concept_drift.changes``           change points the detectors found in the error stream
``requests``                        logged requests in the window
``throughput_rps``                  requests per second over the window
``error_rate``                      share of requests answered with a server error (5xx)
``client_error_rate``               share of requests refused as bad input (4xx)
``latency.p50_ms`` / ``.p95_ms`` / ``.p99_ms``  request latency quantiles
==================================  =======================================================

A quantity carries the sample size it was computed from, so a rule can demand a minimum
(``n``), and ``None`` as its value when there was not enough data to compute it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Quantity:
    """One monitored number: its ``value`` (None when it could not be computed) and the
    number of rows, requests or labels ``n`` behind it."""

    value: float | None
    n: int

    def __post_init__(self) -> None:
        if self.value is not None and not math.isfinite(self.value):
            object.__setattr__(self, "value", None)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n": self.n}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quantity:
        value = data.get("value")
        return cls(value=None if value is None else float(value), n=int(data.get("n", 0)))


Quantities = Mapping[str, Quantity]
