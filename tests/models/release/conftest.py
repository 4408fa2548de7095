"""Fixtures for the release tests; the world they build is in ``release_world``."""

from __future__ import annotations

import pytest
from release_world import World, make_frame


@pytest.fixture
def world() -> World:
    import keel.data

    frame = make_frame()
    ds = keel.data.add(frame, name="churn", key="customer")
    return World(frame=frame, ref=ds.ref)
