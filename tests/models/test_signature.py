"""Signatures are inferred at logging time and enforced per column at predict time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models
from keel.errors import InvalidInput
from keel.models import ColSpec, Signature
from keel.models._signature import enforce, infer_signature

SIG = Signature(
    kind="columns",
    inputs=(ColSpec("age", "int64"), ColSpec("score", "float64"), ColSpec("plan", "str")),
)


def _frame(**over: object) -> pd.DataFrame:
    data: dict[str, object] = {"age": [30, 40], "score": [0.5, 0.7], "plan": ["a", "b"]}
    data.update(over)
    return pd.DataFrame(data)


def test_inference_covers_frames_and_tensors() -> None:
    sig = infer_signature(_frame(), np.array([1, 0]))
    assert sig.inputs == SIG.inputs
    assert sig.outputs == (ColSpec(None, "int64", (-1,)),)
    t = infer_signature(np.zeros((4, 3, 2), dtype=np.float32))
    assert t.kind == "tensor" and t.inputs == (ColSpec(None, "float32", (-1, 3, 2)),)
    assert Signature.from_dict(sig.to_dict()) == sig


def test_missing_column_is_named() -> None:
    with pytest.raises(InvalidInput) as err:
        enforce(SIG, _frame().drop(columns=["score"]))
    assert err.value.field == "score"


def test_wrong_dtype_is_named_and_safe_widening_is_applied() -> None:
    with pytest.raises(InvalidInput) as err:
        enforce(SIG, _frame(age=[1.5, 2.0]))
    assert err.value.field == "age"
    with pytest.raises(InvalidInput) as err:
        enforce(SIG, _frame(score=["x", "y"]))
    assert err.value.field == "score"
    with pytest.raises(InvalidInput) as err:
        enforce(SIG, _frame(plan=[1, 2]))
    assert err.value.field == "plan"
    out = enforce(SIG, _frame(score=[1, 2], age=np.array([1, 2], dtype="int32")).assign(extra=1))
    assert list(out.columns) == ["age", "score", "plan"]
    assert (str(out["age"].dtype), str(out["score"].dtype)) == ("int64", "float64")


def test_columns_are_reordered_and_mappings_accepted() -> None:
    out = enforce(SIG, {"plan": ["a"], "score": [1.0], "age": [3]})
    assert list(out.columns) == ["age", "score", "plan"]
    with pytest.raises(InvalidInput) as err:
        enforce(SIG, np.zeros((2, 3)))
    assert err.value.field == "input"


def test_tensor_shape_and_dtype() -> None:
    sig = infer_signature(np.zeros((4, 3), dtype=np.float32))
    assert enforce(sig, np.ones((10, 3), dtype=np.float64)).dtype == np.float32
    for bad in (np.ones((10, 4)), np.ones((10,)), np.ones((2, 3, 1))):
        with pytest.raises(InvalidInput, match="shape"):
            enforce(sig, bad)
    with pytest.raises(InvalidInput, match="dtype"):
        enforce(sig, np.array([["a", "b", "c"]]))


def test_enforcement_is_vectorised_over_a_large_batch() -> None:
    big = pd.DataFrame(
        {"age": np.arange(1_000_000), "score": np.ones(1_000_000), "plan": ["a"] * 1_000_000}
    )
    out = enforce(SIG, big)
    assert out is big  # matching dtypes and order: passed through, nothing copied


def test_loaded_model_names_the_bad_column(churn: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    x = x[["tenure", "charges"]]
    keel.models.log(LogisticRegression().fit(x, y), "lr", signature_from=x)
    model = keel.models.load("models:/lr/1")
    with pytest.raises(InvalidInput) as err:
        model.predict(x.drop(columns=["charges"]))
    assert err.value.field == "charges"
    with pytest.raises(InvalidInput) as err:
        model.predict_proba(x.assign(tenure=x.tenure.astype(str)))
    assert err.value.field == "tenure"


def test_library_errors_become_invalid_input(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    keel.models.log(LogisticRegression().fit(x, y), "lr", signature_from=x)
    model = keel.models.load("lr/1")
    with pytest.raises(InvalidInput) as err:
        model.predict(x.assign(charges=np.nan))  # sklearn refuses NaN
    assert err.value.field == "input" and "ValueError" in str(err.value)
    # a model that cannot predict its own example is refused at logging time
    unfitted = LogisticRegression()
    with pytest.raises(InvalidInput):
        keel.models.log(unfitted, "unfitted", signature_from=x)
