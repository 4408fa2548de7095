"""Lineage: a version knows its run, params, metrics, datasets and commit; a dataset knows the
models trained on it (through the runs that read it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import keel
import keel.data
import keel.models


def test_lineage_both_ways(numeric: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = numeric
    csv = tmp_path / "churn.csv"
    x.assign(churned=y).to_csv(csv, index=False)
    ds = keel.data.add(csv, name="churn")
    other = keel.data.add(csv, name="holdout")
    with keel.start_run(project="churn", inputs=[ds, other]) as run:
        keel.log_params({"C": 0.5})
        keel.log_metric("auc", 0.91)
        keel.flush()
        mv = keel.models.log(LogisticRegression(C=0.5).fit(x, y), "churn", signature_from=x)
    assert isinstance(mv, keel.models.ModelVersion)
    assert {d.ref for d in mv.datasets} == {ds.ref, "holdout@v1"}
    assert next(d for d in mv.datasets if d.ref == ds.ref).digest == ds.digest
    lin = keel.models.lineage("churn/1")
    assert lin.run is not None and lin.run.id == run.id
    assert lin.run.params == {"C": "0.5"} and lin.run.metrics["auc"] == 0.91
    assert lin.to_dict()["datasets"][0]["ref"] in {ds.ref, "holdout@v1"}
    assert [v.ref for v in keel.models.models_using(ds.ref)] == ["churn/1"]
    assert keel.models.models_using("churn@v99") == []
