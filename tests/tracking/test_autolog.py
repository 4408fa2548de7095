"""scikit-learn autologging with real estimators on small generated data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import keel
from keel.tracking import Client, RunStatus
from keel.tracking.autolog import AutologWarning


@pytest.fixture(autouse=True)
def autologging() -> Iterator[None]:
    keel.autolog()
    yield
    keel.tracking.autolog.disable()


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def _only_run(client: Client) -> keel.tracking.Run:
    runs = list(client.search_runs())
    assert len(runs) == 1, runs
    return runs[0]


def test_a_classifier_fit_logs_a_run_params_metrics_and_model(
    client: Client, tmp_path: Path
) -> None:
    x, y = make_classification(n_samples=120, n_features=5, random_state=0)
    model = LogisticRegression(C=0.5, max_iter=200).fit(x, y)
    run = _only_run(client)
    assert run.status is RunStatus.FINISHED and run.name == "LogisticRegression"
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "200"
    assert run.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    expected = {
        "training_accuracy",
        "training_precision",
        "training_recall",
        "training_f1",
        "training_log_loss",
        "training_roc_auc",
    }
    assert set(run.metrics) == expected
    assert run.metrics["training_accuracy"] == pytest.approx(model.score(x, y))
    assert 0.5 < run.metrics["training_roc_auc"] <= 1.0
    [artifact] = client.list_artifacts(run.id)
    assert artifact.path == "model/model.skops"
    [path] = client.download_artifacts(run.id, "model/model.skops", tmp_path)
    types = skops.io.get_untrusted_types(file=path)
    loaded = skops.io.load(path, trusted=types)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_a_regressor_fit_logs_regression_metrics(client: Client) -> None:
    x, y = make_regression(n_samples=80, n_features=3, noise=0.1, random_state=0)
    keel.tracking.autolog.sklearn(log_models=False)
    LinearRegression().fit(x, y)
    run = _only_run(client)
    assert set(run.metrics) == {"training_mae", "training_mse", "training_rmse", "training_r2"}
    assert run.metrics["training_rmse"] == pytest.approx(run.metrics["training_mse"] ** 0.5)
    assert run.metrics["training_r2"] > 0.99
    assert client.list_artifacts(run.id) == []


def test_pipeline_and_search_cv_log_once_for_the_outer_fit(client: Client) -> None:
    x, y = make_classification(n_samples=90, n_features=4, random_state=1)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    search = GridSearchCV(pipe, {"clf__C": [0.1, 1.0]}, cv=3)
    search.fit(x, y)
    run = _only_run(client)  # the 7 inner fits of the pipeline and its steps log nothing
    assert run.name == "GridSearchCV"
    assert run.params["best_clf__C"] in ("0.1", "1.0")
    assert run.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "training_accuracy" in run.metrics
    assert [a.path for a in client.list_artifacts(run.id)] == ["model/model.skops"]


def test_fit_inside_an_active_run_logs_to_it_and_leaves_it_open(client: Client) -> None:
    x, y = make_classification(n_samples=60, n_features=4, random_state=2)
    with keel.start_run(project="mine") as run:
        keel.log_param("note", "manual")
        LogisticRegression().fit(x, y)
        assert keel.active_run() is run
    got = client.get_run(run.id)
    assert got.project == "mine" and got.params["note"] == "manual"
    assert "training_f1" in got.metrics and got.status is RunStatus.FINISHED
    # A second fit with other params in the same run: training works, the conflict is reported.
    with keel.start_run(project="mine"):
        LogisticRegression(C=1.0).fit(x, y)
        with pytest.warns(AutologWarning, match="params not logged"):
            LogisticRegression(C=2.0).fit(x, y)


def test_a_failing_fit_fails_the_run_it_started(client: Client) -> None:
    with pytest.raises(ValueError):
        LogisticRegression().fit(np.zeros((4, 2)), np.zeros(4))  # a single class
    assert _only_run(client).status is RunStatus.FAILED


def test_classes_defined_after_enabling_are_patched_and_disable_restores(client: Client) -> None:
    class Late(LinearRegression):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y, sample_weight)

    x, y = make_regression(n_samples=30, n_features=2, random_state=3)
    Late().fit(x, y)
    assert _only_run(client).name == "Late"
    keel.tracking.autolog.disable()
    assert LogisticRegression.fit.__qualname__ == "LogisticRegression.fit"
    LinearRegression().fit(x, y)
    Late().fit(x, y)
    assert len(list(client.search_runs())) == 1
