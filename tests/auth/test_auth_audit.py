"""The audit log: append-only, hash-chained, verified; tampering of any kind is found; appends
from many threads and processes form one chain on both databases."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from auth_support import START_MS, Clock

from keel.auth import AuthStore
from keel.auth._audit import GENESIS, chain_hash
from keel.errors import InvalidInput


def _fill(store: AuthStore, n: int) -> None:
    for i in range(n):
        store.audit(
            actor=f"user{i % 3}",
            action="run.create" if i % 2 else "model.promote",
            resource=f"project:p{i % 4}",
            address="127.0.0.1",
            outcome="ok",
            detail={"i": i, "nested": {"b": [1, 2.5, None], "a": "é"}},
        )


def _sql(store: AuthStore, statement: str) -> None:
    with store._engine.begin() as conn:
        conn.exec_driver_sql(statement)


def test_append_chains_records(store: AuthStore, clock: Clock) -> None:
    first = store.audit(
        actor="alice", action="run.create", resource="run:1", address=None, outcome="ok"
    )
    clock.advance(1)
    second = store.audit(
        actor=None,
        action="login",
        resource="user:x",
        address="::1",
        outcome="denied",
        detail={"reason": "bad password"},
    )
    assert (first.id, second.id) == (1, 2)
    assert first.ts_ms == START_MS and second.ts_ms == START_MS + 1000
    fields = second.to_dict()
    fields.pop("hash")
    assert second.hash == chain_hash(first.hash, fields)
    first_fields = first.to_dict()
    first_fields.pop("hash")
    assert first.hash == chain_hash(GENESIS, first_fields)
    result = store.audit_verify()
    assert (result.ok, result.checked, result.head_hash) == (True, 2, second.hash)


def test_empty_log_verifies(store: AuthStore) -> None:
    result = store.audit_verify()
    assert result.ok and result.checked == 0 and result.head_hash == GENESIS


def test_edited_record_is_found(store: AuthStore) -> None:
    _fill(store, 10)
    _sql(store, "UPDATE audit_log SET outcome = 'denied' WHERE id = 4")
    result = store.audit_verify()
    assert not result.ok and result.first_bad_id == 4 and "hash" in (result.reason or "")
    assert result.checked == 3


def test_edited_detail_is_found(store: AuthStore) -> None:
    _fill(store, 5)
    _sql(store, "UPDATE audit_log SET detail = '{\"i\":99}' WHERE id = 5")
    assert store.audit_verify().first_bad_id == 5


def test_edit_with_recomputed_hash_breaks_the_next_record(store: AuthStore) -> None:
    _fill(store, 6)
    record = store.audit_search(limit=100)[::-1][2]  # id 3
    fields = record.to_dict()
    fields.pop("hash")
    fields["actor"] = "someone-else"
    forged = chain_hash(store.audit_search(limit=100)[::-1][1].hash, fields)
    _sql(store, f"UPDATE audit_log SET actor = 'someone-else', hash = '{forged}' WHERE id = 3")
    assert store.audit_verify().first_bad_id == 4


def test_deleted_record_in_the_middle_is_found(store: AuthStore) -> None:
    _fill(store, 10)
    _sql(store, "DELETE FROM audit_log WHERE id = 6")
    result = store.audit_verify()
    assert not result.ok and result.first_bad_id == 6 and "missing" in (result.reason or "")


def test_deleted_and_renumbered_is_found(store: AuthStore) -> None:
    _fill(store, 8)
    _sql(store, "DELETE FROM audit_log WHERE id = 5")
    _sql(store, "UPDATE audit_log SET id = id - 1 WHERE id > 5")
    _sql(store, "UPDATE audit_head SET last_id = last_id - 1, count = count - 1")
    assert store.audit_verify().first_bad_id == 5


def test_truncated_tail_is_found(store: AuthStore) -> None:
    _fill(store, 10)
    _sql(store, "DELETE FROM audit_log WHERE id > 7")
    result = store.audit_verify()
    assert not result.ok and result.first_bad_id == 8 and "end" in (result.reason or "")
    assert result.checked == 7


def test_everything_deleted_is_found(store: AuthStore) -> None:
    _fill(store, 3)
    _sql(store, "DELETE FROM audit_log")
    assert store.audit_verify().first_bad_id == 1


def test_deleted_head_is_found_and_stops_audited_changes(store: AuthStore) -> None:
    from auth_support import PASSWORD

    from keel.errors import StoreError

    _fill(store, 2)
    _sql(store, "DELETE FROM audit_head")
    result = store.audit_verify()
    assert not result.ok and "head row is missing" in (result.reason or "")
    # A change and its audit record commit together: without a record, no change.
    with pytest.raises(StoreError, match="head row is missing"):
        store.create_user("alice", PASSWORD)
    assert store.list_users() == []


def test_search_filters(store: AuthStore, clock: Clock) -> None:
    for i in range(12):
        clock.advance(10)
        store.audit(
            actor=["Alice", "bob", None][i % 3],
            action=["run.create", "run.delete", "model.promote"][i % 3],
            resource=f"project:p{i % 2}",
            address=None,
            outcome="ok",
        )
    assert len(store.audit_search()) == 12
    assert [r.id for r in store.audit_search(limit=3)] == [12, 11, 10]
    assert {r.actor for r in store.audit_search(user="alice")} == {"Alice"}
    assert len(store.audit_search(user="ALICE")) == 4
    assert {r.action for r in store.audit_search(action="run.*")} == {"run.create", "run.delete"}
    assert len(store.audit_search(action="run.create")) == 4
    assert {r.resource for r in store.audit_search(resource="project:p1")} == {"project:p1"}
    assert len(store.audit_search(resource="project:*")) == 12
    window = store.audit_search(since_ms=START_MS + 30_000, until_ms=START_MS + 60_000)
    assert [r.id for r in window] == [5, 4, 3]
    both = store.audit_search(user="bob", action="run.delete", resource="project:p1")
    assert [r.id for r in both] == [8, 2]  # bob is i = 1, 4, 7, 10; p1 is odd i; id = i + 1
    with pytest.raises(InvalidInput):
        store.audit_search(limit=0)
    with pytest.raises(InvalidInput) as info:
        store.audit_search(resource="project:\x00")
    assert info.value.field == "resource"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": ""}, "action"),
        ({"action": "x" * 101}, "action"),
        ({"outcome": ""}, "outcome"),
        ({"outcome": "x" * 33}, "outcome"),
        ({"actor": 5}, "actor"),
        ({"detail": {"f": object()}}, "detail"),
        ({"detail": {"f": float("nan")}}, "detail"),
        ({"detail": {"big": "x" * 20_000}}, "detail"),
        ({"detail": ["not", "a", "mapping"]}, "detail"),
    ],
)
def test_bad_records_name_the_field_and_append_nothing(
    store: AuthStore, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {
        "actor": "a",
        "action": "x",
        "resource": "r",
        "address": None,
        "outcome": "ok",
    }
    with pytest.raises(InvalidInput) as info:
        store.audit(**(args | kwargs))  # type: ignore[arg-type]
    assert info.value.field == field
    assert store.audit_verify().checked == 0


def test_client_supplied_text_is_kept_printable_and_bounded(db_url: str, store: AuthStore) -> None:
    record = store.audit(
        actor="bob",
        action="http.request",
        resource="/api/v1/runs/%00\x00\x1b[2J" + "x" * 2000,
        address="\x00" * 150,
        outcome="ok",
    )
    assert record.resource.startswith("/api/v1/runs/%00??[2J") and record.resource.isprintable()
    assert len(record.resource) == 1000 and record.resource.endswith("…")
    assert record.address == "?" * 99 + "…"
    assert store.audit_verify().ok


APPENDER = r"""
import sys
from keel.auth import open_auth_store

url, index, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_auth_store(url)
for i in range(count):
    store.audit(actor=f"proc{index}", action="test.append", resource=f"r:{i}",
                address=None, outcome="ok", detail={"i": i})
print("ok")
"""


def test_concurrent_appends_from_threads_and_processes(db_url: str, store: AuthStore) -> None:
    store.audit(actor="setup", action="x", resource="r", address=None, outcome="ok")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, db_url, str(i), "25"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errors: list[BaseException] = []

    def thread_appender(index: int) -> None:
        try:
            for i in range(25):
                store.audit(
                    actor=f"thread{index}",
                    action="test.append",
                    resource=f"r:{i}",
                    address=None,
                    outcome="ok",
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread_appender, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert (proc.returncode, out.strip()) == (0, "ok"), err
    assert not errors, errors
    result = store.audit_verify()
    assert result.ok, result
    assert result.checked == 1 + 3 * 25 + 4 * 25
    records = store.audit_search(action="test.append", limit=1000)
    assert sorted(r.id for r in records) == list(range(2, 177))
    assert {r.actor for r in records} == {
        *(f"proc{i}" for i in range(3)),
        *(f"thread{i}" for i in range(4)),
    }


def test_security_events_of_the_store_are_audited_in_order(store: AuthStore) -> None:
    from auth_support import PASSWORD

    store.create_user("alice", PASSWORD, actor="root", address="10.0.0.2")
    token, info = store.create_token("alice", name="ci", role="viewer", actor="root")
    store.revoke_token(info.id, actor="root")
    store.grant("churn", "alice", "editor", actor="root")
    store.revoke("churn", "alice", actor="root")
    store.change_password("alice", "a brand new passphrase", actor="alice")
    store.disable_user("alice", actor="root")
    store.enable_user("alice", actor="root")
    store.login("alice", "a brand new passphrase", address="10.0.0.3")
    actions = [r.action for r in store.audit_search()][::-1]
    assert actions == [
        "user.create",
        "token.create",
        "token.revoke",
        "grant.set",
        "grant.revoke",
        "user.password",
        "user.disable",
        "user.enable",
        "login",
    ]
    assert store.audit_verify().ok
    assert token not in str([r.to_dict() for r in store.audit_search()])
