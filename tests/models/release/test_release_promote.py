"""Promotion end to end on real registered scikit-learn models: each gate kind passing and
failing, the paired-bootstrap champion gate, approvals, overrides, CI checks, and the recorded
decisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference
from release_world import World, register

import keel.models
from keel.errors import InvalidInput, NotFound, PermissionDenied

GOOD = ["a", "b"]  # the features the label depends on
WEAK = ["noise"]  # unrelated to the label


def _holder(alias: str = "champion") -> int | None:
    try:
        return keel.models.get_version("churn", alias).version
    except NotFound:
        return None


def _gates(world: World, **champion: object) -> dict[str, object]:
    return {"dataset": world.ref, "target": "churned", "champion": champion}


def test_no_gates_moves_the_alias_and_records_an_empty_decision(world: World) -> None:
    v = register(world, GOOD)
    decision = keel.models.promote("churn", v, actor="carol")
    assert decision.passed and decision.moved and decision.gates == ()
    assert _holder() == v
    assert keel.models.decisions("churn", v) == [decision]
    assert decision.actor == "carol" and decision.previous_version is None


def test_metric_gate_passes_and_fails(world: World) -> None:
    good, weak = register(world, GOOD), register(world, WEAK)
    spec = _gates(world, metrics={"roc_auc": ">= 0.8", "log_loss": "<= 0.6"})
    failed = keel.models.promote("churn", weak, gates=spec)
    assert not failed.passed and not failed.moved and _holder() is None
    assert {g.gate for g in failed.failed_gates} == {"roc_auc >= 0.8", "log_loss <= 0.6"}
    passed = keel.models.promote("churn", good, gates=spec)
    assert passed.passed and passed.moved and _holder() == good
    auc = next(g for g in passed.gates if g.gate.startswith("roc_auc"))
    assert auc.observed is not None and auc.observed > 0.8 and auc.threshold == 0.8
    # The gate's evaluation is stored (and logged to a run reading the dataset version).
    evaluation = keel.models.evaluations("churn", good)[0]
    assert passed.evaluation_id == evaluation.id and passed.dataset == world.ref
    run = keel.get_run(evaluation.run_id)
    assert [io.ref for io in run.io] == [world.ref]


def test_beat_champion_gate_passes_a_clearly_better_challenger_and_refuses_an_equal_one(
    world: World,
) -> None:
    weak = register(world, WEAK)
    keel.models.promote("churn", weak)  # nobody held it: nothing to beat
    better = register(world, GOOD)
    spec = _gates(world, beat={"metric": "roc_auc", "margin": 0.05, "resamples": 300})
    won = keel.models.promote("churn", better, gates=spec)
    (beat,) = won.gates
    assert won.moved and _holder() == better and won.previous_version == weak
    assert beat.ci_low is not None and beat.ci_low > 0.05 and beat.extra["holder"] == weak
    # As good as the champion (same features, another seed): its interval does not clear 0.
    equal = register(world, GOOD, seed=1)
    lost = keel.models.promote(
        "churn", equal, gates=_gates(world, beat={"metric": "roc_auc", "resamples": 300})
    )
    (beat,) = lost.gates
    assert not lost.moved and _holder() == better
    assert beat.ci_low is not None and beat.ci_high is not None
    assert beat.ci_low <= 0 <= beat.ci_high
    assert "CI of the difference" in beat.detail


def test_latency_and_size_gates(world: World) -> None:
    v = register(world, GOOD)
    loose = keel.models.check_gates(
        "churn", v, gates=_gates(world, max_p95_latency_ms=2000, max_size_mb=50, latency_calls=20)
    )
    assert loose.passed and {g.kind for g in loose.gates} == {"latency", "size"}
    tight = keel.models.check_gates(
        "churn", v, gates=_gates(world, max_p95_latency_ms=1e-6, max_size_mb=1e-6, latency_calls=20)
    )
    assert not tight.passed and len(tight.failed_gates) == 2
    size = next(g for g in tight.gates if g.kind == "size")
    assert size.observed == pytest.approx(keel.models.get_version("churn", v).size / 1e6)


def test_fairness_gate_uses_fairlearn_on_the_models_predictions(world: World) -> None:
    v = register(world, GOOD)
    model = keel.models.load(f"models:/churn/{v}")
    frame = world.frame
    expected = demographic_parity_difference(
        frame["churned"], model.predict(frame), sensitive_features=frame["sex"]
    )
    fair = {"sensitive": "sex", "metric": "demographic_parity_difference"}
    ok = keel.models.check_gates("churn", v, gates=_gates(world, fairness=[{**fair, "max": 1.0}]))
    (gate,) = ok.gates
    assert ok.passed and gate.observed == pytest.approx(expected)
    assert set(gate.extra["groups"]) == {"f", "m"}
    strict = keel.models.check_gates(
        "churn", v, gates=_gates(world, fairness=[{**fair, "max": expected / 2}])
    )
    assert not strict.passed
    # The evaluation behind the gate has the sensitive column's slices.
    assert set(keel.models.evaluations("churn", v)[0].slices["sex"]) == {"f", "m"}
    with pytest.raises(InvalidInput) as info:
        keel.models.check_gates(
            "churn", v, gates=_gates(world, fairness=[{"sensitive": "religion", "max": 0.1}])
        )
    assert info.value.field == "fairness.sensitive"


def test_approvals_author_cannot_approve_own_model(world: World) -> None:
    v = register(world, GOOD, author="alice")
    spec = _gates(world, approvals={"required": 1, "approvers": ["bob", "carol"]})
    with pytest.raises(PermissionDenied, match="author"):
        keel.models.approve("churn", v, user="alice")
    assert keel.models.approvals("churn", v) == []  # the refusal stored nothing
    waiting = keel.models.promote("churn", v, gates=spec, actor="alice")
    assert not waiting.moved and "nobody yet" in waiting.gates[0].detail
    keel.models.approve("churn", v, user="mallory", comment="not a maintainer")
    assert not keel.models.promote("churn", v, gates=spec, actor="alice").moved
    approval = keel.models.approve("churn", v, user="bob", comment="reviewed the card")
    assert approval.user == "bob" and approval.created_ms > 0
    done = keel.models.promote("churn", v, gates=spec, actor="alice")
    assert done.moved and done.gates[0].extra["approvers"] == ["bob"]


def test_override_moves_past_failing_gates_and_records_who_and_why(world: World) -> None:
    v = register(world, WEAK)
    spec = _gates(world, metrics={"roc_auc": ">= 0.99"})
    with pytest.raises(InvalidInput) as info:
        keel.models.promote("churn", v, gates=spec, override_reason="  ")
    assert info.value.field == "override_reason"
    assert keel.models.decisions("churn", v) == []
    forced = keel.models.promote(
        "churn", v, gates=spec, override_reason="v1 leaks PII; anything is better", actor="dana"
    )
    assert forced.moved and not forced.passed and forced.overridden
    assert _holder() == v
    stored = keel.models.decisions("churn", v)[0]
    assert stored.override_reason == "v1 leaks PII; anything is better" and stored.actor == "dana"
    assert stored.failed_gates[0].gate == "roc_auc >= 0.99"


def test_check_moves_nothing_and_is_recorded_as_a_check(world: World) -> None:
    v = register(world, GOOD)
    decision = keel.models.check_gates("churn", v, gates=_gates(world, max_size_mb=100))
    assert decision.passed and not decision.moved and decision.action == "check"
    assert _holder() is None


def test_gates_come_from_the_project_keel_toml(world: World, keel_home: Path) -> None:
    (keel_home.parent / "keel.toml").write_text(
        f'[gates]\ndataset = "{world.ref}"\ntarget = "churned"\n\n'
        '[gates.champion]\nmetrics = { roc_auc = ">= 0.99" }\n'
    )
    v = register(world, GOOD)
    decision = keel.models.promote("churn", v)
    assert not decision.moved and decision.source.endswith("keel.toml")
    # Another alias has no gates of its own and moves.
    assert keel.models.promote("churn", v, "staging").moved


def test_metric_gates_fall_back_to_the_versions_last_evaluation_data(world: World) -> None:
    v = register(world, GOOD)
    with pytest.raises(InvalidInput) as info:
        keel.models.promote("churn", v, gates={"champion": {"metrics": {"f1": ">= 0.5"}}})
    assert info.value.field == "data"
    keel.models.evaluate(f"churn/{v}", world.ref, "churned")
    decision = keel.models.promote("churn", v, gates={"champion": {"metrics": {"f1": ">= 0.5"}}})
    assert decision.moved and decision.dataset == world.ref


def test_promote_checks_its_arguments(world: World) -> None:
    v = register(world, GOOD)
    with pytest.raises(NotFound):
        keel.models.promote("churn", v + 5)
    with pytest.raises(InvalidInput):
        keel.models.promote("churn", v, gates={"champion": {"metrics": {"f1": "big"}}})
    assert keel.models.decisions("churn") == []
    assert np.isfinite(keel.models.promote("churn", v).created_ms)


def test_only_ready_versions_are_promoted(world: World) -> None:
    from keel.errors import Conflict
    from keel.models import NewModelVersion

    pending = keel.models.default().registry.create_version(
        NewModelVersion(name="churn", flavor="sklearn")
    )
    with pytest.raises(Conflict, match="only ready versions"):
        keel.models.promote("churn", pending.version)
    assert keel.models.decisions("churn") == [] and _holder() is None


def test_alias_moved_by_someone_else_during_the_gates_is_a_conflict(world: World) -> None:
    """The gates compared against the holder at the start; if the alias moves while they run
    (here: another process's promotion, as a thread), this promotion stops and says so."""
    import threading
    import time

    from keel.errors import Conflict

    first, candidate, other = (register(world, GOOD, seed=s) for s in (0, 1, 2))
    keel.models.set_alias("churn", "champion", first)
    moved = threading.Event()

    def move_when_gates_started() -> None:
        deadline = time.monotonic() + 60
        # The gate run stores its evaluation before it starts timing predictions.
        while not keel.models.evaluations("churn", candidate) and time.monotonic() < deadline:
            time.sleep(0.005)
        keel.models.set_alias("churn", "champion", other)
        moved.set()

    mover = threading.Thread(target=move_when_gates_started)
    mover.start()
    spec = _gates(world, metrics={"roc_auc": ">= 0.5"}, max_p95_latency_ms=1000, latency_calls=1000)
    try:
        with pytest.raises(Conflict, match="moved to v3"):
            keel.models.promote("churn", candidate, gates=spec)
    finally:
        mover.join()
    assert moved.is_set() and _holder() == other
    (decision,) = keel.models.decisions("churn", candidate)
    assert decision.passed and not decision.moved and decision.previous_version == first


def test_latency_alone_times_the_stored_input_example(world: World) -> None:
    v = register(world, GOOD)
    decision = keel.models.check_gates(
        "churn", v, gates={"champion": {"max_p95_latency_ms": 2000, "latency_calls": 10}}
    )
    (gate,) = decision.gates
    assert gate.passed and gate.kind == "latency" and gate.observed is not None
    assert decision.dataset is None and keel.models.evaluations("churn", v) == []


def test_release_end_to_end_on_postgresql(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from release_world import make_frame

    import keel.data
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_TRACKING_URI", pg_url)
    reset_settings()
    frame = make_frame(300)
    pg_world = World(frame=frame, ref=keel.data.add(frame, name="churn", key="customer").ref)
    weak, good = register(pg_world, WEAK), register(pg_world, GOOD)
    keel.models.promote("churn", weak)
    keel.models.approve("churn", good, user="bob")
    spec = _gates(
        pg_world,
        metrics={"roc_auc": ">= 0.8"},
        beat={"metric": "log_loss", "resamples": 200},
        fairness=[{"sensitive": "sex", "max": 0.5}],
        approvals=1,
    )
    decision = keel.models.promote("churn", good, gates=spec)
    assert decision.moved and decision.previous_version == weak, decision.failed_gates
    assert keel.models.decisions("churn", good) == [decision]
    assert keel.models.card(f"churn/{good}").approvals[0].user == "bob"
    from keel.models._release import releases

    assert "postgresql" in repr(releases()) and "postgresql" in repr(keel.models.default().registry)
