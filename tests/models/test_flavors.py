"""Every flavour round-trips: log (save, register), load, predict equal to the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models
from keel.models import ModelVersion, VersionStatus


def _registered(mv: object) -> ModelVersion:
    assert isinstance(mv, ModelVersion)
    assert mv.status is VersionStatus.READY
    assert mv.size == sum(f.size for f in mv.files) > 0
    assert mv.latency_ms is not None and mv.latency_ms > 0
    assert mv.environment.python_version
    assert mv.input_example is not None
    assert mv.signature is not None and mv.signature.outputs
    return mv


def test_sklearn_pipeline_with_column_transformer_in_a_run(
    churn: tuple[pd.DataFrame, pd.Series],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = churn
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(x, y)
    with keel.start_run(project="churn") as run:
        keel.log_input("churn@v3")
        keel.log_params({"C": 1.0})
        mv = _registered(keel.models.log(model, "churn", signature_from=x))
    assert mv.flavor == "sklearn" and mv.run_id == run.id
    assert mv.source == f"runs:/{run.id}/model"
    assert {"scikit-learn", "skops", "numpy", "pandas"} <= set(mv.environment.packages)
    assert [c.name for c in mv.signature.inputs] == ["tenure", "charges", "plan"]  # type: ignore[union-attr]
    loaded = keel.models.load("models:/churn/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    pd.testing.assert_frame_equal(loaded.input_example(), x.iloc[:5].reset_index(drop=True))
    # the run's files load too, without registering
    from_run = keel.models.load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(from_run.predict(x), model.predict(x))


def test_sklearn_logged_outside_a_run(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = numeric
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    mv = _registered(keel.models.log(model, "forest", signature_from=x))
    assert mv.run_id is None and mv.source == ""
    loaded = keel.models.load("forest@latest")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_xgboost(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    import xgboost as xgb

    x, y = numeric
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    mv = _registered(keel.models.log(model, "xgb", signature_from=x))
    assert mv.flavor == "xgboost"
    dist = next(d for d in mv.environment.packages if d.startswith("xgboost"))  # or xgboost-cpu
    assert mv.environment.packages[dist] == xgb.__version__
    assert [f.path for f in mv.files if f.path.startswith("model")] == ["model.json"]
    loaded = keel.models.load("models:/xgb/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6)


def test_lightgbm(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    import lightgbm as lgb

    x, y = numeric
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x, y)
    mv = _registered(keel.models.log(model, "lgb", signature_from=x))
    assert mv.flavor == "lightgbm" and mv.options["classes"] == [0, 1]
    loaded = keel.models.load("models:/lgb/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6)


def test_xgboost_booster_and_lightgbm_regressor(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    x, y = numeric
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), num_boost_round=3)
    _registered(keel.models.log(booster, "booster", signature_from=x))
    np.testing.assert_allclose(
        keel.models.load("booster/1").predict(x), booster.predict(xgb.DMatrix(x)), rtol=1e-6
    )
    reg = lgb.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1).fit(x, x["charges"])
    mv = _registered(keel.models.log(reg, "lgb-reg", signature_from=x))
    assert "classes" not in mv.options
    loaded = keel.models.load("lgb-reg/1")
    np.testing.assert_allclose(loaded.predict(x), reg.predict(x), rtol=1e-6)
    assert not hasattr(loaded, "predict_proba")


def test_onnx_with_one_input_per_column(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    import onnx
    from onnx import helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    model = LogisticRegression().fit(x.to_numpy(), y)
    proto = to_onnx(
        model,
        initial_types=[("X", DoubleTensorType([None, 2]))],
        options={"zipmap": False},
    )
    # a graph with two named inputs, fed from a table's columns
    concat = helper.make_node("Concat", ["tenure", "charges"], ["X"], axis=1)
    graph = proto.graph
    inputs = [
        helper.make_tensor_value_info(name, onnx.TensorProto.DOUBLE, [None, 1])
        for name in ("tenure", "charges")
    ]
    two = helper.make_graph(
        [concat, *graph.node], "two", inputs, list(graph.output), list(graph.initializer)
    )
    merged = helper.make_model(two, opset_imports=list(proto.opset_import))
    merged.ir_version = proto.ir_version
    _registered(keel.models.log(merged, "onnx-cols", signature_from=x))
    loaded = keel.models.load("onnx-cols/1")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x.to_numpy()))
    with pytest.raises(keel.errors.InvalidInput) as err:
        loaded.predict(x.drop(columns=["charges"]))
    assert err.value.field == "charges"


def test_onnx_from_skl2onnx(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    arr = x.to_numpy(dtype=np.float32)
    model = LogisticRegression().fit(arr, y)
    proto = to_onnx(model, arr[:1], options={"zipmap": False})
    mv = _registered(keel.models.log(proto, "onnx-lr", signature_from=arr))
    assert mv.flavor == "onnx" and mv.signature.kind == "tensor"  # type: ignore[union-attr]
    assert mv.signature.inputs[0].shape == (-1, 2)  # type: ignore[union-attr]
    loaded = keel.models.load("models:/onnx-lr/1")
    np.testing.assert_array_equal(loaded.predict(arr), model.predict(arr))
    np.testing.assert_allclose(loaded.predict_proba(arr), model.predict_proba(arr), rtol=1e-4)


def test_torch_module_from_user_code(helpers_path: Path) -> None:
    import torch
    from keel_test_nets import TinyNet  # type: ignore[import-not-found]

    torch.manual_seed(0)
    net = TinyNet(n_in=3, hidden=5)
    x = np.random.default_rng(0).random((16, 3)).astype(np.float32)
    mv = _registered(keel.models.log(net, "net", signature_from=x, config={"n_in": 3, "hidden": 5}))
    assert mv.options["class"] == "keel_test_nets:TinyNet"
    assert [f.path for f in mv.files if f.path.startswith("model")] == ["model.safetensors"]
    assert {"torch", "safetensors"} <= set(mv.environment.packages)
    loaded = keel.models.load("models:/net/1")
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6)
    assert not hasattr(loaded, "predict_proba")


def test_python_model_from_user_package(helpers_path: Path, tmp_path: Path) -> None:
    from keel_test_nets import Scaler

    offset = tmp_path / "offset.txt"
    offset.write_text("0.5")
    model = Scaler(factor=3.0, offset_file=str(offset))
    data = pd.DataFrame({"x": [1.0, 2.0, 4.0]})
    mv = _registered(keel.models.log(model, "scaler", signature_from=data))
    assert mv.flavor == "python" and mv.options["class"] == "keel_test_nets:Scaler"
    assert "artifacts/offset/offset.txt" in {f.path for f in mv.files}
    assert not any(f.path.endswith((".pkl", ".pickle")) for f in mv.files)
    offset.unlink()  # the stored copy is what loads
    loaded = keel.models.load("models:/scaler/1")
    np.testing.assert_allclose(loaded.predict(data), [3.5, 6.5, 12.5])
    assert isinstance(keel.PythonModel, type)


def test_an_unknown_type_gets_no_silent_pickle() -> None:
    class Opaque:
        def predict(self, x: object) -> object:
            return x

    with pytest.raises(keel.errors.InvalidInput, match="no safe format"):
        keel.models.log(Opaque(), "opaque")
    with pytest.raises(keel.errors.NotFound):
        keel.models.get_version("opaque", 1)


def test_a_model_needs_a_signature_source(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LinearRegression

    x, y = numeric
    with pytest.raises(keel.errors.InvalidInput) as err:
        keel.models.log(LinearRegression().fit(x, y), "lin")
    assert err.value.field == "signature_from"
    mv = keel.models.log(LinearRegression().fit(x, y), "lin", input_example=x.iloc[:3])
    assert isinstance(mv, ModelVersion) and mv.signature is not None
    assert [c.name for c in mv.signature.inputs] == ["tenure", "charges"]


def test_a_transformer_predicts_with_transform(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, _ = numeric
    model = make_pipeline(StandardScaler(), PCA(n_components=1)).fit(x)
    keel.models.log(model, "embed", signature_from=x)
    np.testing.assert_allclose(keel.models.load("embed/1").predict(x), model.transform(x))


@pytest.mark.parametrize(
    "make",
    [
        "sklearn.ensemble:GradientBoostingClassifier",
        "sklearn.ensemble:HistGradientBoostingClassifier",
        "sklearn.ensemble:ExtraTreesRegressor",
        "sklearn.neighbors:KNeighborsClassifier",
        "sklearn.svm:SVC",
        "sklearn.linear_model:Ridge",
        "sklearn.naive_bayes:GaussianNB",
        "sklearn.neural_network:MLPClassifier",
        "sklearn.calibration:CalibratedClassifierCV",
        "sklearn.gaussian_process:GaussianProcessRegressor",
    ],
)
def test_common_estimators_load_with_keels_trusted_types(
    make: str, numeric: tuple[pd.DataFrame, pd.Series]
) -> None:
    import importlib
    import warnings

    module, _, cls = make.partition(":")
    x, y = numeric
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits are not the point
        model = getattr(importlib.import_module(module), cls)().fit(x, y)
    name = cls.lower()
    keel.models.log(model, name, signature_from=x)
    np.testing.assert_allclose(keel.models.load(f"{name}/1").predict(x), model.predict(x))
