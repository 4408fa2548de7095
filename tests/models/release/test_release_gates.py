"""The gate declaration (keel.toml) and each gate kind's verdict over plain facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.models._bootstrap import paired_bootstrap
from keel.models._fairness import fairness
from keel.models._gates import (
    ApprovalGate,
    BeatGate,
    FairnessGate,
    GateResult,
    MetricGate,
    load_gates,
    parse_gates,
)
from keel.models._gates_check import (
    check_approvals,
    check_beat,
    check_fairness,
    check_latency,
    check_metric,
    check_size,
)

TOML = """
[keel]
project = "churn"

[gates]
dataset = "churn@latest"
target = "churned"
metrics = { accuracy = ">= 0.7" }

[gates.champion]
metrics = { roc_auc = ">= 0.85", accuracy = ">= 0.8" }
beat = { metric = "roc_auc", margin = 0.01, relative = true, confidence = 0.9, resamples = 500 }
max_p95_latency_ms = 50
max_size_mb = 20
fairness = [{ metric = "equalized_odds_difference", sensitive = "sex", max = 0.1 }]
approvals = { required = 2, approvers = ["alice", "bob", "carol"] }
"""


def test_keel_toml_gates_parse_with_alias_overrides(tmp_path: Path) -> None:
    file = tmp_path / "keel.toml"
    file.write_text(TOML)
    spec = load_gates("champion", path=file)
    assert spec.dataset == "churn@latest" and spec.target == "churned"
    assert set(spec.metrics) == {
        MetricGate("roc_auc", ">=", 0.85),
        MetricGate("accuracy", ">=", 0.8),
    }
    assert spec.beat == BeatGate("roc_auc", 0.01, True, 0.9, 500)
    assert spec.max_p95_latency_ms == 50 and spec.max_size_mb == 20
    assert spec.fairness == (FairnessGate("equalized_odds_difference", "sex", 0.1),)
    assert spec.approvals == ApprovalGate(2, ("alice", "bob", "carol"))
    # Another alias inherits only the defaults.
    staging = load_gates("staging", path=file)
    assert staging.metrics == (MetricGate("accuracy", ">=", 0.7),)
    assert staging.beat is None and staging.approvals is None


def test_missing_project_file_means_no_gates_but_a_missing_given_file_is_an_error(
    tmp_path: Path,
) -> None:
    assert load_gates("champion").empty  # the isolated home has no keel.toml beside it
    with pytest.raises(InvalidInput) as info:
        load_gates("champion", path=tmp_path / "nope.toml")
    assert info.value.field == "gates"


def test_a_dedicated_gates_file_may_hold_the_table_at_the_top(tmp_path: Path) -> None:
    file = tmp_path / "gates.toml"
    file.write_text("[champion]\nmax_size_mb = 5\napprovals = 1\n")
    spec = load_gates("champion", path=file)
    assert spec.max_size_mb == 5 and spec.approvals == ApprovalGate(1)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"champion": {"bogus": 1}}, "gates.champion.bogus"),
        ({"champion": {"metrics": {"auc": "about 0.8"}}}, "gates.champion.metrics.auc"),
        ({"champion": {"metrics": {"auc": ">= high"}}}, "gates.champion.metrics.auc"),
        ({"champion": {"beat": {"metric": "vibes"}}}, "gates.champion.beat.metric"),
        (
            {"champion": {"beat": {"metric": "f1", "confidence": 2}}},
            "gates.champion.beat.confidence",
        ),
        ({"champion": {"max_size_mb": -1}}, "gates.champion.max_size_mb"),
        ({"champion": {"max_p95_latency_ms": "fast"}}, "gates.champion.max_p95_latency_ms"),
        ({"champion": {"fairness": [{"max": 0.1}]}}, "gates.champion.fairness[0].sensitive"),
        (
            {"champion": {"fairness": [{"sensitive": "s", "metric": "x", "max": 1}]}},
            "gates.champion.fairness[0].metric",
        ),
        ({"champion": {"approvals": {"approvers": "alice"}}}, "gates.champion.approvals.approvers"),
        ({"champion": {"dataset": "d@v1", "metrics": {"f1": ">= 0.5"}}}, "gates.champion.target"),
    ],
)
def test_bad_declarations_name_the_field(table: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_gates(table, "champion")
    assert info.value.field == field


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "keel.toml"
    file.write_text("[gates\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_gates("champion", path=file)


def test_metric_gate_passes_and_fails() -> None:
    gate = MetricGate("roc_auc", ">=", 0.8)
    assert check_metric(gate, {"roc_auc": 0.85}).passed
    failed = check_metric(gate, {"roc_auc": 0.79})
    assert not failed.passed and failed.observed == 0.79 and failed.threshold == 0.8
    assert check_metric(MetricGate("log_loss", "<", 0.5), {"log_loss": 0.4}).passed
    missing = check_metric(gate, {"f1": 1.0})
    assert not missing.passed and "not measured" in missing.detail


def test_beat_gate_passes_a_clearly_better_model_and_fails_a_not_better_one() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    noise, other_noise = rng.random(500), rng.random(500)
    champion = np.clip(0.2 * y + 0.8 * noise, 0, 1)
    better = np.clip(0.6 * y + 0.4 * noise, 0, 1)
    # As good as the champion, with different errors: a higher point estimate by luck.
    lucky = np.clip(0.2 * y + 0.8 * other_noise, 0, 1)
    gate = BeatGate("roc_auc", margin=0.0)
    win = check_beat(gate, paired_bootstrap("roc_auc", y, better, champion), alias="champion",
                     holder=3)  # fmt: skip
    assert win.passed and win.ci_low is not None and win.ci_low > 0 and win.extra["holder"] == 3
    # Higher on the point estimate (+0.03), but the interval straddles the margin: refused.
    close = paired_bootstrap("roc_auc", y, lucky, champion)
    assert close.diff > 0.02
    lose = check_beat(gate, close, alias="champion", holder=3)
    assert not lose.passed and lose.ci_low is not None and lose.ci_low <= 0
    assert "CI of the difference" in lose.detail
    # A margin the better model does not clear by its lower bound fails too.
    assert not check_beat(BeatGate("roc_auc", margin=0.5), paired_bootstrap(
        "roc_auc", y, better, champion), alias="champion", holder=3).passed  # fmt: skip
    assert check_beat(gate, None, alias="champion", holder=None).passed


def test_latency_and_size_gates() -> None:
    assert check_latency(10, 4.2, calls=100, batch_rows=1).passed
    assert not check_latency(10, 12.0, calls=100, batch_rows=1).passed
    assert check_size(1, 999_999).passed
    slow = check_size(1, 1_000_001)
    assert not slow.passed and slow.observed == pytest.approx(1.000001)


def test_fairness_gate_passes_fair_and_fails_unfair_predictions() -> None:
    group = np.array(["a", "b"] * 200)
    y = np.tile([0, 1, 1, 0], 100)
    fair = y.copy()
    unfair = np.where(group == "a", 1, y)  # group a is always selected
    gate = FairnessGate("demographic_parity_difference", "group", 0.1)
    ok = check_fairness(gate, fairness(gate.metric, y, fair, group, sensitive_name="group",
                                       classes=[0, 1]))  # fmt: skip
    assert ok.passed and ok.observed == pytest.approx(0.0)
    bad = check_fairness(gate, fairness(gate.metric, y, unfair, group, sensitive_name="group",
                                        classes=[0, 1]))  # fmt: skip
    assert not bad.passed and bad.observed == pytest.approx(0.5)
    assert bad.extra["groups"]["a"]["selection_rate"] == pytest.approx(1.0)
    eo = fairness("equalized_odds_difference", y, unfair, group, sensitive_name="group",
                  classes=[0, 1])  # fmt: skip
    assert eo.value == pytest.approx(1.0)  # false-positive rate 1.0 in a, 0.0 in b
    with pytest.raises(InvalidInput):
        fairness(gate.metric, y, fair, np.full(400, "a"), sensitive_name="group", classes=[0, 1])


def test_approval_gate_ignores_the_author_and_non_maintainers() -> None:
    gate = ApprovalGate(required=1)
    assert not check_approvals(gate, [], author="alice").passed
    assert not check_approvals(gate, ["alice"], author="alice").passed
    assert check_approvals(gate, ["alice", "bob"], author="alice").passed
    listed = ApprovalGate(required=2, approvers=("bob", "carol"))
    result = check_approvals(listed, ["bob", "mallory", "bob"], author="alice")
    assert not result.passed and result.observed == 1 and "mallory" in result.detail
    assert check_approvals(listed, ["bob", "carol"], author="alice").passed


def test_results_round_trip_through_json_shape() -> None:
    result = check_metric(MetricGate("f1", ">=", 0.5), {"f1": 0.7})
    assert GateResult.from_dict(result.to_dict()) == result
