"""The deployment tests share one Keel home with model ``dm`` logged once; each
test points the configuration back at it (the autouse ``keel_home`` gives every test its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import log_dm
from serving_support import private_home


@pytest.fixture(scope="package")
def dm_home_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("deploy") / ".keel"
    home.mkdir()
    with private_home(home):
        log_dm()
        yield home


@pytest.fixture
def dm_home(dm_home_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_HOME", str(dm_home_dir))
    reset_settings()
    yield dm_home_dir
    reset_settings()
