"""The audit log holds state changes, logins, failed logins and admin-route token use only:
read-only POSTs (a search, a fail-stale call that failed nothing, a dry run) leave no record."""

from __future__ import annotations

from typing import Any

import httpx
from server_support import ADMIN_PASSWORD, PROJECT


def _count(state: Any) -> int:
    return len(state.auth.audit_search(limit=10_000))


def _actions(state: Any) -> list[str]:
    return [r.action for r in state.auth.audit_search(limit=10_000)]


def test_read_only_posts_leave_no_record_and_changes_do(
    client: httpx.Client, callers: dict[str, Any], state: Any, admin_token: str
) -> None:
    editor = callers["editor"].headers
    made = client.post(f"/api/v1/projects/{PROJECT}/runs", json={}, headers=editor)
    assert made.status_code == 201, made.text
    assert "POST /api/v1/projects/{project}/runs" in _actions(state)

    before = _count(state)
    for _ in range(3):
        found = client.post("/api/v1/runs/search", json={"filter": ""}, headers=editor)
        assert found.status_code == 200 and len(found.json()["items"]) == 1
    stale = client.post("/api/v1/runs/fail-stale", json={}, headers=editor)
    assert stale.status_code == 200 and stale.json() == {"run_ids": []}
    assert _count(state) == before

    # A fail-stale call that fails a run changed something: on record.
    admin = {"Authorization": f"Bearer {admin_token}"}  # a global admin chooses the clock
    failed = client.post(
        "/api/v1/runs/fail-stale", json={"now_ms": 2**52, "timeout_ms": 1}, headers=admin
    )
    assert failed.json()["run_ids"] == [made.json()["id"]]
    assert _actions(state).count("POST /api/v1/runs/fail-stale") == 1


def test_a_refused_search_is_not_a_change_but_a_refused_write_is_recorded(
    client: httpx.Client, callers: dict[str, Any], state: Any
) -> None:
    viewer = callers["viewer"].headers
    before = _count(state)
    hidden = client.post("/api/v1/runs/search", json={"projects": ["elsewhere"]}, headers=viewer)
    assert hidden.status_code == 403
    assert _count(state) == before
    refused = client.post(f"/api/v1/projects/{PROJECT}/runs", json={}, headers=viewer)
    assert refused.status_code == 403
    records = state.auth.audit_search(action="POST /api/v1/projects/{project}/runs")
    assert records[0].outcome == "403"


def test_a_dry_run_purge_by_session_is_not_recorded_but_a_real_one_is(
    client: httpx.Client, state: Any
) -> None:
    login = client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
    assert "POST /api/v1/auth/login" in _actions(state)  # logins stay on record
    before = _count(state)
    dry = client.post("/api/v1/artifacts/purge-incomplete", json={"older_than_s": 0}, headers=csrf)
    assert dry.status_code == 200
    assert _count(state) == before
    real = client.post(
        "/api/v1/artifacts/purge-incomplete",
        json={"older_than_s": 0, "dry_run": False},
        headers=csrf,
    )
    assert real.status_code == 200
    assert _actions(state).count("POST /api/v1/artifacts/purge-incomplete") == 1
