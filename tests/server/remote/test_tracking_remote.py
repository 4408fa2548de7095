"""The tracking conformance suite, unchanged, against a live server on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from keel.testing.tracking_conformance import TrackingStoreConformance
from keel.tracking._http import HttpTrackingStore

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote


@pytest.fixture
def http_store(remote: Remote, clean_tracking: None) -> Iterator[HttpTrackingStore]:
    store = HttpTrackingStore(remote.url, token=remote.token)
    yield store
    store.close()


class TestHttpTrackingStore(TrackingStoreConformance):
    @pytest.fixture
    def store(self, http_store: HttpTrackingStore) -> HttpTrackingStore:
        return http_store
