"""keel.models stays light to import, model libraries fail late with the extra to install, and
migration 0003 creates exactly the tables keel.models declares."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keel.errors import MissingDependency


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {m.split(".")[0] for m in json.loads(out.splitlines()[-1])}


def test_import_keel_models_loads_no_model_library() -> None:
    loaded = _modules_after(
        "import keel\nkeel.PythonModel; keel.models.log; keel.models.load; keel.models.ModelVersion"
    )
    heavy = {
        "numpy",
        "pandas",
        "sqlalchemy",
        "sklearn",
        "skops",
        "xgboost",
        "lightgbm",
        "onnx",
        "onnxruntime",
        "torch",
        "safetensors",
    }
    assert not loaded & heavy, loaded & heavy


@pytest.mark.parametrize(
    ("flavor", "module", "extra"),
    [
        ("xgboost", "xgboost", "models"),
        ("torch", "torch", "torch"),
        ("sklearn", "skops.io", "sklearn"),
    ],
)
def test_a_missing_library_names_its_extra(
    flavor: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    from keel.models.flavors import get

    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails
    with pytest.raises(MissingDependency) as err:
        get(flavor).load(Path(str(tmp_path)), {"class": "XGBClassifier", "file": "x"})
    assert err.value.extra == extra
    assert f"keel-mlops[{extra}]" in str(err.value)


def test_migration_matches_the_declared_tables(db_url: str) -> None:
    from sqlalchemy import inspect

    from keel.db import connect, metadata
    from keel.models import _tables

    engine = connect(db_url)
    inspector = inspect(engine)
    mine = [
        _tables.registered_models,
        _tables.model_tags,
        _tables.model_versions,
        _tables.model_version_tags,
        _tables.model_files,
        _tables.model_aliases,
    ]
    for table in mine:
        assert table is metadata.tables[table.name]
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert set(pk) == {c.name for c in table.primary_key.columns}, table.name
    uniques = inspector.get_unique_constraints("model_versions")
    assert any(set(u["column_names"]) == {"name", "version"} for u in uniques)
    assert any(i["column_names"] == ["run_id"] for i in inspector.get_indexes("model_versions"))
