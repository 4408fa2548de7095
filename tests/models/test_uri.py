"""Model references parse strictly and resolve to versions."""

from __future__ import annotations

import pandas as pd
import pytest

import keel.models
from keel.errors import InvalidInput, NotFound
from keel.models import ModelRef, parse_uri


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/churn/3", ModelRef(name="churn", version=3)),
        ("models:/churn@champion", ModelRef(name="churn", alias="champion")),
        ("models:/churn", ModelRef(name="churn")),
        ("models:/churn@latest", ModelRef(name="churn")),
        ("churn/3", ModelRef(name="churn", version=3)),
        ("churn@challenger", ModelRef(name="churn", alias="challenger")),
        ("runs:/abc123/model", ModelRef(run_id="abc123", path="model")),
        ("runs:/abc123/deep/model", ModelRef(run_id="abc123", path="deep/model")),
    ],
)
def test_good_references(uri: str, ref: ModelRef) -> None:
    assert parse_uri(uri) == ref


@pytest.mark.parametrize(
    "uri",
    [
        "models:/churn/0",
        "models:/churn/x",
        "models:/a b",
        "s3://bucket/x",
        "runs:/bad id/m",
        "runs:/abc/../../etc",
        "models:/churn@12",
        "",
    ],
)
def test_bad_references(uri: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_uri(uri)
    assert err.value.field in ("uri", "alias")


def test_resolution_and_aliases(numeric: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    model = LogisticRegression().fit(x, y)
    with keel.start_run(project="p") as run:
        one = keel.models.log(model, "churn", signature_from=x)
    two = keel.models.log(model, "churn", signature_from=x)
    assert isinstance(one, keel.models.ModelVersion) and isinstance(two, keel.models.ModelVersion)
    keel.models.set_alias("churn", "champion", 1)
    assert keel.models.resolve_uri("models:/churn@champion").version == 1
    assert keel.models.resolve_uri("models:/churn").version == 2
    assert keel.models.get_version("churn", "champion").version == 1
    assert keel.models.get_version("churn", 2) == keel.models.resolve_uri("churn/2")
    assert keel.models.resolve_uri(f"runs:/{run.id}/model").version == 1
    keel.models.delete_alias("churn", "champion")
    with pytest.raises(NotFound):
        keel.models.resolve_uri("churn@champion")
    keel.models.set_tag("churn", "owner", "growth")
    keel.models.set_tag("churn", "stage", "qa", version=2)
    keel.models.set_description("churn", "churn model")
    assert keel.models.list_models()[0].tags == {"owner": "growth"}
    assert keel.models.get_version("churn", 2).tags == {"stage": "qa"}
