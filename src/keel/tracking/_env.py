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
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from keel.tracking._records import RunEnv

_GIT_TIMEOUT_S = 2.0


def capture_env(cwd: Path | None = None) -> RunEnv:
    """The environment of this process, with git state of ``cwd`` (default: working dir)."""
    commit, dirty = git_state(cwd or Path.cwd())
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


def git_state(cwd: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the repository containing ``cwd``; ``(None, None)`` outside one.

    Dirty means tracked files differ from the commit; untracked files do not count, since
    outputs and caches in the working tree would otherwise mark nearly every run dirty. One
    ``git status`` call answers both (porcelain v2 prints the commit in its header).
    """
    if not any((folder / ".git").exists() for folder in (cwd, *cwd.parents)):
        return None, None  # not in a repository: no need to start git at all
    out = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd)
    if out is None:
        return None, None
    lines = out.splitlines()
    head = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
    if head is None or head == "(initial)":  # a repository without commits
        return None, None
    return head, any(not ln.startswith("#") for ln in lines)


@lru_cache(maxsize=1)
def _module_to_dists() -> dict[str, list[str]]:
    # Scanning every installed distribution's metadata takes tens of ms; once per process.
    return dict(metadata.packages_distributions())


def imported_packages() -> dict[str, str]:
    """``{distribution: version}`` for every installed distribution whose top-level module
    this process has imported (the standard library has no distribution and is left out)."""
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
