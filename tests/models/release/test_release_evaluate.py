"""``keel.models.evaluate`` on registered models: metrics equal scikit-learn's on the same
predictions, the evaluation is stored and logged to a run whose input is the dataset version,
slices and business metrics, regression, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from release_world import World, register
from sklearn import metrics as skm

import keel
import keel.data
import keel.models
from keel.errors import InvalidInput


def test_classification_metrics_match_sklearn_and_are_logged_to_a_run(world: World) -> None:
    v = register(world, ["a", "b"])
    frame = world.frame
    result = keel.models.evaluate(f"models:/churn/{v}", world.ref, "churned")
    model = keel.models.load(f"models:/churn/{v}")
    proba = model.predict_proba(frame)[:, 1]
    pred = model.predict(frame)
    y = frame["churned"]
    assert result.task == "classification" and result.rows == len(frame)
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert result.metrics["brier"] == pytest.approx(skm.brier_score_loss(y, proba))
    assert result.confusion is not None
    assert np.array_equal(np.array(result.confusion.counts), skm.confusion_matrix(y, pred))
    assert result.calibration is not None and sum(result.calibration.counts) == len(frame)

    assert keel.models.evaluations("churn", v) == [result]
    run = keel.get_run(result.run_id)
    assert run.status == "FINISHED" and run.name == f"evaluate churn/v{v}"
    assert [(io.ref, io.direction) for io in run.io] == [(world.ref, "input")]
    assert run.metrics["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert run.params["model"] == f"models:/churn/{v}" and run.tags["keel.evaluation"] == result.id
    assert run.project == "churn"  # the project of the run that trained the model


def test_slices_and_business_metrics(world: World) -> None:
    v = register(world, ["a", "b"])

    def retained_value(y_true: np.ndarray, y_pred: np.ndarray, rows: pd.DataFrame) -> float:
        # 100 per churner caught, 10 per false alarm; rows give access to any column
        caught = (y_true == 1) & (y_pred == 1)
        alarm = (y_true == 0) & (y_pred == 1)
        assert len(rows) == len(y_true) and "region" in rows
        return float(100 * caught.sum() - 10 * alarm.sum())

    result = keel.models.evaluate(
        f"churn/{v}", world.ref, "churned", slices=["region", "sex"],
        business_metrics={"retained_value": retained_value},
    )  # fmt: skip
    frame = world.frame
    pred = keel.models.load(f"models:/churn/{v}").predict(frame)
    y = frame["churned"].to_numpy()
    expected = 100 * ((y == 1) & (pred == 1)).sum() - 10 * ((y == 0) & (pred == 1)).sum()
    assert result.business == {"retained_value": pytest.approx(expected)}
    assert set(result.slices) == {"region", "sex"}
    north = (frame["region"] == "north").to_numpy()
    assert result.slices["region"]["north"]["rows"] == north.sum()
    assert result.slices["region"]["north"]["recall"] == pytest.approx(
        skm.recall_score(y[north], pred[north])
    )
    run = keel.get_run(result.run_id)
    assert run.metrics["business.retained_value"] == pytest.approx(expected)
    assert "slice.region=north.recall" in run.metrics


def test_bad_input_names_the_field_and_stores_nothing(world: World) -> None:
    v = register(world, ["a", "b"])
    uri = f"churn/{v}"
    with pytest.raises(InvalidInput) as info:
        keel.models.evaluate(uri, world.ref, "left")
    assert info.value.field == "target"
    with pytest.raises(InvalidInput) as info:
        keel.models.evaluate(uri, world.ref, "churned", slices=["planet"])
    assert info.value.field == "slices"
    with pytest.raises(InvalidInput) as info:
        keel.models.evaluate(uri, world.ref, "churned", slices=["customer"])
    assert info.value.field == "slices.customer"  # 600 distinct values: not a slice

    def broken(y_true: object, y_pred: object, rows: object) -> float:
        raise ZeroDivisionError("oops")

    with pytest.raises(InvalidInput, match="ZeroDivisionError") as info:
        keel.models.evaluate(uri, world.ref, "churned", business_metrics={"b": broken})
    assert info.value.field == "business_metrics.b"
    with pytest.raises(InvalidInput) as info:
        keel.models.evaluate(uri, world.ref, "churned", business_metrics={"t": lambda *_: "a lot"})
    assert info.value.field == "business_metrics.t"
    assert keel.models.evaluations("churn", v) == []


def test_regression_metrics_match_sklearn() -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    frame["spend"] = 50 + 3 * frame.x1 - 2 * frame.x2 + rng.normal(size=300)
    ds = keel.data.add(frame, name="spend")
    model = LinearRegression().fit(frame[["x1", "x2"]], frame["spend"])
    version = keel.models.log(model, name="spend", signature_from=frame[["x1", "x2"]])
    result = keel.models.evaluate(version.uri, ds.ref, "spend")
    pred = model.predict(frame[["x1", "x2"]])
    y = frame["spend"]
    assert result.task == "regression" and result.confusion is None
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert result.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert result.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert keel.get_run(result.run_id).project == "default"  # logged outside a run


def test_multiclass_with_text_labels_and_a_tensor_model() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    n = 450
    x = rng.normal(size=(n, 3))
    label = np.array(["bronze", "gold", "silver"])[np.argmax(x + rng.normal(0, 0.5, (n, 3)), 1)]
    frame = pd.DataFrame({"id": np.arange(n), "f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2],
                          "tier": label})  # fmt: skip
    ds = keel.data.add(frame, name="tiers", key="id")
    # Trained on a bare array: a tensor signature, so features are every column but the
    # target and the key, in table order.
    model = LogisticRegression().fit(x, label)
    version = keel.models.log(model, name="tiers", signature_from=x)
    result = keel.models.evaluate(version.uri, ds.ref, "tier", slices=["tier"])
    proba, pred = model.predict_proba(x), model.predict(x)
    assert result.classes == ("bronze", "gold", "silver")
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(label, pred, average="macro"))
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(label, proba, multi_class="ovr")
    )
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(label, proba))
    assert result.confusion is not None and result.confusion.labels == result.classes
    assert set(result.slices["tier"]) == {"bronze", "gold", "silver"}


def test_a_team_server_uri_opens_the_http_release_store(tmp_path: Path) -> None:
    # Its behaviour against a live server: tests/server/remote/test_models_remote.py.
    from keel.models._release_http import HttpReleaseStore
    from keel.models._release_sql import SqlReleaseStore, open_release_store

    assert isinstance(open_release_store("http://127.0.0.1:5000"), HttpReleaseStore)
    local = open_release_store(f"sqlite:///{tmp_path / 'keel.db'}")
    assert isinstance(local, SqlReleaseStore)
    local.close()


def test_a_regressor_on_a_small_integer_target_is_evaluated_as_regression() -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    frame["visits"] = np.clip(np.round(3 + 2 * frame.x + rng.normal(size=200)), 0, 8).astype(int)
    ds = keel.data.add(frame, name="visits")
    model = LinearRegression().fit(frame[["x"]], frame["visits"])
    version = keel.models.log(model, name="visits", signature_from=frame[["x"]])
    result = keel.models.evaluate(version.uri, ds.ref, "visits")
    assert result.task == "regression" and "rmse" in result.metrics


def test_missing_targets_are_refused(world: World) -> None:
    v = register(world, ["a", "b"])
    frame = world.frame.astype({"churned": "float64"})
    frame.loc[[3, 7], "churned"] = np.nan
    holes = keel.data.add(frame, name="churn-holes", key="customer")
    with pytest.raises(InvalidInput, match="2 missing") as info:
        keel.models.evaluate(f"churn/{v}", holes.ref, "churned")
    assert info.value.field == "target"
