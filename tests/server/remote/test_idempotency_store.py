"""The idempotency-key table on both dialects: claim, replay, conflict, release, expiry."""

from __future__ import annotations

import pytest

from keel.db import connect
from keel.errors import InvalidInput, StoreUnavailable
from keel.server import _idempotency as idem
from keel.server._idempotency import IdempotencyStore, Stored, request_hash


def test_claim_replay_conflict_release_expire(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = IdempotencyStore(connect(db_url))
    h1 = request_hash("POST", "/api/v1/runs/x/batch", b"{}")
    h2 = request_hash("POST", "/api/v1/runs/x/batch", b'{"a": 1}')
    assert store.claim("user:1", "key-00000001", h1) is None  # first: go ahead
    with pytest.raises(StoreUnavailable, match="still being processed"):
        store.claim("user:1", "key-00000001", h1)  # a retry while the first still runs
    with pytest.raises(InvalidInput) as err:
        store.claim("user:1", "key-00000001", h2)
    assert err.value.field == "Idempotency-Key"
    store.finish("user:1", "key-00000001", 204, b"")
    assert store.claim("user:1", "key-00000001", h1) == Stored(204, b"")
    assert store.claim("user:2", "key-00000001", h1) is None  # keys are per principal
    store.release("user:2", "key-00000001")
    assert store.claim("user:2", "key-00000001", h1) is None  # released: runs again
    monkeypatch.setattr(idem, "now_ms", lambda: 2**62)  # far in the future: all expired
    assert store.claim("user:1", "key-00000001", h2) is None  # an expired key is reusable
    assert store.expire() >= 1


@pytest.mark.parametrize("bad", ["short", "x" * 129, "with space", "semi;colon"])
def test_bad_keys(bad: str) -> None:
    with pytest.raises(InvalidInput):
        idem.check_key(bad)
