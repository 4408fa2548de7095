"""The fluent API on the real stores: run lifecycle, per-thread and per-task state, resuming,
many processes logging to one run, heartbeats, SIGTERM and the captured environment."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import keel
from keel.config import reset_settings
from keel.errors import Conflict, InvalidInput, ParamConflict
from keel.tracking import Client, RunIO, RunStatus


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def _spawn(code: str, home: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEEL_HOME": str(home), **env},
    )


def test_with_block_finishes_and_logs_everything(client: Client) -> None:
    with keel.start_run(project="p", name="first", tags={"team": "ml"}) as run:
        assert keel.active_run() is run
        keel.log_param("lr", 0.1)
        keel.log_params({"depth": 3, "kind": "tree"})
        keel.set_tag("stage", "dev")
        keel.set_tags({"seed": 7})
        keel.log_metric("loss", 0.5, step=1)
        keel.log_metrics({"acc": 0.9, "f1": np.float64(0.8)}, step=2)
        keel.log_input("churn@v3", digest="blake3:" + "0" * 64)
    assert keel.active_run() is None
    got = client.get_run(run.id)
    assert got.status is RunStatus.FINISHED and got.end_ms is not None
    assert (got.project, got.name) == ("p", "first")
    assert got.params == {"lr": "0.1", "depth": "3", "kind": "tree"}
    assert got.tags == {"team": "ml", "stage": "dev", "seed": "7"}
    assert got.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8}
    assert got.io == (RunIO(ref="churn@v3", digest="blake3:" + "0" * 64),)


def test_an_exception_fails_the_run_and_keyboard_interrupt_kills_it(client: Client) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with keel.start_run(project="p") as failed:
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with keel.start_run(project="p") as killed:
            raise KeyboardInterrupt
    assert client.get_run(failed.id).status is RunStatus.FAILED
    assert client.get_run(killed.id).status is RunStatus.KILLED


def test_end_run_without_a_block_and_default_project(client: Client) -> None:
    run = keel.start_run()
    keel.log_metric("x", 1)
    keel.end_run("KILLED")
    got = client.get_run(run.id)
    assert (got.project, got.status, got.metrics) == ("default", RunStatus.KILLED, {"x": 1.0})
    keel.end_run()  # nothing active: a no-op


def test_param_conflict_is_raised_at_the_call_site() -> None:
    with keel.start_run(project="p"):
        keel.log_param("lr", 0.1)
        keel.log_param("lr", 0.1)  # same value again is fine
        with pytest.raises(ParamConflict):
            keel.log_param("lr", 0.2)


def test_logging_without_an_active_run_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="no active run"):
        keel.log_metric("x", 1.0)
    with pytest.raises(Conflict, match="no active run"):
        keel.log_param("x", 1)


def test_nested_runs_and_a_second_top_level_run(client: Client) -> None:
    with keel.start_run(project="p") as parent:
        with pytest.raises(Conflict, match="nested=True"):
            keel.start_run(project="p")
        with keel.start_run(project="p", nested=True) as child:
            assert keel.active_run() is child
            keel.log_metric("inner", 1.0)
        assert keel.active_run() is parent
        keel.log_metric("outer", 1.0)
    assert client.get_run(child.id).parent_id == parent.id
    assert client.get_run(child.id).metrics == {"inner": 1.0}
    assert client.get_run(parent.id).metrics == {"outer": 1.0}


def test_threads_each_have_their_own_run(client: Client) -> None:
    barrier = threading.Barrier(4)
    ids: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with keel.start_run(project="threads", name=f"t{n}") as run:
                ids[n] = run.id
                barrier.wait(10)  # all four runs are active at the same time
                for step in range(200):
                    keel.log_metric("who", n, step=step)
                    assert keel.active_run() is run
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert keel.active_run() is None
    for n, run_id in ids.items():
        history = client.metric_history(run_id, "who")
        assert len(history) == 200 and {m.value for m in history} == {float(n)}
        assert client.get_run(run_id).status is RunStatus.FINISHED


def test_asyncio_tasks_each_have_their_own_run(client: Client) -> None:
    async def work(n: int) -> str:
        with keel.start_run(project="tasks", name=f"task{n}") as run:
            for step in range(50):
                keel.log_metric("who", n, step=step)
                await asyncio.sleep(0)  # interleave with the other tasks
                assert keel.active_run() is run
            return run.id

    async def main() -> list[str]:
        return list(await asyncio.gather(*(work(n) for n in range(5))))

    ids = asyncio.run(main())
    assert len(set(ids)) == 5
    for n, run_id in enumerate(ids):
        assert {m.value for m in client.metric_history(run_id, "who")} == {float(n)}


def test_resuming_attaches_to_a_running_run_and_refuses_an_ended_one(client: Client) -> None:
    owner = client.create_run("p")
    with keel.start_run(run_id=owner.id, tags={"worker": "1"}) as attached:
        assert not attached.owned
        keel.log_metric("m", 1.0)
    got = client.get_run(owner.id)
    assert got.status is RunStatus.RUNNING  # the owner ends it, not an attached worker
    assert got.metrics == {"m": 1.0} and got.tags == {"worker": "1"}
    client.end_run(owner.id)
    with pytest.raises(Conflict, match="has ended"):
        keel.start_run(run_id=owner.id)
    # An id that does not exist yet is created with that id (idempotent creation).
    with keel.start_run(project="p", run_id="my-own-id-0001") as fresh:
        assert fresh.owned
    assert client.get_run("my-own-id-0001").status is RunStatus.FINISHED


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        keel.start_run(project="p", inputs=[42])
    assert caught.value.field == "inputs"


_WORKER = """
import sys, keel
run_id, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with keel.start_run(run_id=run_id):
    for i in range(n):
        keel.log_metric("m", worker * 1_000_000 + i, step=i)
"""


@pytest.mark.parametrize("backend", ["sqlite_url", "pg_url"])
def test_eight_processes_log_to_one_run_without_loss_or_duplicates(
    backend: str, request: pytest.FixtureRequest, keel_home: Path
) -> None:
    url = str(request.getfixturevalue(backend))
    workers, points = 8, 10_000
    client = Client(tracking_uri=url)
    run = client.create_run("concurrent")
    env = {**os.environ, "KEEL_HOME": str(keel_home), "KEEL_TRACKING_URI": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, run.id, str(w), str(points)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    client.end_run(run.id)
    history = client.metric_history(run.id, "m")
    values = sorted(m.value for m in history)
    expected = sorted(float(w * 1_000_000 + i) for w in range(workers) for i in range(points))
    assert len(history) == workers * points
    assert values == expected  # nothing lost, nothing written twice
    assert client.get_run(run.id).status is RunStatus.FINISHED
    client.close()


def test_a_killed_process_run_fails_after_its_heartbeat_lapses(
    keel_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HEARTBEAT_TIMEOUT_S", "1.5")
    reset_settings()
    child = _spawn(
        """
        import time, keel
        run = keel.start_run(project="hb")
        print(run.id, flush=True)
        time.sleep(120)
        """,
        keel_home,
        KEEL_HEARTBEAT_INTERVAL_S="0.2",
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    client = Client()
    try:
        time.sleep(2.5)  # longer than the timeout: the live heartbeat keeps the run RUNNING
        assert client.get_run(run_id).status is RunStatus.RUNNING
        client.search_runs(projects=["hb"])
        assert client.get_run(run_id).status is RunStatus.RUNNING
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        time.sleep(2.0)
        page = client.search_runs(projects=["hb"])
        assert [(r.id, r.status) for r in page] == [(run_id, RunStatus.FAILED)]
    finally:
        child.kill()
        child.communicate()
        client.close()


def test_sigterm_flushes_and_kills_the_run_then_dies_by_the_signal(keel_home: Path) -> None:
    child = _spawn(
        """
        import time, keel
        with keel.start_run(project="term") as run:
            for i in range(5_000):
                keel.log_metric("loss", i, step=i)
            print(run.id, flush=True)
            time.sleep(120)
        """,
        keel_home,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err
    client = Client()
    assert client.get_run(run_id).status is RunStatus.KILLED
    assert len(client.metric_history(run_id, "loss")) == 5_000
    client.close()


def test_a_custom_sigterm_handler_is_left_alone(keel_home: Path) -> None:
    child = _spawn(
        """
        import signal, keel
        def mine(signum, frame):
            pass
        signal.signal(signal.SIGTERM, mine)
        with keel.start_run(project="term"):
            print(signal.getsignal(signal.SIGTERM) is mine)
        """,
        keel_home,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "True"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_environment_is_captured_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: Client
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (repo / "train.py").write_text("print(1)\n")
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], cwd=repo, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    with keel.start_run(project="env") as clean:
        pass
    (repo / "train.py").write_text("print(2)\n")
    with keel.start_run(project="env") as dirty:
        pass
    env = client.get_run(clean.id).env
    assert (env.git_commit, env.git_dirty) == (head, False)
    assert client.get_run(dirty.id).env.git_dirty is True
    assert env.pid == os.getpid() and env.host and env.python_version.startswith("3.")
    assert env.packages["numpy"] == np.__version__
    assert "pytest" in env.packages
    monkeypatch.chdir(tmp_path)  # not a repository: no git state, no error
    with keel.start_run(project="env") as outside:
        pass
    env = client.get_run(outside.id).env
    assert (env.git_commit, env.git_dirty) == (None, None)


def test_search_runs_as_records_and_as_a_dataframe() -> None:
    for lr in (0.1, 0.2):
        with keel.start_run(project="search", name=f"lr{lr}"):
            keel.log_param("lr", lr)
            keel.log_metric("auc", 0.5 + lr)
            keel.set_tag("kind", "sweep")
    page = keel.search_runs(projects=["search"], order_by=["-metrics.auc"])
    assert [r.name for r in page] == ["lr0.2", "lr0.1"] and page.next_token is None
    frame = keel.search_runs(projects=["search"], order_by=["metrics.auc"], output="pandas")
    assert list(frame.columns[:6]) == [
        "run_id",
        "project",
        "name",
        "status",
        "start_time",
        "end_time",
    ]
    assert set(frame.columns[6:]) == {"params.lr", "metrics.auc", "tags.kind"}
    assert list(frame["params.lr"]) == ["0.1", "0.2"]
    assert list(frame["metrics.auc"]) == pytest.approx([0.6, 0.7])
    assert (
        str(frame["start_time"].dtype).startswith("datetime64") and frame["end_time"].notna().all()
    )
    empty = keel.search_runs("params.lr = '9'", projects=["search"], output="pandas")
    assert list(empty.columns) == ["run_id", "project", "name", "status", "start_time", "end_time"]
    assert len(empty) == 0
