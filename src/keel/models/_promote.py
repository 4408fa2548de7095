"""Promotion: judge a version against the gates for an alias, record the decision with its
evidence, and move the alias only when every gate passed (or someone overrode, with a reason).

Order matters for the record: the decision is stored before the alias moves and marked
``moved`` after, so the store never claims a move that did not happen; a crash in between
leaves a decision that says "not moved" beside an alias that did, and re-running the promotion
records it again. Just before moving, the alias holder is read again: if another promotion
moved it since the gates compared against it, this one stops with ``Conflict``.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel import _time
from keel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from keel.models import _evaluate, _gates, _gates_check
from keel.models._bootstrap import PROBA_METRICS, paired_bootstrap
from keel.models._fairness import fairness
from keel.models._records import VersionStatus
from keel.models._release_records import (
    Approval,
    EvaluationResult,
    PromotionDecision,
    new_id,
)

if TYPE_CHECKING:
    import pandas as pd

    from keel.models._load import LoadedModel
    from keel.models._records import ModelVersion
    from keel.models._registry import Models
    from keel.models._release_base import ReleaseStore

GatesArg = _gates.GateSpec | Mapping[str, Any] | str | Path | None
# Timing stops after this long even if fewer calls than asked were made (reported).
_LATENCY_BUDGET_S = 30.0
_WARMUP_CALLS = 3


def current_user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "unknown"


def author_of(models: Models, version: ModelVersion) -> str | None:
    """Who made a version: its ``author`` tag, else the user of the run that logged it."""
    tagged = version.tags.get("author")
    if tagged:
        return tagged
    if version.run_id is not None:
        try:
            user = models.tracking.get_run(version.run_id).env.user
        except NotFound:
            return None
        return user or None
    return None


def resolve_gates(alias: str, gates: GatesArg) -> _gates.GateSpec:
    if isinstance(gates, _gates.GateSpec):
        return gates
    if isinstance(gates, Mapping):
        return _gates.parse_gates(gates, alias, source="<given>")
    return _gates.load_gates(alias, path=gates)


def _ready(models: Models, name: str, version: int) -> ModelVersion:
    found = models.registry.get_version(name, version)
    if found.status is not VersionStatus.READY:
        raise Conflict(f"{found.uri} is {found.status}; only ready versions are promoted")
    return found


def _holder(models: Models, name: str, alias: str) -> ModelVersion | None:
    try:
        return models.registry.resolve_alias(name, alias)
    except NotFound:
        return None


@dataclass(frozen=True, slots=True)
class _Evidence:
    gates: tuple[_gates.GateResult, ...]
    previous: int | None
    dataset: str | None
    evaluation: EvaluationResult | None


def judge(
    models: Models,
    releases: ReleaseStore,
    candidate: ModelVersion,
    spec: _gates.GateSpec,
    *,
    data: str | None = None,
    target: str | None = None,
) -> _Evidence:
    """Every gate of ``spec`` for ``candidate``, measured now."""
    holder = _holder(models, candidate.name, spec.alias)
    previous = None if holder is None else holder.version
    rival = None if holder is None or holder.version == candidate.version else holder
    results: list[_gates.GateResult] = []
    evaluation: EvaluationResult | None = None
    frame: pd.DataFrame | None = None
    model: LoadedModel | None = None
    x: Any = None
    if spec.needs_predictions:
        ref, column = _data_for(releases, candidate, spec, data=data, target=target)
        dataset, frame = _evaluate.read_dataset(ref)
        from keel.models._load import load

        model = load(models, candidate)
        x = _evaluate.feature_frame(model, frame, target=column, key=dataset.key)
        scored = _evaluate.score(model, x, frame[column].to_numpy())
        evaluation = _evaluation(
            models, releases, candidate=candidate, spec=spec, dataset=dataset, frame=frame,
            target=column, scored=scored,
        )  # fmt: skip
        known = {**evaluation.metrics, **evaluation.business}
        results += [_gates_check.check_metric(g, known) for g in spec.metrics]
        if spec.beat is not None:
            results.append(
                _beat(models, spec, rival=rival, scored=scored, frame=frame, target=column,
                      key=dataset.key)
            )  # fmt: skip
        for gate in spec.fairness:
            if gate.sensitive not in frame.columns:
                raise InvalidInput(f"no column {gate.sensitive!r} in {dataset.ref}",
                                   field="fairness.sensitive")  # fmt: skip
            found = fairness(
                gate.metric, scored.y_true, scored.y_pred, frame[gate.sensitive].to_numpy(),
                sensitive_name=gate.sensitive, classes=scored.classes or (),
            )  # fmt: skip
            results.append(_gates_check.check_fairness(gate, found))
    if spec.max_p95_latency_ms is not None:
        if model is None:
            model, x = _latency_input(models, releases, candidate, spec, data=data, target=target)
        p95, calls = measure_latency(model, x, rows=spec.latency_batch_rows,
                                     calls=spec.latency_calls)  # fmt: skip
        results.append(_gates_check.check_latency(spec.max_p95_latency_ms, p95, calls=calls,
                                            batch_rows=spec.latency_batch_rows))  # fmt: skip
    if spec.max_size_mb is not None:
        results.append(_gates_check.check_size(spec.max_size_mb, candidate.size))
    if spec.approvals is not None:
        approvers = [a.user for a in releases.list_approvals(candidate.name, candidate.version)]
        results.append(
            _gates_check.check_approvals(
                spec.approvals, approvers, author=author_of(models, candidate)
            )
        )
    return _Evidence(
        gates=tuple(results),
        previous=previous,
        dataset=None if evaluation is None else evaluation.dataset,
        evaluation=evaluation,
    )


def _latency_input(
    models: Models,
    releases: ReleaseStore,
    candidate: ModelVersion,
    spec: _gates.GateSpec,
    *,
    data: str | None,
    target: str | None,
) -> tuple[LoadedModel, Any]:
    """Rows to time predictions on when no other gate scored the model: the evaluation data if
    any is known, else the input example stored with the version."""
    from keel.models._load import load

    model = load(models, candidate)
    try:
        ref, column = _data_for(releases, candidate, spec, data=data, target=target)
    except InvalidInput:
        example = model.input_example()
        if example is None or len(example) == 0:
            raise InvalidInput(
                "the latency gate needs rows to time: evaluation data (dataset and target) or "
                "an input example stored with the version",
                field="data",
            ) from None
        return model, example
    dataset, frame = _evaluate.read_dataset(ref)
    return model, _evaluate.feature_frame(model, frame, target=column, key=dataset.key)


def _data_for(
    releases: ReleaseStore,
    candidate: ModelVersion,
    spec: _gates.GateSpec,
    *,
    data: str | None,
    target: str | None,
) -> tuple[str, str]:
    """The evaluation data: given > declared in the gates > this version's last evaluation."""
    ref, column = data or spec.dataset, target or spec.target
    if ref is None or column is None:
        past = releases.list_evaluations(candidate.name, candidate.version)
        if past:
            ref, column = ref or past[0].dataset, column or past[0].target
    if ref is None or column is None:
        raise InvalidInput(
            "these gates need evaluation data: declare dataset and target under [gates] in "
            "keel.toml, pass data= and target= (--data/--target), or evaluate the version first",
            field="data",
        )
    return ref, column


def _evaluation(
    models: Models,
    releases: ReleaseStore,
    *,
    candidate: ModelVersion,
    spec: _gates.GateSpec,
    dataset: Any,
    frame: pd.DataFrame,
    target: str,
    scored: _evaluate.Scored,
) -> EvaluationResult:
    """Store the gate's evaluation (with a run) like ``evaluate`` does: evidence for the card."""
    sensitive = [g.sensitive for g in spec.fairness if g.sensitive in frame.columns]
    facts = _evaluate.compute(scored, frame, slices=list(dict.fromkeys(sensitive)))
    from keel.models._metrics import label_text

    result = EvaluationResult(
        id=new_id(), name=candidate.name, version=candidate.version,
        dataset=dataset.ref, dataset_digest=dataset.digest, target=target, task=scored.task,
        rows=len(frame), metrics=facts["metrics"],
        classes=tuple(label_text(c) for c in scored.classes or ()),
        confusion=facts["confusion"], calibration=facts["calibration"], slices=facts["slices"],
        created_ms=_time.now_ms(),
    )  # fmt: skip
    run_id = _evaluate._log_run(models, candidate, dataset, result, project=None)
    return releases.save_evaluation(replace(result, run_id=run_id))


def _beat(
    models: Models,
    spec: _gates.GateSpec,
    *,
    rival: ModelVersion | None,
    scored: _evaluate.Scored,
    frame: pd.DataFrame,
    target: str,
    key: tuple[str, ...],
) -> _gates.GateResult:
    gate = spec.beat
    assert gate is not None
    if rival is None:
        return _gates_check.check_beat(gate, None, alias=spec.alias, holder=None)
    from keel.models._load import load

    model = load(models, rival)
    x = _evaluate.feature_frame(model, frame, target=target, key=key)
    task: _evaluate.Task = "regression" if scored.classes is None else "classification"
    theirs = _evaluate.score(model, x, frame[target].to_numpy(), task=task)
    uses_proba = gate.metric in PROBA_METRICS
    if (
        scored.classes is not None
        and theirs.classes is not None
        and [str(c) for c in scored.classes] != [str(c) for c in theirs.classes]
    ):
        raise InvalidInput(
            f"{rival.uri} predicts classes {list(theirs.classes)}, the candidate "
            f"{list(scored.classes)}; the models are not comparable",
            field="beat",
        )
    if uses_proba and (scored.proba is None or theirs.proba is None):
        raise InvalidInput(
            f"{gate.metric} needs class probabilities from both models", field="beat.metric"
        )
    mine_s = scored.proba if uses_proba else scored.y_pred
    theirs_s = theirs.proba if uses_proba else theirs.y_pred
    assert mine_s is not None and theirs_s is not None
    diff = paired_bootstrap(
        gate.metric, scored.y_true, mine_s, theirs_s, classes=scored.classes,
        resamples=gate.resamples, confidence=gate.confidence, relative=gate.relative,
    )  # fmt: skip
    return _gates_check.check_beat(gate, diff, alias=spec.alias, holder=rival.version)


def measure_latency(model: LoadedModel, x: Any, *, rows: int, calls: int) -> tuple[float, int]:
    """The 95th percentile of ``predict`` wall time in ms over ``calls`` calls of ``rows``
    rows each (after a few untimed warm-up calls), and how many calls were timed."""
    n = len(x)
    if n == 0:
        raise InvalidInput("no rows to time predictions on", field="data")
    take = min(rows, n)
    starts = (np.arange(calls + _WARMUP_CALLS) * take) % max(n - take + 1, 1)

    def batch(i: int) -> Any:
        start = int(starts[i])
        return x.iloc[start : start + take] if hasattr(x, "iloc") else x[start : start + take]

    for i in range(_WARMUP_CALLS):
        model.predict(batch(i))
    times: list[float] = []
    deadline = time.perf_counter() + _LATENCY_BUDGET_S
    for i in range(_WARMUP_CALLS, _WARMUP_CALLS + calls):  # timing needs one call per sample
        part = batch(i)
        began = time.perf_counter_ns()
        model.predict(part)
        times.append((time.perf_counter_ns() - began) / 1e6)
        if time.perf_counter() > deadline:
            break
    return float(np.percentile(times, 95)), len(times)


def promote(
    models: Models,
    releases: ReleaseStore,
    name: str,
    version: int,
    alias: str = "champion",
    *,
    gates: GatesArg = None,
    override_reason: str | None = None,
    actor: str | None = None,
    data: str | None = None,
    target: str | None = None,
    move: bool = True,
) -> PromotionDecision:
    """Judge ``name/version`` for ``alias`` and record the decision; with ``move``, point the
    alias at it when every gate passed or ``override_reason`` is given. ``move=False`` is the
    CI check: recorded as action ``check``, nothing moves."""
    if override_reason is not None and not override_reason.strip():
        raise InvalidInput("an override needs a reason", field="override_reason")
    if override_reason is not None and not move:
        raise InvalidInput("a check moves nothing, so there is nothing to override",
                           field="override_reason")  # fmt: skip
    who = actor or current_user()
    candidate = _ready(models, name, version)
    spec = resolve_gates(alias, gates)
    evidence = judge(models, releases, candidate, spec, data=data, target=target)
    passed = all(g.passed for g in evidence.gates)
    decision = releases.save_decision(
        PromotionDecision(
            id=new_id(), name=candidate.name, version=candidate.version, alias=alias,
            action="promote" if move else "check", passed=passed, moved=False, actor=who,
            gates=evidence.gates, previous_version=evidence.previous, dataset=evidence.dataset,
            evaluation_id=None if evidence.evaluation is None else evidence.evaluation.id,
            override_reason=None if passed else override_reason, source=spec.source,
            created_ms=_time.now_ms(),
        )
    )  # fmt: skip
    if not move or not (passed or override_reason):
        return decision
    now = _holder(models, candidate.name, alias)
    if (None if now is None else now.version) != evidence.previous:
        raise Conflict(
            f"{candidate.name}@{alias} moved to v{None if now is None else now.version} while "
            f"the gates compared against v{evidence.previous}; promote again"
        )
    models.registry.set_alias(candidate.name, alias, candidate.version)
    return releases.mark_moved(decision.id)


def approve(
    models: Models,
    releases: ReleaseStore,
    name: str,
    version: int,
    *,
    user: str | None = None,
    comment: str = "",
) -> Approval:
    """Record ``user``'s approval of ``name/version``; its author cannot approve it."""
    who = user or current_user()
    candidate = models.registry.get_version(name, version)
    author = author_of(models, candidate)
    if author is not None and who == author:
        raise PermissionDenied(
            f"{who} is the author of {candidate.ref} and cannot approve it; "
            "ask another maintainer to approve (keel models approve NAME VERSION --as USER)"
        )
    return releases.add_approval(candidate.name, candidate.version, user=who, comment=comment)
