"""The data conformance suite on SQLite and PostgreSQL, with local and S3 artifact backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.artifacts import ContentStore, open_content_store
from keel.data._datasets import Datasets
from keel.data._sql import SqlDataStore
from keel.data._state import StateCache
from keel.testing.data_conformance import DataConformance


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SqlDataStore]:
    store = SqlDataStore(db_url)
    yield store
    store.close()


@pytest.fixture(params=["local", "s3"])
def content(request: pytest.FixtureRequest, tmp_path: Path) -> ContentStore:
    if request.param == "s3":
        return open_content_store(str(request.getfixturevalue("s3_env")))
    return open_content_store(str(tmp_path / "artifacts"))


class TestSqlData(DataConformance):
    @pytest.fixture
    def store(self, sql_store: SqlDataStore) -> SqlDataStore:
        return sql_store

    @pytest.fixture
    def datasets(self, sql_store: SqlDataStore, content: ContentStore, tmp_path: Path) -> Datasets:
        return Datasets(sql_store, content, state=StateCache(tmp_path / "state.db"))
