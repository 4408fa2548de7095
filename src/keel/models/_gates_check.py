"""Judging gates: each check takes a gate and the observed facts (plain values) and returns a
:class:`GateResult` with its evidence. See :mod:`keel.models._gates` for the declarations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from keel.models._bootstrap import BootstrapDiff
from keel.models._fairness import FairnessResult
from keel.models._gates import ApprovalGate, BeatGate, FairnessGate, GateResult, MetricGate


def _compare(observed: float, op: str, threshold: float) -> bool:
    return {
        ">=": observed >= threshold,
        "<=": observed <= threshold,
        ">": observed > threshold,
        "<": observed < threshold,
    }[op]


def check_metric(gate: MetricGate, metrics: Mapping[str, float]) -> GateResult:
    name = f"{gate.metric} {gate.op} {gate.threshold:g}"
    observed = metrics.get(gate.metric)
    if observed is None or not math.isfinite(observed):
        return GateResult(
            name, "metric", False, None, gate.threshold, gate.op,
            detail=f"metric {gate.metric!r} was not measured on this data",
        )  # fmt: skip
    passed = _compare(observed, gate.op, gate.threshold)
    return GateResult(name, "metric", passed, observed, gate.threshold, gate.op)


def check_beat(
    gate: BeatGate, diff: BootstrapDiff | None, *, alias: str, holder: int | None
) -> GateResult:
    """``diff``: candidate (A) against the alias holder (B); None when there is no holder."""
    unit = "relative" if gate.relative else "absolute"
    name = f"beats {alias} on {gate.metric} by > {gate.margin:g} ({unit})"
    if diff is None:
        return GateResult(
            name, "beat", True, None, gate.margin, ">",
            detail=f"nothing to beat: no other version holds {alias!r}",
        )  # fmt: skip
    lo, hi = diff.low, diff.high
    passed = math.isfinite(lo) and lo > gate.margin
    detail = (
        f"{gate.metric}: candidate {diff.a:.4f} vs v{holder} {diff.b:.4f}; "
        f"{diff.confidence:.0%} CI of the difference [{lo:.4f}, {hi:.4f}] "
        f"over {diff.resamples} paired resamples"
    )
    if not math.isfinite(lo):
        detail += "; too few resamples had the metric defined"
    return GateResult(
        name, "beat", passed, diff.diff, gate.margin, ">", ci_low=lo, ci_high=hi,
        detail=detail,
        extra={"holder": holder, "candidate_value": diff.a, "holder_value": diff.b,
               "relative": gate.relative, "resamples": diff.resamples},
    )  # fmt: skip


def check_latency(limit_ms: float, p95_ms: float, *, calls: int, batch_rows: int) -> GateResult:
    return GateResult(
        f"p95 predict latency <= {limit_ms:g} ms", "latency", p95_ms <= limit_ms, p95_ms,
        limit_ms, "<=", detail=f"{calls} calls of {batch_rows} row(s) each",
    )  # fmt: skip


def check_size(limit_mb: float, size_bytes: int) -> GateResult:
    size_mb = size_bytes / 1_000_000
    return GateResult(
        f"model size <= {limit_mb:g} MB", "size", size_mb <= limit_mb, size_mb, limit_mb, "<=",
        detail=f"{size_bytes} bytes",
    )  # fmt: skip


def check_fairness(gate: FairnessGate, result: FairnessResult) -> GateResult:
    return GateResult(
        f"{gate.metric} across {gate.sensitive} <= {gate.max:g}", "fairness",
        result.value <= gate.max, result.value, gate.max, "<=",
        extra={"sensitive": gate.sensitive, "groups": result.groups},
    )  # fmt: skip


def check_approvals(
    gate: ApprovalGate, approvers: Sequence[str], *, author: str | None
) -> GateResult:
    """Count distinct approvers other than the author (and among ``gate.approvers`` if set)."""
    valid = sorted(
        {a for a in approvers if a != author and (not gate.approvers or a in gate.approvers)}
    )
    ignored = sorted(set(approvers) - set(valid))
    detail = f"approved by {', '.join(valid) if valid else 'nobody yet'}"
    if ignored:
        detail += f"; not counted: {', '.join(ignored)}"
    return GateResult(
        f"approvals >= {gate.required} (not the author)", "approvals",
        len(valid) >= gate.required, float(len(valid)), float(gate.required), ">=",
        detail=detail, extra={"approvers": valid, "author": author},
    )  # fmt: skip
