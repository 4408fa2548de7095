"""The explicit Client on the real stores: synchronous params and tags, asynchronous metrics
with read-your-writes, run ends, stale runs, artifacts and lineage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keel._time import now_ms
from keel.config import reset_settings
from keel.errors import Conflict, InvalidInput, NotFound, ParamConflict, UnsafePath
from keel.tracking import Client, Metric, RunIO, RunStatus


@pytest.fixture
def client(db_url: str) -> Iterator[Client]:
    c = Client(tracking_uri=db_url)
    yield c
    c.close()


def test_params_and_tags_are_synchronous_and_params_write_once(client: Client) -> None:
    run = client.create_run("p", "r", tags={"a": 1})
    client.log_param(run.id, "lr", 0.1)
    client.log_params(run.id, {"depth": 4})
    client.set_tag(run.id, "b", "x")
    client.set_tags(run.id, {"c": True})
    with pytest.raises(ParamConflict):
        client.log_param(run.id, "lr", 0.3)
    got = client.store.get_run(run.id)  # straight from the store: nothing was pending
    assert got.params == {"lr": "0.1", "depth": "4"}
    assert got.tags == {"a": "1", "b": "x", "c": "True"}


def test_log_batch_is_all_or_nothing(client: Client) -> None:
    run = client.create_run("p")
    client.log_param(run.id, "lr", 0.1)
    with pytest.raises(ParamConflict):
        client.log_batch(run.id, metrics=[Metric("m", 1.0, 0, 1)], params={"lr": 0.2})
    assert client.metric_history(run.id, "m") == []
    client.log_batch(run.id, metrics=[Metric("m", 1.0, 0, 1)], params={"lr": 0.1}, tags={"t": 1})
    assert client.metric_history(run.id, "m") == [Metric("m", 1.0, 0, 1)]


def test_reads_see_queued_metrics_without_an_explicit_flush(client: Client) -> None:
    run = client.create_run("p")
    for step in range(1_000):
        client.log_metric(run.id, "loss", 1 / (step + 1), step=step, timestamp_ms=step)
    client.log_metrics(run.id, {"acc": 0.9, "f1": 0.8}, step=7)
    assert client.get_run(run.id).metrics == {"loss": 1 / 1000, "acc": 0.9, "f1": 0.8}
    history = client.metric_history(run.id, "loss")
    assert [(m.step, m.timestamp_ms) for m in history] == [(s, s) for s in range(1_000)]
    page = client.search_runs("metrics.acc > 0.5", projects=["p"])
    assert [r.id for r in page] == [run.id]


def test_end_run_sets_the_status_and_refuses_bad_ones(client: Client) -> None:
    run = client.create_run("p")
    with pytest.raises(InvalidInput) as caught:
        client.end_run(run.id, "RUNNING")
    assert caught.value.field == "status"
    client.end_run(run.id, "FAILED")
    ended = client.get_run(run.id)
    assert ended.status is RunStatus.FAILED and ended.end_ms is not None
    with pytest.raises(Conflict):
        client.end_run(run.id, "FINISHED")
    client.set_tag(run.id, "reviewed", "yes")  # tags stay writable after the end
    with pytest.raises(Conflict):
        client.log_param(run.id, "late", 1)


def test_end_run_raises_a_kept_write_error_after_ending_the_run(client: Client) -> None:
    run = client.create_run("p")
    client.log_metric(run.id, "x" * 300, 1.0)  # passes the cheap check, too long for the store
    with pytest.raises(InvalidInput) as caught:
        client.end_run(run.id)
    assert "1 metric points were not written" in "".join(caught.value.__notes__)
    assert client.get_run(run.id).status is RunStatus.FINISHED


def test_end_run_stores_the_last_points_with_the_status(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = client.create_run("p")
    client.log_metric(run.id, "warm", 1.0)
    client.flush()
    separately: list[int] = []
    original = client.store.log_batch

    def log_batch(run_id: str, **kwargs: object) -> None:
        separately.append(len(kwargs.get("metrics", ())))  # type: ignore[arg-type]
        original(run_id, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client.store, "log_batch", log_batch)
    gate = threading.Event()
    monkeypatch.setattr(client.writer, "_commit", _gated(client.writer._commit, gate))
    client.writer.put((run.id, "blocker", 0.0, 0, 1))
    while client.writer._in_flight == 0:  # the writer is busy with the blocker until the gate
        time.sleep(0.001)
    client.log_metrics(run.id, {"a": 1.0, "b": 2.0}, step=3)
    threading.Timer(0.05, gate.set).start()
    client.end_run(run.id)
    got = client.get_run(run.id)
    assert got.status is RunStatus.FINISHED
    assert got.metrics == {"warm": 1.0, "blocker": 0.0, "a": 1.0, "b": 2.0}
    assert sum(separately) <= 1  # at most the blocker went on its own; a and b with the end


def _gated(commit: Callable[[list[Any]], None], gate: threading.Event) -> Callable[..., None]:
    def gated(items: list[Any]) -> None:
        gate.wait()
        commit(items)

    return gated


def test_search_marks_runs_with_a_lapsed_heartbeat_failed(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HEARTBEAT_TIMEOUT_S", "5")
    reset_settings()
    client = Client(tracking_uri=db_url)
    stale = client.store.create_run(project="p", start_ms=now_ms() - 60_000)  # a dead process
    alive = client.create_run("p")  # heartbeat from this client
    statuses = {r.id: r.status for r in client.search_runs(projects=["p"])}
    assert statuses == {stale.id: RunStatus.FAILED, alive.id: RunStatus.RUNNING}
    client.end_run(alive.id)
    client.close()


def test_delete_run_hides_it_from_search(client: Client) -> None:
    run = client.create_run("p")
    client.end_run(run.id)
    client.delete_run(run.id)
    assert list(client.search_runs(projects=["p"])) == []
    assert [r.id for r in client.search_runs(projects=["p"], include_deleted=True)] == [run.id]
    client.delete_run(run.id, hard=True)
    with pytest.raises(NotFound):
        client.get_run(run.id)


def test_inputs_and_outputs_are_recorded_for_lineage(client: Client) -> None:
    run = client.create_run("p")
    client.log_input(run.id, "churn@v3", digest="blake3:" + "1" * 64)
    client.log_output(run.id, "churn-features@v1")
    assert set(client.get_run(run.id).io) == {
        RunIO(ref="churn@v3", digest="blake3:" + "1" * 64),
        RunIO(ref="churn-features@v1", direction="output"),
    }
    assert client.store.runs_using("churn@v3") == [run.id]


def test_artifacts_round_trip(client: Client, tmp_path: Path) -> None:
    run = client.create_run("p")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    single = tmp_path / "report.html"
    single.write_text("<p>hi</p>")
    record = client.log_artifact(run.id, single)
    assert (record.path, record.size) == ("report.html", 9)
    client.log_artifact(run.id, single, artifact_path="reports/2026")
    client.log_artifacts(run.id, src, artifact_path="data")
    paths = [f.path for f in client.list_artifacts(run.id)]
    assert paths == ["data/a.txt", "data/sub/b.txt", "report.html", "reports/2026/report.html"]
    assert [f.path for f in client.list_artifacts(run.id, "data/sub")] == ["data/sub/b.txt"]

    seen: list[int] = []
    written = client.download_artifacts(run.id, "data", tmp_path / "out", progress=seen.append)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "data/a.txt",
        "data/sub/b.txt",
    ]
    assert (tmp_path / "out" / "data" / "sub" / "b.txt").read_text() == "beta"
    assert sum(seen) == len("alpha") + len("beta")
    [one] = client.download_artifacts(run.id, "reports/2026/report.html", tmp_path / "one")
    assert one == tmp_path / "one" / "report.html" and one.read_text() == "<p>hi</p>"

    with pytest.raises(UnsafePath):
        client.log_artifact(run.id, single, artifact_path="../escape")
    with pytest.raises(InvalidInput):
        client.log_artifact(run.id, tmp_path / "missing.txt")
    with pytest.raises(InvalidInput):
        client.download_artifacts(run.id, "nope", tmp_path / "none")
