"""The registry conformance suite on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.models._sql import SqlModelRegistry
from keel.testing.models_conformance import RegistryConformance


class TestSqlRegistry(RegistryConformance):
    @pytest.fixture
    def registry(self, db_url: str) -> Iterator[SqlModelRegistry]:
        store = SqlModelRegistry(db_url)
        yield store
        store.close()
