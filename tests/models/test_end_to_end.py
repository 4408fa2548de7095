"""log -> register -> alias -> load -> lineage through the configured stores, on SQLite and on
PostgreSQL (the same metadata database as tracking and data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.data
import keel.models
from keel.config import reset_settings
from keel.errors import InvalidInput, NotFound
from keel.models._sql import SqlModelRegistry


@pytest.fixture
def configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KEEL_TRACKING_URI", db_url)
    reset_settings()
    return db_url


def test_round_trip_on_each_database(
    configured: str, numeric: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    csv = tmp_path / "churn.csv"
    x.assign(churned=y).to_csv(csv, index=False)
    ds = keel.data.add(csv, name="churn")
    model = LogisticRegression().fit(x, y)
    with keel.start_run(project="churn", inputs=[ds]) as run:
        keel.log_params({"C": 1.0})
        mv = keel.models.log(model, "churn", signature_from=x)
        with pytest.raises(InvalidInput) as err:
            keel.models.log(model, "churn", signature_from=x)  # same artifact_path twice
        assert err.value.field == "artifact_path"
        again = keel.models.log(model, "churn", signature_from=x, artifact_path="model2")
    registry = keel.models.default().registry
    assert isinstance(registry, SqlModelRegistry)
    assert registry.url.split(":", 1)[0] == configured.split(":", 1)[0]  # the configured DB
    assert (mv.version, again.version) == (1, 2)
    keel.models.set_alias("churn", "champion", 1)
    keel.models.set_alias("churn", "challenger", 2)
    loaded = keel.models.load("models:/churn@champion")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    lin = keel.models.lineage("churn@challenger")
    assert lin.run is not None and lin.run.id == run.id
    assert lin.datasets[0].ref == ds.ref and lin.datasets[0].digest == ds.digest
    assert [v.version for v in keel.models.models_using(ds.ref)] == [1, 2]


def test_models_on_explicit_stores(
    db_url: str, numeric: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    from keel.artifacts import open_content_store
    from keel.models import Models
    from keel.tracking import open_store

    x, y = numeric
    registry = SqlModelRegistry(db_url)
    models = Models(registry, open_content_store(str(tmp_path / "objects")), open_store(db_url))
    model = LogisticRegression().fit(x, y)
    mv = models.log(model, "explicit", signature_from=x)
    assert mv.version == 1 and registry.get_version("explicit", 1).status.value == "ready"
    np.testing.assert_array_equal(models.load("explicit/1").predict(x), model.predict(x))
    with pytest.raises(NotFound):
        keel.models.get_version("explicit", 1)  # the configured stores know nothing of it
    registry.close()
