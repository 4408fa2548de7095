"""`import keel` and `keel --help` stay fast: heavy libraries load only when used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from keel.cli import COMMANDS, app

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


def _all_modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    return {m.split(".")[0] for m in _all_modules_after(code, env)}


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


def test_keel_version_runs() -> None:
    from keel import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"keel {__version__}"


def test_settings_load_without_pydantic() -> None:
    loaded = _modules_after("import keel.config\nkeel.config.get_settings()")
    assert "pydantic" not in loaded
    assert "pydantic_settings" not in loaded


def test_every_registered_command_loads_and_has_help() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output, name


def test_data_add_imports_only_its_own_group(tmp_path: Path) -> None:
    """`keel data add --json` on an initialised home: no other command group, no Rich, no
    pydantic, no Alembic (the schema is current), none of the table libraries (a folder is
    added)."""
    home = tmp_path / "home"
    env = {
        **os.environ,
        "KEEL_HOME": str(home),
        "KEEL_TRACKING_URI": f"sqlite:///{home / 'keel.db'}",
    }
    upgrade = [sys.executable, "-m", "keel", "db", "upgrade", "--json"]
    subprocess.run(upgrade, env=env, check=True, capture_output=True)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    argv = ["keel", "data", "add", str(folder), "--name", "f", "--json"]
    code = (
        f"import sys\nsys.argv = {argv!r}\nfrom keel.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"
    )
    modules = _all_modules_after(code, env)
    heavy = {m.split(".")[0] for m in modules} & {*HEAVY, "rich", "pydantic_settings"}
    assert heavy == {"sqlalchemy"}  # the metadata store (Typer < 0.29 parses without pydantic)
    groups = {m for m in modules if m.startswith("keel.cli.")}
    assert groups == {"keel.cli._data", "keel.cli._contract", "keel.cli._output"}
