"""The data conformance suite, unchanged, against a live server on PostgreSQL: version metadata
through the data routes, bytes through the artifact routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from keel.artifacts import ContentStore
from keel.artifacts._http import HttpBackend
from keel.data._datasets import Datasets
from keel.data._http import HttpDataStore
from keel.data._state import StateCache
from keel.data._store import open_data_store
from keel.testing.data_conformance import DataConformance

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote


@pytest.fixture
def clean_data(remote: Remote) -> None:
    import sqlalchemy as sa

    from keel.data import _tables
    from keel.db import engine_for

    names = [t.name for t in vars(_tables).values() if isinstance(t, sa.Table)]
    with engine_for(remote.db_url).begin() as conn:
        conn.execute(sa.text(f"TRUNCATE TABLE {', '.join(names)} CASCADE"))


@pytest.fixture
def http_data(remote: Remote, clean_data: None) -> Iterator[HttpDataStore]:
    store = HttpDataStore(remote.url, token=remote.token)
    yield store
    store.close()


class TestHttpData(DataConformance):
    @pytest.fixture
    def store(self, http_data: HttpDataStore) -> HttpDataStore:
        return http_data

    @pytest.fixture
    def datasets(
        self, http_data: HttpDataStore, remote: Remote, tmp_path: Path
    ) -> Iterator[Datasets]:
        backend = HttpBackend(remote.url, token=remote.token)
        yield Datasets(http_data, ContentStore(backend), state=StateCache(tmp_path / "state.db"))
        backend.close()


def test_open_data_store_chooses_the_http_store(remote: Remote) -> None:
    store = open_data_store(remote.url)
    assert isinstance(store, HttpDataStore)
    store.close()
