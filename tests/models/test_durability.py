"""A version is READY only when every file is stored and verified; a failure leaves it FAILED
(never loadable), with the error recorded, and loses nothing that was stored before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import keel
import keel.models
from keel.artifacts import object_key
from keel.errors import Conflict, NotFound, StoreError
from keel.models import VersionStatus


def _fit(numeric: tuple[pd.DataFrame, pd.Series]) -> object:
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    return LogisticRegression().fit(x, y)


def test_a_store_failure_marks_the_version_failed(
    numeric: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, _ = numeric
    model = _fit(numeric)
    keel.models.log(model, "churn", signature_from=x)
    models = keel.models.default()

    def disk_full(*_args: object, **_kwargs: object) -> object:
        raise StoreError("artifact store: no space left on device")

    monkeypatch.setattr(models.content, "put_tree", disk_full)  # fault injection
    with pytest.raises(StoreError, match="no space"):
        keel.models.log(model, "churn", signature_from=x)
    failed = keel.models.get_version("churn", 2)
    assert failed.status is VersionStatus.FAILED and "no space" in failed.error
    assert failed.files == ()
    with pytest.raises(Conflict, match="failed"):
        keel.models.load("models:/churn/2")
    with pytest.raises(Conflict):
        keel.models.set_alias("churn", "champion", 2)
    assert keel.models.resolve_uri("churn@latest").version == 1  # latest READY
    monkeypatch.undo()
    assert keel.models.log(model, "churn", signature_from=x).version == 3  # type: ignore[union-attr]
    np.testing.assert_array_equal(keel.models.load("churn/1").predict(x), model.predict(x))  # type: ignore[attr-defined]


def test_registering_a_run_model_whose_file_is_gone_fails_cleanly(
    numeric: tuple[pd.DataFrame, pd.Series],
) -> None:
    x, _ = numeric
    with keel.start_run(project="p") as run:
        logged = keel.models.log(_fit(numeric), signature_from=x)  # logged, not registered
    assert isinstance(logged, keel.models.LoggedModel)
    assert logged.uri == f"runs:/{run.id}/model"
    skops_file = next(f for f in logged.files if f.path == "model.skops")
    backend = keel.models.default().content.backend
    (Path(backend.uri.removeprefix("file://")) / object_key(skops_file.digest)).unlink()
    with pytest.raises(NotFound):
        keel.models.register(logged.uri, "churn")
    v = keel.models.get_version("churn", 1)
    assert v.status is VersionStatus.FAILED and v.source == logged.uri
    with pytest.raises(NotFound):
        keel.models.resolve_uri("churn@latest")
