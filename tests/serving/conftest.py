"""Serving fixtures: the test models are logged once per module into a private Keel home and
loaded; each test builds hosts and a live server from the loaded models."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from serving_support import log_models, private_home


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``(home, versions, loaded models by short name)``."""
    import keel.models

    home = tmp_path_factory.mktemp("serving") / ".keel"
    home.mkdir()
    with private_home(home):
        versions = log_models()
        loaded = {k: keel.models.load(v.uri) for k, v in versions.items()}
        yield home, versions, loaded
    for model in loaded.values():
        model.close()


@pytest.fixture(scope="module")
def loaded(served_home: Any) -> dict[str, Any]:
    return dict(served_home[2])
