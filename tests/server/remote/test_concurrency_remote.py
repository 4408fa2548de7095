"""Fifty clients logging to one run at once, over HTTP, into PostgreSQL: every point arrives
exactly once. The server runs in its own process (uvicorn), as in production."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from keel.tracking import Client
from keel.tracking._http import HttpTrackingStore
from keel.tracking._records import RunStatus

if TYPE_CHECKING:
    from tests.server.remote.conftest import Remote

CLIENTS = 50
POINTS = 2_000


def test_fifty_clients_log_to_one_run_exactly_once(
    remote: Remote, server_process: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEEL_TOKEN", remote.token)
    owner = Client(tracking_uri=server_process)
    run = owner.create_run(project="concurrency", name="fifty")
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def one_client(i: int) -> None:
        client = Client(tracking_uri=server_process)
        try:
            start.wait()
            for step in range(POINTS):
                client.log_metric(run.id, "loss", float(i * POINTS + step), step=step)
            client.log_param(run.id, f"client_{i}", str(i))
            client.flush(60)
        except BaseException as exc:  # reported below, with the client's number
            exc.add_note(f"client {i}")
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    owner.end_run(run.id)
    owner.close()
    store = HttpTrackingStore(server_process, token=remote.token)
    try:
        history = store.metric_history(run.id, "loss")
        got = store.get_run(run.id)
    finally:
        store.close()
    values = sorted(m.value for m in history)
    assert len(values) == CLIENTS * POINTS
    assert values == [float(v) for v in range(CLIENTS * POINTS)]  # each point exactly once
    assert len(got.params) == CLIENTS and got.status is RunStatus.FINISHED
