"""Git state of a run: the commit read from the repository's files, the dirty flag from a
background ``git status`` recorded by the first heartbeat or the end of the run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.config import reset_settings
from keel.tracking import Client
from keel.tracking._env import capture_env_started, git_state, head_commit

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text("print(1)\n")
    _git(root, "init", "-q")
    _git(root, "add", "train.py")
    _git(root, "commit", "-qm", "init")
    return root


def test_head_commit_from_loose_packed_and_detached_refs(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert head_commit(repo / ".git") == head
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / _git(repo, "branch", "--show-current")).exists()
    assert head_commit(repo / ".git") == head
    _git(repo, "checkout", "-q", "--detach")
    assert head_commit(repo / ".git") == head


def test_unusual_repositories_are_left_to_git(tmp_path: Path, repo: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    assert head_commit(empty / ".git") is None  # no commit yet: git answers
    env, probe = capture_env_started(empty)
    assert (env.git_commit, env.git_dirty, probe) == (None, None, None)
    _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    env, probe = capture_env_started(tmp_path / "wt")  # .git is a file: git answers at once
    assert probe is None and (env.git_commit, env.git_dirty) == git_state(tmp_path / "wt")
    assert env.git_commit == _git(repo, "rev-parse", "HEAD")


def test_the_probe_sees_the_tree_at_the_start(repo: Path) -> None:
    env, probe = capture_env_started(repo)
    assert probe is not None and env.git_dirty is None
    assert (env.git_commit, probe.result()) == git_state(repo)
    (repo / "train.py").write_text("print(2)\n")
    env, probe = capture_env_started(repo)
    assert probe is not None and probe.result() is True


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KEEL_HEARTBEAT_INTERVAL_S", "0.05")
    reset_settings()
    yield
    monkeypatch.delenv("KEEL_HEARTBEAT_INTERVAL_S")
    reset_settings()


def test_the_flag_is_recorded_by_the_first_heartbeat(
    repo: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, fast_heartbeat: None
) -> None:
    (repo / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(repo)
    client = Client(tracking_uri=db_url)
    run = client.create_run("env")
    assert run.env.git_commit == _git(repo, "rev-parse", "HEAD")
    deadline = time.monotonic() + 10
    while client.get_run(run.id).env.git_dirty is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.get_run(run.id).env.git_dirty is True  # while the run is still running
    client.end_run(run.id)
    assert client.get_run(run.id).env.git_dirty is True
    client.close()


def test_the_flag_is_recorded_at_the_end_and_on_detach(
    repo: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.chdir(repo)
    client = Client(tracking_uri=db_url)
    ended, detached = client.create_run("env"), client.create_run("env")
    client.end_run(ended.id)
    client.detach(detached.id)
    for run in (ended, detached):
        env = client.get_run(run.id).env
        assert (env.git_commit, env.git_dirty) == (_git(repo, "rev-parse", "HEAD"), False)
    client.close()
