"""A metric batch and its idempotency key commit in one transaction, or neither does.

The server's batch route claims the key with ``claim_in`` inside ``log_batch_guarded``; these
tests run the same composition against the SQL store directly, on both dialects.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from keel._time import now_ms
from keel.db import connect
from keel.errors import Conflict, InvalidInput
from keel.server._idempotency import IdempotencyStore, Stored, claim_in, idempotency_keys
from keel.tracking._records import Metric, RunStatus
from keel.tracking._sql import SqlTrackingStore

OK = Stored(204, b"")


def _points(n: int, start: int = 0) -> list[Metric]:
    return [Metric("loss", float(i), i, 1_000 + i) for i in range(start, start + n)]


def _claim(key: str, req_hash: str):  # type: ignore[no-untyped-def]
    return lambda conn: claim_in(conn, "user:1", key, req_hash, now=now_ms(), answer=OK)


def _recorded(url: str) -> list[tuple[str, int]]:
    with connect(url).connect() as conn:
        rows = conn.execute(select(idempotency_keys.c.key, idempotency_keys.c.status)).all()
    return sorted((row.key, row.status) for row in rows)


def test_a_batch_and_its_key_commit_together_and_a_repeat_writes_nothing(db_url: str) -> None:
    store = SqlTrackingStore(db_url)
    run = store.create_run(project="p")
    first = store.log_batch_guarded(run.id, metrics=_points(5), guard=_claim("key-0001", "h1"))
    assert first is None  # stored
    assert _recorded(db_url) == [("key-0001", 204)]  # with its answer, never "in progress"
    again = store.log_batch_guarded(run.id, metrics=_points(5), guard=_claim("key-0001", "h1"))
    assert again == OK  # the recorded answer; nothing written
    assert len(store.metric_history(run.id, "loss")) == 5
    with pytest.raises(InvalidInput) as err:  # the same key for another request
        store.log_batch_guarded(run.id, metrics=_points(5, 5), guard=_claim("key-0001", "h2"))
    assert err.value.field == "Idempotency-Key"
    assert len(store.metric_history(run.id, "loss")) == 5
    # The general path sees the same record: a replay, not a second batch.
    assert IdempotencyStore(connect(db_url)).claim("user:1", "key-0001", "h1") == OK
    store.close()


def test_a_refused_batch_leaves_no_key_behind(db_url: str) -> None:
    store = SqlTrackingStore(db_url)
    run = store.create_run(project="p")
    store.update_run(run.id, status=RunStatus.FINISHED)
    with pytest.raises(Conflict):
        store.log_batch_guarded(run.id, metrics=_points(3), guard=_claim("key-0002", "h1"))
    assert _recorded(db_url) == []  # rolled back with the batch: a retry really runs
    assert store.metric_history(run.id, "loss") == []
    store.close()
