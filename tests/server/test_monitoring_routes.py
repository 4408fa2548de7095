"""The monitoring and alert routes against a live server: a monitor run on the server over a
real prediction log in the server's own artifact store (labels in its database, the reference
from its own registry and data store), history, report, Prometheus text, schedules, and the
alert life cycle with a real webhook delivery. The role matrix covers who may call each route
(``monitoring_route_examples.py``); these tests cover what the routes do and refuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from server_support import Caller

from keel._time import now_ms

P = "/api/v1/monitoring"
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Served:
    deployment: str
    dataset: str  # the training dataset version, NAME@vN
    ids: list[str]
    truth: list[int]


def _training(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, rows)
    return pd.DataFrame({"x": x, "z": rng.uniform(0.0, 10.0, rows), "label": (x > 0).astype(int)})


def serve(state: Any, deployment: str, *, rows: int = 400, shift: float = 0.0) -> Served:
    """A model trained on a dataset of the server's data store, registered with that lineage,
    and ``rows`` predictions of it in the server's prediction log over the last two hours,
    every one labelled (the truth flips a quarter of them)."""
    from keel.data._datasets import Datasets
    from keel.models import DatasetInput, ModelFile, NewModelVersion
    from keel.monitoring._feedback import SqlFeedbackStore
    from keel.serving import PredictionLogWriter, PredictionRow

    ds = Datasets(state.data, state.content).add(_training(), name=f"{deployment}-train")
    registry = state.models.registry
    version = registry.create_version(
        NewModelVersion(name=deployment, flavor="sklearn", datasets=(DatasetInput(ds.ref),))
    )
    registry.complete_version(
        deployment, version.version, files=[ModelFile("model.skops", "ab" * 32, 10)]
    )
    rng = np.random.default_rng(1)
    start = now_ms() - 2 * HOUR_MS
    ids, truth = [], []
    with PredictionLogWriter(state.content.backend, deployment=deployment) as writer:
        for i in range(rows):
            x = float(rng.normal(shift, 1.0))
            prediction = int(x > 0)
            ids.append(f"r{i}")
            truth.append(prediction if rng.random() >= 0.25 else 1 - prediction)
            writer.record(
                PredictionRow(
                    f"r{i}",
                    version.version,
                    {"x": x, "z": float(rng.uniform(0.0, 10.0)) + 3 * shift},
                    {"prediction": prediction},
                    5.0,
                    model=deployment,
                    timestamp_ms=start + i * (HOUR_MS // rows),
                )
            )
    # Not closed: it shares the engine the server's state disposes at the end of the test.
    SqlFeedbackStore(state.tracking_uri).add_many(
        deployment, [(i, t, None) for i, t in zip(ids, truth, strict=True)]
    )
    return Served(deployment, ds.ref, ids, truth)


def _alert_support() -> Any:
    """tests/monitoring/alert_support.py (its local webhook receiver), loaded by path."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "alert_support_for_server_routes"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "monitoring" / "alert_support.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _field(response: Any) -> str | None:
    return response.json()["error"]["field"]


def test_a_run_on_the_server_reads_its_own_log_registry_and_data(
    client: Any, state: Any, callers: dict[str, Caller]
) -> None:
    served = serve(state, "churn", shift=1.5)
    maintainer, viewer = callers["maintainer"].headers, callers["viewer"].headers

    r = client.post(f"{P}/deployments/churn/run", json={"window": "3h"}, headers=maintainer)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["rows"] == 400
    assert doc["reference"]["source"] == served.dataset  # the champion's training data
    assert doc["drift"]["dataset_drift"] is True  # x and z moved by 1.5 sd
    assert doc["summary"]["performance"]["metric"] == "accuracy"
    assert doc["summary"]["label_coverage"] == 1.0
    assert 0.6 < doc["summary"]["performance"]["value"] < 0.9  # a quarter of truths flipped

    history = client.get(f"{P}/deployments/churn/results", headers=viewer)
    assert [h["id"] for h in history.json()["results"]] == [doc["id"]]
    assert "result" not in history.json()["results"][0]  # light unless full=true
    one = client.get(f"{P}/results/{doc['id']}", headers=viewer).json()
    assert one["result"]["drift"]["dataset_drift"] is True
    latest = client.get(f"{P}/latest", headers=viewer).json()["results"]
    assert [(x["deployment"], x["id"]) for x in latest] == [("churn", doc["id"])]

    # A dataset version as the reference, resolved in the server's data store.
    r = client.post(
        f"{P}/deployments/churn/run",
        json={"window": "3h", "reference": f"dataset:{served.dataset}"},
        headers=maintainer,
    )
    assert r.status_code == 201, r.text
    assert r.json()["reference"]["source"] == served.dataset
    r = client.post(
        f"{P}/deployments/churn/run", json={"reference": "nosuch@v1"}, headers=maintainer
    )
    assert r.status_code == 404, r.text


def test_report_is_a_download_with_its_own_policy(
    client: Any, state: Any, callers: dict[str, Caller]
) -> None:
    from keel.server.routes.monitoring import REPORT_CSP

    serve(state, "churn")
    viewer = callers["viewer"].headers
    assert client.get(f"{P}/deployments/churn/report", headers=viewer).status_code == 404
    run = client.post(
        f"{P}/deployments/churn/run", json={"window": "3h"}, headers=callers["maintainer"].headers
    ).json()

    r = client.get(f"{P}/deployments/churn/report", headers=viewer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-disposition"] == 'attachment; filename="churn-monitor-report.html"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == REPORT_CSP
    assert "<script" not in r.text and "churn" in r.text

    j = client.get(
        f"{P}/deployments/churn/report",
        params={"format": "json", "result_id": run["id"]},
        headers=viewer,
    )
    assert j.status_code == 200
    assert j.json()["result"]["id"] == run["id"]
    assert [h["id"] for h in j.json()["history"]] == [run["id"]]
    other = client.get(
        f"{P}/deployments/other/report", params={"result_id": run["id"]}, headers=viewer
    )
    assert other.status_code == 404


def test_metrics_are_prometheus_text_for_a_viewer_token(
    client: Any, state: Any, callers: dict[str, Caller]
) -> None:
    serve(state, "churn", shift=1.5)
    client.post(
        f"{P}/deployments/churn/run", json={"window": "3h"}, headers=callers["maintainer"].headers
    )
    assert client.get(f"{P}/metrics").status_code == 401
    assert client.get(f"{P}/metrics", headers=callers["nogrant"].headers).status_code == 403
    r = client.get(f"{P}/metrics", headers=callers["viewer"].headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'keel_monitor_value{deployment="churn",quantity="drift.share"} 1.0' in r.text
    assert 'keel_monitor_samples{deployment="churn",quantity="drift.share"} 400.0' in r.text


@pytest.mark.parametrize(
    "reference",
    [
        "profile:/etc/passwd",
        "/etc/keel/reference.json",
        "reference.json",
        "profile:reference",
        "../../etc/passwd",
        "dataset:../x@v1",
        "C:\\keel\\ref",
        7,
    ],
)
def test_a_reference_never_names_a_server_path(
    client: Any, callers: dict[str, Caller], reference: Any
) -> None:
    maintainer = callers["maintainer"].headers
    r = client.post(f"{P}/deployments/churn/run", json={"reference": reference}, headers=maintainer)
    assert r.status_code == 422, r.text
    assert _field(r) == "reference"
    r = client.put(
        f"{P}/schedules/churn",
        json={"every": "1h", "options": {"reference": reference}},
        headers=maintainer,
    )
    assert r.status_code == 422, r.text
    assert _field(r) == "reference"


def test_a_readable_profile_file_on_the_server_is_still_refused(
    client: Any, state: Any, callers: dict[str, Caller], tmp_path: Any
) -> None:
    """A valid profile the server could read: the refusal is the rule, not a failed read."""
    from keel.monitoring._reference import ReferenceProfile

    serve(state, "churn")
    profile = tmp_path / "reference.json"
    profile.write_text(ReferenceProfile.from_frame(_training(), source="secret").to_json())
    for reference in (f"profile:{profile}", str(profile)):
        r = client.post(
            f"{P}/deployments/churn/run",
            json={"window": "3h", "reference": reference},
            headers=callers["maintainer"].headers,
        )
        assert (r.status_code, _field(r)) == (422, "reference"), r.text
    # Nothing was stored for the refused runs.
    r = client.get(f"{P}/deployments/churn/results", headers=callers["viewer"].headers)
    assert r.json()["results"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/deployments/churn/run", {"window": 5}, "window"),
        ("POST", "/deployments/churn/run", {"window": "soon"}, "window"),
        ("POST", "/deployments/churn/run", {"path": "/etc"}, "path"),
        ("POST", "/deployments/churn/run", {"window": "1h", "last_rows": 5}, "window"),
        ("POST", "/deployments/churn/run", {"multivariate": "yes"}, "multivariate"),
        ("POST", "/deployments/churn/run", {"thresholds": {"psi": "high"}}, "thresholds"),
        ("POST", "/deployments/bad%40name/run", {}, "deployment"),
        ("PUT", "/schedules/churn", {"every": "10s"}, "every"),
        ("PUT", "/schedules/churn", {"every": True}, "every"),
        ("PUT", "/schedules/churn", {"every": "1h", "options": {"window": "1h..2h"}}, "window"),
        ("PUT", "/schedules/churn", {"every": "1h", "options": {"nope": 1}}, "options"),
        ("PUT", "/schedules/churn", {"every": "1h", "when": 1}, "when"),
        ("POST", "/alert-rules", {"name": "r", "quantity": "drift.share"}, "operator"),
        (
            "POST",
            "/alert-rules",
            {"name": "r", "quantity": "q", "operator": "=", "threshold": 1},
            "operator",
        ),
        ("PATCH", "/alert-rules/r", {"enabled": "no"}, "enabled"),
        ("POST", "/alert-channels", {"name": "c", "kind": "pager", "config": {}}, "kind"),
        (
            "POST",
            "/alert-channels",
            {
                "name": "c",
                "kind": "webhook",
                "config": {"url": "https://h.invalid/x", "secret_env": "not a name"},
            },
            "config.secret_env",
        ),
        ("POST", "/alerts/1/ack", {"by": "mallory"}, "by"),
        ("POST", "/alerts/1/ack", {"note": 5}, "note"),
        ("GET", "/alerts?state=bogus", None, "state"),
        ("GET", "/alerts/0", None, "alert_id"),
        ("GET", "/alert-events?since_id=-1", None, "since_id"),
        ("GET", "/deployments/churn/results?limit=0", None, "limit"),
        ("GET", "/deployments/churn/report?format=pdf", None, "format"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: Any,
    admin_token: str,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    admin = {"Authorization": f"Bearer {admin_token}"}  # the global admin
    r = client.request(method, f"{P}{path}", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert _field(r) == field


def test_without_champion_predictions_a_reference_is_needed(
    client: Any, callers: dict[str, Caller]
) -> None:
    maintainer = callers["maintainer"].headers
    r = client.post(f"{P}/deployments/quiet/run", json={"window": "1h"}, headers=maintainer)
    assert r.status_code == 422
    assert _field(r) == "reference"
    assert "pass a reference" in r.json()["error"]["message"]
    r = client.post(
        f"{P}/deployments/quiet/run",
        json={"window": "1h", "reference": "log:1h"},
        headers=maintainer,
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 0
    assert any("no drift" in n for n in r.json()["notes"])


def test_schedules_are_created_replaced_listed_and_deleted(
    client: Any, callers: dict[str, Caller]
) -> None:
    maintainer, viewer = callers["maintainer"].headers, callers["viewer"].headers
    body = {"every": "1h", "first_due_ms": 0, "options": {"window": "1h", "reference": "log:1d"}}
    assert client.put(f"{P}/schedules/churn", json=body, headers=viewer).status_code == 403
    r = client.put(f"{P}/schedules/churn", json=body, headers=maintainer)
    assert r.status_code == 200, r.text
    assert (r.json()["every_ms"], r.json()["options"]) == (HOUR_MS, body["options"])
    r = client.put(f"{P}/schedules/churn", json={"every": "15m"}, headers=maintainer)
    assert (r.json()["every_ms"], r.json()["options"]) == (15 * 60_000, {})
    listed = client.get(f"{P}/schedules", headers=viewer).json()["schedules"]
    assert [(s["deployment"], s["every_ms"]) for s in listed] == [("churn", 15 * 60_000)]
    assert client.delete(f"{P}/schedules/churn", headers=maintainer).status_code == 204
    assert client.delete(f"{P}/schedules/churn", headers=maintainer).status_code == 404
    assert client.get(f"{P}/schedules", headers=viewer).json()["schedules"] == []


def test_alerts_fire_deliver_ack_and_feed_subscribers(
    client: Any,
    state: Any,
    callers: dict[str, Caller],
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = _alert_support().receiver
    monkeypatch.setenv("KEEL_ROUTE_HOOK_SECRET", "s3cret")  # read by the server when it sends
    admin, maintainer = {"Authorization": f"Bearer {admin_token}"}, callers["maintainer"].headers
    viewer, editor = callers["viewer"].headers, callers["editor"].headers
    serve(state, "churn", shift=1.5)
    with receiver() as hook:
        channel = {
            "name": "ops",
            "kind": "webhook",
            "config": {
                "url": hook.url,
                "secret_env": "KEEL_ROUTE_HOOK_SECRET",
                "allow_http": True,
                "allow_private": True,
            },
        }
        assert (
            client.post(f"{P}/alert-channels", json=channel, headers=maintainer).status_code == 403
        )
        r = client.post(f"{P}/alert-channels", json=channel, headers=admin)
        assert r.status_code == 201, r.text
        shown = client.get(f"{P}/alert-channels", headers=viewer).json()["channels"]
        assert shown == [{"name": "ops", "kind": "webhook", "created_ms": shown[0]["created_ms"],
                          "updated_ms": shown[0]["updated_ms"]}]  # fmt: skip
        full = client.get(f"{P}/alert-channels", headers=admin).json()["channels"]
        assert full[0]["config"]["secret_env"] == "KEEL_ROUTE_HOOK_SECRET"

        rule = {
            "name": "churn-drift",
            "deployment": "churn",
            "quantity": "drift.share",
            "operator": ">",
            "threshold": 0.3,
            "window": "any",
            "channels": ["ops"],
        }
        assert client.post(f"{P}/alert-rules", json=rule, headers=editor).status_code == 403
        r = client.post(f"{P}/alert-rules", json=rule, headers=maintainer)
        assert r.status_code == 201, r.text
        missing = dict(rule, name="other", channels=["nowhere"])
        r = client.post(f"{P}/alert-rules", json=missing, headers=maintainer)
        assert (r.status_code, _field(r)) == (422, "channels[0]")
        rules = client.get(f"{P}/alert-rules", headers=viewer).json()["rules"]
        assert [x["name"] for x in rules] == ["churn-drift"]

        run = client.post(f"{P}/deployments/churn/run", json={"window": "3h"}, headers=maintainer)
        assert run.status_code == 201, run.text
        assert [a["kind"] for a in run.json()["alerts"]] == ["fired"]
        assert len(hook.requests) == 1  # delivered, signed, by the server
        assert hook.requests[0].headers["X-Keel-Signature"].startswith("sha256=")

        opened = client.get(f"{P}/alerts", params={"state": "open"}, headers=viewer).json()
        assert [a["rule"] for a in opened["alerts"]] == ["churn-drift"]
        alert_id = opened["alerts"][0]["id"]
        detail = client.get(f"{P}/alerts/{alert_id}", headers=viewer).json()
        assert [e["kind"] for e in detail["events"]] == ["fired"]
        assert [d["status"] for d in detail["deliveries"]] == ["delivered"]

        feed = client.get(f"{P}/alert-events", headers=viewer).json()
        assert [e["kind"] for e in feed["events"]] == ["fired"]
        last = feed["last_id"]

        assert client.post(f"{P}/alerts/{alert_id}/ack", json={}, headers=editor).status_code == 403
        r = client.post(f"{P}/alerts/{alert_id}/ack", json={"note": "on it"}, headers=maintainer)
        assert r.status_code == 200, r.text
        assert (r.json()["kind"], r.json()["actor"]) == ("acked", callers["maintainer"].name)
        again = client.post(f"{P}/alerts/{alert_id}/ack", json={}, headers=maintainer)
        assert again.status_code == 409
        alert = client.get(f"{P}/alerts/{alert_id}", headers=viewer).json()["alert"]
        assert (alert["state"], alert["acked_by"]) == ("acked", callers["maintainer"].name)

        feed = client.get(f"{P}/alert-events", params={"since_id": last}, headers=viewer).json()
        assert [e["kind"] for e in feed["events"]] == ["acked"]
        after = client.get(
            f"{P}/alert-events", params={"since_id": feed["last_id"]}, headers=viewer
        ).json()
        assert after == {"events": [], "last_id": feed["last_id"]}

        r = client.post(f"{P}/alert-channels/ops/test", headers=admin)
        assert (r.status_code, r.json()["ok"]) == (200, True)
        assert len(hook.requests) == 2

    r = client.patch(f"{P}/alert-rules/churn-drift", json={"enabled": False}, headers=maintainer)
    assert r.json()["enabled"] is False
    assert client.delete(f"{P}/alert-channels/ops", headers=admin).status_code == 409  # in use
    r = client.delete(f"{P}/alert-rules/churn-drift", headers=maintainer)
    assert r.json() == {"name": "churn-drift", "resolved": 1}
    assert client.delete(f"{P}/alert-channels/ops", headers=admin).status_code == 204


def test_changes_are_audited_under_the_signed_in_user(
    client: Any, state: Any, callers: dict[str, Caller]
) -> None:
    maintainer = callers["maintainer"]
    r = client.post(
        f"{P}/deployments/quiet/run",
        json={"window": "1h", "reference": "log:1h"},
        headers=maintainer.headers,
    )
    assert r.status_code == 201
    client.get(f"{P}/deployments/quiet/results", headers=maintainer.headers)
    records = [rec for rec in state.auth.audit_search(limit=100) if "/monitoring/" in rec.resource]
    assert [(rec.actor, rec.action) for rec in records] == [
        (maintainer.name, f"POST {P}/deployments/{{deployment}}/run")
    ]
