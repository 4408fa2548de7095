"""Delayed labels end to end: predictions logged by the real PredictionLogWriter into a local
artifact store, labels for a subset added later through SqlFeedbackStore (SQLite), the window
read back and assessed. Coverage is exactly the labelled share, metrics use labelled rows only,
corrections win, and champion vs challenger are compared on the same request ids."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from keel.artifacts import LocalBackend
from keel.models._bootstrap import paired_bootstrap
from keel.monitoring import assess_performance, read_window
from keel.monitoring._feedback import SqlFeedbackStore
from keel.serving._predlog import PredictionLogWriter, PredictionRow

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR
N = 600


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


@pytest.fixture
def store(sqlite_url: str) -> SqlFeedbackStore:
    return SqlFeedbackStore(sqlite_url)


def truth_and_predictions(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    champion = np.where(rng.random(N) < 0.75, y, 1 - y)
    challenger = np.where(rng.random(N) < 0.85, y, 1 - y)
    return y, champion, challenger


def write_log(backend: LocalBackend, champion: np.ndarray, challenger: np.ndarray | None) -> None:
    with PredictionLogWriter(backend, deployment="churn", batch_rows=250) as writer:
        for i in range(N):
            at = T0 + i * 10_000  # one request every 10 s: 100 minutes over two hour folders
            outputs = {"prediction": int(champion[i])}
            writer.record(PredictionRow(f"q{i}", 3, {"x": float(i)}, outputs, 4.0, timestamp_ms=at))
            if challenger is not None:
                writer.record(
                    PredictionRow(f"q{i}", 4, {"x": float(i)}, {"prediction": int(challenger[i])},
                                  6.0, role="challenger", timestamp_ms=at)
                )  # fmt: skip


def test_coverage_is_the_labelled_share_and_metrics_use_labelled_rows_only(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    y, champion, _ = truth_and_predictions(0)
    write_log(backend, champion, None)
    labelled = np.arange(N) % 3 == 0  # a third of the requests get their label, later
    # labels arrive as JSON scalars: text for some, numbers for others
    rows = [
        (f"q{i}", str(y[i]) if i % 2 else int(y[i]), T0 + 2 * HOUR)
        for i in np.flatnonzero(labelled)
    ]
    assert store.add_many("churn", rows).applied == labelled.sum()
    table = read_window("churn", "3h", now_ms=T0 + 2 * HOUR, backend=backend, feedback_store=store)
    report = assess_performance(table)
    assert report.requests == N and report.labelled_requests == labelled.sum()
    assert report.label_coverage == pytest.approx(labelled.mean())
    assert report.row_coverage == pytest.approx(labelled.mean())
    assert (
        report.metrics.n == labelled.sum() and report.metrics.missing_labels == N - labelled.sum()
    )
    assert report.metrics.values["accuracy"] == pytest.approx(
        skm.accuracy_score(y[labelled], champion[labelled]), rel=1e-12
    )
    assert report.metrics.values["f1"] == pytest.approx(
        skm.f1_score(y[labelled], champion[labelled]), rel=1e-12
    )
    q = report.quantities()
    assert q["label_coverage"].value == pytest.approx(1 / 3) and q["label_coverage"].n == N
    assert q["performance.accuracy"].n == labelled.sum()
    assert q["performance.version.3.accuracy"].value == q["performance.accuracy"].value
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_correction_wins_over_the_first_label(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    y, champion, _ = truth_and_predictions(1)
    write_log(backend, champion, None)
    store.add_many("churn", [(f"q{i}", int(champion[i]), T0 + HOUR) for i in range(100)])
    before = assess_performance(
        read_window("churn", "3h", now_ms=T0 + 2 * HOUR, backend=backend, feedback_store=store)
    )
    assert before.metrics.values["accuracy"] == 1.0  # first labels agree with the model
    # a week later the true labels arrive and replace them
    store.add_many("churn", [(f"q{i}", int(y[i]), T0 + 7 * 24 * HOUR) for i in range(100)])
    after = assess_performance(
        read_window("churn", "3h", now_ms=T0 + 2 * HOUR, backend=backend, feedback_store=store)
    )
    assert after.labelled_requests == 100
    assert after.metrics.values["accuracy"] == pytest.approx(
        skm.accuracy_score(y[:100], champion[:100])
    )


def test_champion_and_challenger_on_the_same_requests(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    y, champion, challenger = truth_and_predictions(2)
    write_log(backend, champion, challenger)
    labelled = np.arange(N) % 2 == 0
    store.add_many("churn", [(f"q{i}", int(y[i]), None) for i in np.flatnonzero(labelled)])
    table = read_window("churn", "3h", now_ms=T0 + 2 * HOUR, backend=backend, feedback_store=store)
    report = assess_performance(table, resamples=500)
    assert report.requests == N and report.rows == 2 * N
    c = report.comparison
    assert c is not None and c.n == labelled.sum() and c.challenger_versions == ("4",)
    want_a = skm.accuracy_score(y[labelled], champion[labelled])
    want_b = skm.accuracy_score(y[labelled], challenger[labelled])
    assert c.champion.values["accuracy"] == pytest.approx(want_a)
    assert c.challenger.values["accuracy"] == pytest.approx(want_b)
    diff = c.diffs["accuracy"]
    assert diff.diff == pytest.approx(want_b - want_a)  # positive: the challenger is better
    want = paired_bootstrap(
        "accuracy", y[labelled], challenger[labelled], champion[labelled], resamples=500
    )
    assert diff.low == pytest.approx(want.low) and diff.high == pytest.approx(want.high)
    assert diff.low is not None and diff.high is not None and diff.diff is not None
    assert diff.low < diff.diff < diff.high
    assert report.roles["challenger"].values["accuracy"] == pytest.approx(want_b)
    assert report.versions["4"].n == labelled.sum()
    q = report.quantities()
    assert q["performance.challenger.accuracy"].value == pytest.approx(want_b)
    assert q["performance.accuracy"].value == pytest.approx(want_a)  # headline: the champion
    assert q["performance.challenger_gain.accuracy"].value == pytest.approx(want_b - want_a)
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_challenger_missing_some_requests_is_compared_on_the_shared_ones(
    backend: LocalBackend, store: SqlFeedbackStore
) -> None:
    y, champion, challenger = truth_and_predictions(3)
    with PredictionLogWriter(backend, deployment="churn") as writer:
        for i in range(N):
            at = T0 + i * 10_000
            writer.record(PredictionRow(f"q{i}", 3, {}, {"prediction": int(champion[i])}, 4.0,
                                        timestamp_ms=at))  # fmt: skip
            if i >= 200:  # the shadow started later
                writer.record(PredictionRow(f"q{i}", 4, {}, {"prediction": int(challenger[i])},
                                            6.0, role="challenger", timestamp_ms=at))  # fmt: skip
    store.add_many("churn", [(f"q{i}", int(y[i]), None) for i in range(N)])
    table = read_window("churn", "3h", now_ms=T0 + 2 * HOUR, backend=backend, feedback_store=store)
    c = assess_performance(table, resamples=200).comparison
    assert c is not None and c.n == N - 200
    assert c.champion.values["accuracy"] == pytest.approx(
        skm.accuracy_score(y[200:], champion[200:])
    )


def test_the_docs_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    doc = Path(__file__).parents[2] / "docs" / "monitoring-performance.md"
    example = doc.read_text().split("## A runnable example", 1)[1]
    code = re.search(r"```python\n(.*?)```", example, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.splitlines()
    assert out[0] == "0.5 0.8"
    assert json.loads(out[1].replace("'", '"'))["diff"] == pytest.approx(0.2)
    assert out[2] == "Quantity(value=3.0, n=300)"
