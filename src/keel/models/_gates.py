"""Promotion gates: what a model version must show before it takes an alias.

Gates are declared in the project's ``keel.toml`` (or a file passed with ``--gates``)::

    [gates]                               # every alias
    dataset = "churn@latest"              # evaluation data, resolved to a version at check time
    target = "churned"

    [gates.champion]                      # moves to champion only
    metrics = { roc_auc = ">= 0.85", log_loss = "<= 0.45" }
    beat = { metric = "roc_auc", margin = 0.0, relative = false, confidence = 0.95 }
    max_p95_latency_ms = 50
    max_size_mb = 20
    fairness = [{ metric = "demographic_parity_difference", sensitive = "sex", max = 0.1 }]
    approvals = { required = 1, approvers = ["alice", "bob"] }   # or: approvals = 1

Keys under ``[gates]`` are defaults every alias inherits; an alias table overrides them key by
key (``metrics`` merge metric by metric). This module parses the declaration and judges
observed facts against it is :mod:`keel.models._gates_check`'s job (plain values in,
:class:`GateResult` out); gathering the facts — evaluating, timing, bootstrapping — is
:mod:`keel.models._promote`'s.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.models._bootstrap import BOOTSTRAP_METRICS, MAX_RESAMPLES
from keel.models._fairness import FAIRNESS_METRICS

GATE_KEYS = frozenset(
    {
        "dataset",
        "target",
        "metrics",
        "beat",
        "max_p95_latency_ms",
        "latency_batch_rows",
        "latency_calls",
        "max_size_mb",
        "fairness",
        "approvals",
    }
)
_OPS = (">=", "<=", ">", "<")
MAX_LATENCY_CALLS = 5_000


@dataclass(frozen=True, slots=True)
class MetricGate:
    metric: str
    op: str
    threshold: float


@dataclass(frozen=True, slots=True)
class BeatGate:
    """Beat the current holder of the alias on the same rows: the lower bound of the paired
    bootstrap interval of the difference must be above ``margin`` (absolute, or relative to the
    holder's value)."""

    metric: str
    margin: float = 0.0
    relative: bool = False
    confidence: float = 0.95
    resamples: int = 1000


@dataclass(frozen=True, slots=True)
class FairnessGate:
    metric: str
    sensitive: str
    max: float


@dataclass(frozen=True, slots=True)
class ApprovalGate:
    required: int = 1
    approvers: tuple[str, ...] = ()  # who may approve; empty: anyone but the author


@dataclass(frozen=True, slots=True)
class GateSpec:
    """Every gate for moves to ``alias``; an empty spec lets any move through."""

    alias: str
    dataset: str | None = None
    target: str | None = None
    metrics: tuple[MetricGate, ...] = ()
    beat: BeatGate | None = None
    max_p95_latency_ms: float | None = None
    latency_batch_rows: int = 1
    latency_calls: int = 200
    max_size_mb: float | None = None
    fairness: tuple[FairnessGate, ...] = ()
    approvals: ApprovalGate | None = None
    source: str = ""

    @property
    def needs_predictions(self) -> bool:
        """Whether judging needs the model scored on evaluation data."""
        return bool(self.metrics or self.beat or self.fairness)

    @property
    def empty(self) -> bool:
        return not (
            self.needs_predictions
            or self.max_p95_latency_ms is not None
            or self.max_size_mb is not None
            or self.approvals
        )


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict with its evidence."""

    gate: str
    kind: str  # metric | beat | latency | size | fairness | approvals
    passed: bool
    observed: float | None
    threshold: float | None
    op: str
    ci_low: float | None = None
    ci_high: float | None = None
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "kind": self.kind,
            "passed": self.passed,
            "observed": _finite(self.observed),
            "threshold": self.threshold,
            "op": self.op,
            "ci": None if self.ci_low is None else [_finite(self.ci_low), _finite(self.ci_high)],
            "detail": self.detail,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        ci = data.get("ci")
        return cls(
            gate=data["gate"],
            kind=data["kind"],
            passed=bool(data["passed"]),
            observed=data.get("observed"),
            threshold=data.get("threshold"),
            op=data.get("op", ""),
            ci_low=None if ci is None else ci[0],
            ci_high=None if ci is None else ci[1],
            detail=data.get("detail", ""),
            extra=data.get("extra") or {},
        )


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


# -- parsing ------------------------------------------------------------------------------------


def default_gates_file() -> Path:
    """The project's ``keel.toml``: beside the Keel home folder."""
    from keel.config import PROJECT_FILE, get_settings

    return get_settings().home.parent / PROJECT_FILE


def load_gates(alias: str, *, path: str | Path | None = None) -> GateSpec:
    """The gates for moves to ``alias`` from ``path`` (default: the project's ``keel.toml``).
    A missing default file means no gates; a missing given file is an error."""
    file = Path(path) if path is not None else default_gates_file()
    if not file.is_file():
        if path is not None:
            raise InvalidInput(f"no gates file at {file}", field="gates")
        return GateSpec(alias=alias)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file} is not valid TOML: {exc}", field="gates") from exc
    # A dedicated gates file may hold the table at the top level instead of under [gates].
    table = document.get("gates", document if path is not None else {})
    return parse_gates(table, alias, source=str(file))


def parse_gates(table: Mapping[str, Any], alias: str, *, source: str = "") -> GateSpec:
    """The :class:`GateSpec` for ``alias`` from a ``[gates]`` table (already parsed TOML)."""
    if not isinstance(table, Mapping):
        raise InvalidInput("must be a table", field="gates")
    defaults = {k: v for k, v in table.items() if k in GATE_KEYS}
    per_alias = table.get(alias, {})
    if not isinstance(per_alias, Mapping):
        raise InvalidInput("must be a table", field=f"gates.{alias}")
    for key in per_alias:
        if key not in GATE_KEYS:
            raise InvalidInput(
                f"unknown gate {key!r}; known: {', '.join(sorted(GATE_KEYS))}",
                field=f"gates.{alias}.{key}",
            )
    merged = {**defaults, **per_alias}
    if isinstance(defaults.get("metrics"), Mapping) and isinstance(
        per_alias.get("metrics"), Mapping
    ):
        merged["metrics"] = {**defaults["metrics"], **per_alias["metrics"]}
    where = f"gates.{alias}"
    spec = GateSpec(
        alias=alias,
        dataset=_opt_str(merged.get("dataset"), f"{where}.dataset"),
        target=_opt_str(merged.get("target"), f"{where}.target"),
        metrics=_metric_gates(merged.get("metrics", {}), f"{where}.metrics"),
        beat=_beat_gate(merged.get("beat"), f"{where}.beat"),
        max_p95_latency_ms=_opt_positive(
            merged.get("max_p95_latency_ms"), f"{where}.max_p95_latency_ms"
        ),
        latency_batch_rows=_int_in(merged.get("latency_batch_rows", 1), 1, 100_000, where),
        latency_calls=_int_in(merged.get("latency_calls", 200), 5, MAX_LATENCY_CALLS, where),
        max_size_mb=_opt_positive(merged.get("max_size_mb"), f"{where}.max_size_mb"),
        fairness=_fairness_gates(merged.get("fairness", []), f"{where}.fairness"),
        approvals=_approval_gate(merged.get("approvals"), f"{where}.approvals"),
        source=source,
    )
    if spec.needs_predictions and spec.dataset is not None and spec.target is None:
        raise InvalidInput("a gate dataset needs its target column", field=f"{where}.target")
    return spec


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("must be a non-empty string", field=where)
    return value.strip()


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"must be a finite number, got {value!r}", field=where)
    return float(value)


def _opt_positive(value: Any, where: str) -> float | None:
    if value is None:
        return None
    number = _number(value, where)
    if number <= 0:
        raise InvalidInput("must be positive", field=where)
    return number


def _int_in(value: Any, low: int, high: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"must be an integer within {low}..{high}", field=where)
    return value


def _metric_gates(value: Any, where: str) -> tuple[MetricGate, ...]:
    if not isinstance(value, Mapping):
        raise InvalidInput('must be a table like { roc_auc = ">= 0.8" }', field=where)
    gates = []
    for metric, rule in value.items():
        text = str(rule).strip() if isinstance(rule, str) else ""
        op = next((o for o in _OPS if text.startswith(o)), None)
        if op is None:
            raise InvalidInput(
                f'must be a comparison like ">= 0.8", got {rule!r}', field=f"{where}.{metric}"
            )
        try:
            threshold = float(text[len(op) :])
        except ValueError:
            raise InvalidInput(
                f"the threshold of {rule!r} is not a number", field=f"{where}.{metric}"
            ) from None
        gates.append(MetricGate(metric=str(metric), op=op, threshold=threshold))
    return tuple(gates)


def _beat_gate(value: Any, where: str) -> BeatGate | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"metric": value}
    if not isinstance(value, Mapping):
        raise InvalidInput('must be a table like { metric = "roc_auc" }', field=where)
    unknown = set(value) - {"metric", "margin", "relative", "confidence", "resamples"}
    if unknown:
        raise InvalidInput(f"unknown keys {sorted(unknown)}", field=where)
    metric = value.get("metric")
    if metric not in BOOTSTRAP_METRICS:
        raise InvalidInput(
            f"metric must be one of {', '.join(sorted(BOOTSTRAP_METRICS))}, got {metric!r}",
            field=f"{where}.metric",
        )
    confidence = _number(value.get("confidence", 0.95), f"{where}.confidence")
    if not 0.5 <= confidence < 1:
        raise InvalidInput("must be within [0.5, 1)", field=f"{where}.confidence")
    relative = value.get("relative", False)
    if not isinstance(relative, bool):
        raise InvalidInput("must be true or false", field=f"{where}.relative")
    return BeatGate(
        metric=metric,
        margin=_number(value.get("margin", 0.0), f"{where}.margin"),
        relative=relative,
        confidence=confidence,
        resamples=_int_in(value.get("resamples", 1000), 100, MAX_RESAMPLES, f"{where}.resamples"),
    )


def _fairness_gates(value: Any, where: str) -> tuple[FairnessGate, ...]:
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        raise InvalidInput("must be a list of tables", field=where)
    gates = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput("must be a table", field=at)
        metric = item.get("metric", "demographic_parity_difference")
        if metric not in FAIRNESS_METRICS:
            raise InvalidInput(
                f"metric must be one of {', '.join(FAIRNESS_METRICS)}", field=f"{at}.metric"
            )
        sensitive = _opt_str(item.get("sensitive"), f"{at}.sensitive")
        if sensitive is None:
            raise InvalidInput("names the sensitive column", field=f"{at}.sensitive")
        limit = _number(item.get("max"), f"{at}.max")
        gates.append(FairnessGate(metric=metric, sensitive=sensitive, max=limit))
    return tuple(gates)


def _approval_gate(value: Any, where: str) -> ApprovalGate | None:
    if value is None or value == 0:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return ApprovalGate(required=_int_in(value, 1, 20, where))
    if not isinstance(value, Mapping):
        raise InvalidInput("must be a number or { required = 1, approvers = [...] }", field=where)
    approvers = value.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and a for a in approvers):
        raise InvalidInput("must be a list of user names", field=f"{where}.approvers")
    return ApprovalGate(
        required=_int_in(value.get("required", 1), 1, 20, f"{where}.required"),
        approvers=tuple(approvers),
    )
