"""Shared fixtures: a registry with READY (and one FAILED) versions of ``churn``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.models import ModelFile, NewModelVersion, open_registry
from keel.models._base import ModelRegistry


def make_versions(registry: ModelRegistry, name: str = "churn") -> None:
    """v1..v3 READY, v4 FAILED, v5 PENDING."""
    for n in range(1, 6):
        version = registry.create_version(NewModelVersion(name=name, flavor="sklearn"))
        if n <= 3:
            files = [ModelFile("model.skops", f"{n:064x}", 10)]
            registry.complete_version(name, version.version, files=files)
        elif n == 4:
            registry.complete_version(name, version.version, error="upload failed")


@pytest.fixture
def registry(db_url: str) -> Iterator[ModelRegistry]:
    reg = open_registry(db_url)
    make_versions(reg)
    yield reg
    reg.close()


@pytest.fixture
def default_registry(keel_home: object) -> None:
    """The same versions in the configured (default SQLite) registry, for CLI tests."""
    reg = open_registry()
    make_versions(reg)
    reg.close()
