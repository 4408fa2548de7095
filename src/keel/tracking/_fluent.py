"""The fluent API: ``keel.start_run()`` and friends, over a stack of active runs per context.

The stack lives in a ``ContextVar``, so every thread and every asyncio task has its own: two
threads (or tasks) each running their own run never see each other's. Logging calls go to the
top of the current stack through the ``Client`` of the settings in force when the run started.

A run is ended by whoever started it. ``start_run(run_id=X)`` on a RUNNING run started
elsewhere *attaches*: leaving the block normally flushes and detaches, leaving it with an
exception ends the run FAILED (KILLED on ``KeyboardInterrupt``), and ``end_run()`` always ends
it. At interpreter exit, runs still active are ended (FAILED if an exception escaped) and
attached ones detached; SIGTERM ends them as KILLED before the signal takes its default course.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal

from keel.errors import Conflict, InvalidInput, KeelError, NotFound
from keel.tracking._client import Client
from keel.tracking._records import ArtifactFile, Run, RunIO, RunStatus

_stack: ContextVar[tuple[ActiveRun, ...]] = ContextVar("keel_active_runs", default=())
_live: set[ActiveRun] = set()  # every active run of the process, for SIGTERM and exit
_lock = threading.Lock()
_clients: dict[tuple[str, str], Client] = {}
_sigterm_installed = False


class ActiveRun:
    """A run active in this context; a context manager that ends (or detaches) it on exit."""

    def __init__(self, client: Client, run: Run, *, owned: bool) -> None:
        self.client = client
        self.run = run  # the record as it was when the run became active
        self.id = run.id
        self.owned = owned  # started here (ended on exit) or attached (detached on exit)
        self._closed = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} project={self.run.project!r} name={self.run.name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._close(RunStatus.FINISHED, end=self.owned)
            return
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        try:
            self._close(status, end=True)
        except KeelError as error:  # the block's own exception stays the one raised
            exc.add_note(f"keel: ending run {self.id} also failed: {type(error).__name__}: {error}")

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self._close(RunStatus(status), end=True)

    def _close(self, status: RunStatus, *, end: bool) -> None:
        if self._closed:
            return
        self._closed = True
        _stack.set(tuple(r for r in _stack.get() if r is not self))
        with _lock:
            _live.discard(self)
        if end:
            self.client.end_run(self.id, status)
        else:
            self.client.detach(self.id)


def default_client() -> Client:
    """The process-wide client for the current settings (one per tracking/artifact URI)."""
    from keel.config import get_settings

    settings = get_settings()
    key = (settings.tracking_uri, settings.artifacts_uri)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key) or Client(*key)
            _clients[key] = client
    return client


def _input(item: object) -> RunIO:
    if isinstance(item, RunIO):
        return item
    if isinstance(item, str):
        return RunIO(ref=item)
    ref = getattr(item, "ref", None)  # dataset versions and other records that name themselves
    if not isinstance(ref, str):
        raise InvalidInput(
            f"expected a ref string or an object with .ref, got {item!r}", field="inputs"
        )
    digest = getattr(item, "digest", None)
    return RunIO(ref=ref, digest=digest if isinstance(digest, str) else None)


def start_run(
    project: str | None = None,
    name: str | None = None,
    *,
    nested: bool = False,
    run_id: str | None = None,
    tags: Mapping[str, object] | None = None,
    inputs: Iterable[object] | None = None,
) -> ActiveRun:
    """Start a run (or resume the RUNNING run ``run_id``) and make it active in this context."""
    stack = _stack.get()
    if stack and not nested:
        raise Conflict(
            f"run {stack[-1].id} is already active here; pass nested=True to start a child "
            "run, or end it first (keel.end_run())"
        )
    if run_id is not None and any(r.id == run_id for r in stack):
        raise Conflict(f"run {run_id} is already active here")
    client = default_client()
    parent = stack[-1].id if stack else None
    owned = True
    run: Run | None = None
    if run_id is not None:
        client.sweep_stale_runs()
        try:
            run = client.store.get_run(run_id)
        except NotFound:
            run = None
    if run is None:
        run = client.create_run(project, name, parent_id=parent, tags=tags, run_id=run_id)
    else:
        if run.status.terminal:
            raise Conflict(f"run {run.id} has ended ({run.status}); only a RUNNING run resumes")
        owned = False
        client.attach(run.id)
        if tags:
            client.set_tags(run.id, tags)
    items = [_input(i) for i in inputs or ()]
    if items:
        client.store.log_io(run.id, items)
    active = ActiveRun(client, run, owned=owned)
    _stack.set((*stack, active))
    with _lock:
        _live.add(active)
    _install_sigterm()
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread/task, or None."""
    stack = _stack.get()
    return stack[-1] if stack else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run with ``status`` (a no-op when none is active)."""
    stack = _stack.get()
    if stack:
        stack[-1].end(status)


def _current() -> ActiveRun:
    stack = _stack.get()
    if not stack:
        raise Conflict("no active run: start one with keel.start_run()")
    return stack[-1]


def log_metric(
    key: str, value: float, step: int | None = None, timestamp_ms: int | None = None
) -> None:
    """Queue one metric point for the active run (asynchronous; see ``flush``)."""
    stack = _stack.get()
    if not stack:
        raise Conflict("no active run: start one with keel.start_run()")
    run = stack[-1]
    run.client.log_metric(run.id, key, value, step, timestamp_ms)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    run = _current()
    run.client.log_metrics(run.id, metrics, step)


def log_param(key: str, value: object) -> None:
    run = _current()
    run.client.log_param(run.id, key, value)


def log_params(params: Mapping[str, object]) -> None:
    run = _current()
    run.client.log_params(run.id, params)


def set_tag(key: str, value: object) -> None:
    run = _current()
    run.client.set_tag(run.id, key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    run = _current()
    run.client.set_tags(run.id, tags)


def set_note(text: str) -> None:
    """Replace the active run's free-text note (Markdown)."""
    run = _current()
    run.client.set_note(run.id, text)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactFile:
    run = _current()
    return run.client.log_artifact(run.id, local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactFile]:
    run = _current()
    return run.client.log_artifacts(run.id, local_dir, artifact_path)


def log_input(ref: str, kind: str = "dataset", digest: str | None = None) -> None:
    """Record that the active run read ``ref`` (a dataset version such as ``churn@v3``)."""
    run = _current()
    run.client.log_input(run.id, ref, kind, digest)


def flush(timeout: float | None = None) -> None:
    """Wait until every queued metric point of this process is written; raise kept errors."""
    with _lock:
        known = list(_clients.values())
    clients = {id(c): c for c in [*known, *(r.client for r in _stack.get())]}
    for client in clients.values():
        client.flush(timeout)


def get_run(run_id: str) -> Run:
    return default_client().get_run(run_id)


def search_runs(
    filter: str = "",
    *,
    projects: Sequence[str] | None = None,
    order_by: Sequence[str] = (),
    max_results: int = 1000,
    page_token: str | None = None,
    output: Literal["records", "pandas"] = "records",
) -> Any:
    """Runs matching ``filter``; see ``Client.search_runs``."""
    return default_client().search_runs(
        filter,
        projects=projects,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        output=output,
    )


# -- process lifecycle: SIGTERM, interpreter exit, fork ----------------------------------------


def _report(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _close_live(status: RunStatus) -> None:
    with _lock:
        runs = list(_live)
    for run in runs:
        try:
            run._close(status, end=run.owned or status is RunStatus.KILLED)
        except KeelError as exc:
            _report(f"keel: could not end run {run.id} cleanly: {type(exc).__name__}: {exc}")
            for note in getattr(exc, "__notes__", []):
                _report(note)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    from keel.config import get_settings

    # The interrupted code may hold a lock the clean-up needs; a helper thread with a bounded
    # join cannot deadlock the handler, at worst it gives up after flush_timeout_s.
    worker = threading.Thread(target=_close_live, args=(RunStatus.KILLED,), daemon=True)
    worker.start()
    worker.join(get_settings().flush_timeout_s)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    global _sigterm_installed  # noqa: PLW0603 - one handler per process
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_installed = True
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _at_exit() -> None:
    crashed = getattr(sys, "last_value", None) is not None
    _close_live(RunStatus.FAILED if crashed else RunStatus.FINISHED)


def _after_fork_in_child() -> None:
    # The parent owns its runs: the child may log to them but must not end them at its exit.
    global _lock  # noqa: PLW0603 - a lock held by another parent thread is useless here
    _lock = threading.Lock()
    for run in _live:
        run.owned = False
    _live.clear()
    for client in _clients.values():
        client.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
