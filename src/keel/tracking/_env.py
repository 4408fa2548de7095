"""Where a run executes, captured once when it starts: who, where, which code, which packages.

Everything here is best effort by design: a missing ``git``, a folder that is not a repository
or a user without a passwd entry gives ``None``/``""`` for that field, never an error, because a
run must start on any machine. Only the exact, expected failures are caught.
"""

from __future__ import annotations

import getpass
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from keel.tracking._records import RunEnv

_GIT_TIMEOUT_S = 2.0


def capture_env(cwd: Path | None = None) -> RunEnv:
    """The environment of this process, with git state of ``cwd`` (default: working dir)."""
    commit, dirty = git_state(cwd or Path.cwd())
    return _env(commit, dirty)


def capture_env_started(cwd: Path | None = None) -> tuple[RunEnv, DirtyProbe | None]:
    """``capture_env`` without waiting for ``git status``: the commit is read from the
    repository's files and ``git_dirty`` is left ``None`` while the probe (when one is
    returned) computes it in the background. Unusual repositories (worktrees, ``GIT_DIR``,
    reftable, no commit yet) are answered by ``git`` at once, as ``capture_env`` does."""
    folder = cwd or Path.cwd()
    git_dir = _git_dir(folder)
    if git_dir is None:
        return _env(None, None), None
    commit = head_commit(git_dir) if git_dir.is_dir() and not _git_env_set() else None
    probe = None if commit is None else DirtyProbe.start(folder, commit)
    if probe is None:
        commit, dirty = git_state(folder)
        return _env(commit, dirty), None
    return _env(commit, None), probe


def _env(commit: str | None, dirty: bool | None) -> RunEnv:
    return RunEnv(
        user=_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        git_commit=commit,
        git_dirty=dirty,
        python_version=platform.python_version(),
        packages=imported_packages(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry and no LOGNAME/USER (some containers)
        return ""


def _git(args: list[str], cwd: Path) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git_dir(cwd: Path) -> Path | None:
    return next(
        (folder / ".git" for folder in (cwd, *cwd.parents) if (folder / ".git").exists()), None
    )


def _git_env_set() -> bool:
    return any(name in os.environ for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))


def git_state(cwd: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the repository containing ``cwd``; ``(None, None)`` outside one.

    Dirty means tracked files differ from the commit; untracked files do not count, since
    outputs and caches in the working tree would otherwise mark nearly every run dirty. One
    ``git status`` call answers both (porcelain v2 prints the commit in its header).
    """
    if _git_dir(cwd) is None:
        return None, None  # not in a repository: no need to start git at all
    out = _git(_STATUS, cwd)
    return (None, None) if out is None else _parse_status(out)


_STATUS = ["status", "--porcelain=v2", "--branch", "--untracked-files=no"]


def _parse_status(out: str) -> tuple[str | None, bool | None]:
    lines = out.splitlines()
    head = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
    if head is None or head == "(initial)":  # a repository without commits
        return None, None
    return head, any(not ln.startswith("#") for ln in lines)


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def head_commit(git_dir: Path) -> str | None:
    """The commit HEAD points at, read from ``HEAD``, the loose ref or ``packed-refs``;
    ``None`` when these files do not answer plainly (then ask ``git``)."""
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head if _is_oid(head) else None  # a detached HEAD
        ref = head[5:]
        if not ref.startswith("refs/") or ".." in ref.split("/"):
            return None
        loose = git_dir / ref
        if loose.is_file():
            oid = loose.read_text(encoding="utf-8").strip()
            return oid if _is_oid(oid) else None
        packed = git_dir / "packed-refs"
        if not packed.is_file():
            return None
        with packed.open(encoding="utf-8") as lines:
            for line in lines:
                oid, _, name = line.rstrip("\n").partition(" ")
                if name == ref and _is_oid(oid):
                    return oid
    except (OSError, UnicodeDecodeError):  # unreadable or odd files: git decides
        return None
    return None


class DirtyProbe:
    """``git status`` running in the background for a run that has started; ``result()``
    is its dirty flag (``None`` if git failed, timed out or saw another commit than the one
    recorded at the start)."""

    def __init__(self, proc: subprocess.Popen[str], commit: str) -> None:
        self._proc = proc
        self._commit = commit
        self._lock = threading.Lock()
        self._result: bool | None = None
        self._done = False

    @classmethod
    def start(cls, cwd: Path, commit: str) -> DirtyProbe | None:
        git = shutil.which("git")
        if git is None:
            return None
        try:
            proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                [git, *_STATUS],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return None
        return cls(proc, commit)

    def done(self) -> bool:
        return self._done or self._proc.poll() is not None

    def result(self) -> bool | None:
        """The dirty flag, waiting for git up to its time limit (then git is stopped)."""
        with self._lock:
            if not self._done:
                self._result = self._collect()
                self._done = True
            return self._result

    def _collect(self) -> bool | None:
        try:
            out, _ = self._proc.communicate(timeout=_GIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            return None
        if self._proc.returncode != 0:
            return None
        commit, dirty = _parse_status(out)
        # HEAD moved between the start and git's look: the flag would describe another commit.
        return dirty if commit == self._commit else None


class DirtyProbes:
    """The probes of runs whose ``git_dirty`` is still to be recorded, by run id."""

    def __init__(self) -> None:
        self._probes: dict[str, DirtyProbe] = {}

    def add(self, run_id: str, probe: DirtyProbe) -> None:
        self._probes[run_id] = probe

    def flag(self, run_id: str, *, wait: bool) -> bool | None:
        """The run's flag if still to be recorded (and, without ``wait``, already known)."""
        probe = self._probes.get(run_id)
        if probe is None or not (wait or probe.done()):
            return None
        return probe.result()

    def recorded(self, run_id: str) -> None:
        self._probes.pop(run_id, None)


@lru_cache(maxsize=1)
def _module_to_dists() -> dict[str, list[str]]:
    # Scanning every installed distribution's metadata takes tens of ms; once per process.
    return dict(metadata.packages_distributions())


def imported_packages() -> dict[str, str]:
    """``{distribution: version}`` for every installed distribution whose top-level module
    this process has imported (the standard library has no distribution and is left out)."""
    # Modules are only ever added in practice: an unchanged count means an unchanged answer,
    # which spares a loop over a thousand module names at every run start.
    count = len(sys.modules)
    found = _packages_by_count.get(count)
    if found is None:
        found = _scan_packages()
        _packages_by_count.clear()
        _packages_by_count[count] = found
    return dict(found)


_packages_by_count: dict[int, dict[str, str]] = {}


def _scan_packages() -> dict[str, str]:
    mapping = _module_to_dists()
    top = {name.partition(".")[0] for name in list(sys.modules)}
    found: dict[str, str] = {}
    for module in sorted(top & mapping.keys()):
        for dist in mapping[module]:
            if dist in found:
                continue
            version = _version(dist)
            if version is not None:
                found[dist] = version
    return found


@lru_cache(maxsize=4096)
def _version(dist: str) -> str | None:
    # Parsing a distribution's METADATA costs ~1 ms; versions do not change in a running process.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # listed but unreadable metadata
        return None
