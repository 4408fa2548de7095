"""`import keel` and `keel --help` stay fast: heavy libraries load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "pydantic",
    "fsspec",
    "sklearn",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {m.split(".")[0] for m in json.loads(out.splitlines()[-1])}


def test_import_keel_loads_no_heavy_module() -> None:
    loaded = _modules_after("import keel")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_fluent_names_resolve_without_heavy_modules() -> None:
    loaded = _modules_after("import keel\nkeel.start_run; keel.log_metric; keel.Client")
    assert not loaded & {"pandas", "numpy", "pyarrow", "sqlalchemy", "fsspec", "sklearn"}


def test_data_api_names_resolve_without_heavy_modules() -> None:
    loaded = _modules_after("import keel\nkeel.data.add; keel.data.get; keel.data.DatasetVersion")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_loads_no_heavy_module() -> None:
    loaded = _modules_after("import keel.cli")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_keel_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keel", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("init", "db", "runs", "artifacts", "gc"):
        assert group in result.stdout
