"""``Client``: the explicit tracking API (run id first), which the fluent API wraps.

Params, tags, inputs and artifacts are written synchronously, so a conflicting param raises
``ParamConflict`` where it was logged. Metrics go through the asynchronous ``MetricWriter``;
reads (``get_run``, ``search_runs``, ``metric_history``) first wait for queued points, so a
client always reads its own writes. Runs this client starts or resumes get a heartbeat until
they end, and starting or searching runs marks FAILED those whose heartbeat has lapsed.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel._time import now_ms
from keel.errors import InvalidInput, KeelError, StoreUnavailable
from keel.tracking._env import DirtyProbes
from keel.tracking._heartbeat import Heartbeat
from keel.tracking._records import ArtifactFile, Metric, Run, RunEnv, RunIO, RunStatus
from keel.tracking._writer import MetricWriter, integer, metric_value

if TYPE_CHECKING:
    from keel.artifacts import ContentStore
    from keel.tracking._base import TrackingStore


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


class Client:
    """Explicit tracking API over the store at ``tracking_uri`` and the artifact store at
    ``artifacts_uri`` (both default to the settings)."""

    def __init__(self, tracking_uri: str | None = None, artifacts_uri: str | None = None) -> None:
        from keel.config import get_settings

        settings = get_settings()
        self.tracking_uri = tracking_uri
        self.artifacts_uri = artifacts_uri
        self._settings = settings
        self._store: TrackingStore | None = None
        self._content: ContentStore | None = None
        self._writer: MetricWriter | None = None
        self._heartbeat = Heartbeat(self, settings.heartbeat_interval_s)
        self._open_lock = threading.Lock()
        self._last_sweep = -float("inf")
        self.probes = DirtyProbes()  # git_dirty of runs started here, not yet recorded

    # -- backends, opened on first use -----------------------------------------------------

    @property
    def store(self) -> TrackingStore:
        if self._store is None:
            from keel.tracking._store import open_store

            with self._open_lock:
                if self._store is None:
                    self._store = open_store(self.tracking_uri)
        return self._store

    @property
    def content(self) -> ContentStore:
        if self._content is None:
            from keel.artifacts import open_content_store

            tracking = self.tracking_uri or self._settings.tracking_uri
            # A team server owns its artifact store: its clients reach it through the server.
            remote = tracking.lower().startswith(("http://", "https://"))
            self._content = open_content_store(tracking if remote else self.artifacts_uri)
        return self._content

    @property
    def writer(self) -> MetricWriter:
        if self._writer is None:
            with self._open_lock:
                if self._writer is None:
                    self._writer = MetricWriter(
                        self._LazyStore(self),
                        queue_size=self._settings.metric_queue_size,
                        batch_size=self._settings.metric_batch_size,
                    )
        return self._writer

    class _LazyStore:
        """The writer's view of the store, opened by the writer thread when first needed."""

        def __init__(self, client: Client) -> None:
            self._client = client

        def log_batch(self, run_id: str, *, metrics: Sequence[Metric] = ()) -> None:
            self._client.store.log_batch(run_id, metrics=metrics)

    # -- runs ------------------------------------------------------------------------------

    def fail_stale_runs(self) -> list[str]:
        """Mark FAILED the RUNNING runs whose heartbeat lapsed (``heartbeat_timeout_s``)."""
        timeout_ms = int(self._settings.heartbeat_timeout_s * 1000)
        self._last_sweep = time.monotonic()
        return self.store.fail_stale_runs(now_ms=now_ms(), timeout_ms=timeout_ms)

    def sweep_stale_runs(self) -> None:
        """``fail_stale_runs``, at most once per quarter of ``heartbeat_timeout_s``."""
        # A sweep is a write transaction; a loop starting many runs needs one per quarter of the
        # timeout, not one per run, to mark dead runs within 1.25 x heartbeat_timeout_s.
        if time.monotonic() - self._last_sweep >= self._settings.heartbeat_timeout_s / 4:
            self.fail_stale_runs()

    def create_run(
        self,
        project: str | None = None,
        name: str | None = None,
        *,
        parent_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        run_id: str | None = None,
        env: RunEnv | None = None,
    ) -> Run:
        """Start a RUNNING run (environment captured unless ``env`` is given) and heartbeat it.
        With ``run_id``, the call is idempotent: an existing id returns that run.

        ``git status`` takes milliseconds, so it runs while the run starts: ``env.git_dirty``
        is recorded by the run's first heartbeat or its end, whichever comes first."""
        from keel.tracking._env import capture_env_started

        probe = None
        if env is None:
            env, probe = capture_env_started()
        self.sweep_stale_runs()
        run = self.store.create_run(
            project=project or self._settings.project,
            name=name,
            parent_id=parent_id,
            env=env,
            tags={k: _text(v) for k, v in (tags or {}).items()},
            run_id=run_id,
        )
        if run.status is RunStatus.RUNNING:
            if probe is not None and run.env == env:  # not an existing run returned again
                self.probes.add(run.id, probe)
            self._heartbeat.add(run.id)
        return run

    def attach(self, run_id: str) -> None:
        """Heartbeat a RUNNING run started elsewhere while this process logs to it."""
        self._heartbeat.add(run_id)

    def detach(self, run_id: str, *, timeout: float | None = None) -> None:
        """Stop heartbeating ``run_id`` after flushing its metrics; the run stays RUNNING."""
        try:
            self.flush(timeout, run_id=run_id)
            dirty = self.probes.flag(run_id, wait=True)
            if dirty is not None:
                self.store.update_run(run_id, git_dirty=dirty)
        finally:
            self._heartbeat.remove(run_id)
            self.probes.recorded(run_id)

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        timeout: float | None = None,
    ) -> None:
        """Write the run's queued metrics (within ``timeout``, default ``flush_timeout_s``), stop
        its heartbeat and set its terminal status. Points that could not be written in time are
        dropped and reported; a kept write error is raised after the run is ended."""
        final = RunStatus(status)
        if not final.terminal:
            raise InvalidInput("must be FINISHED, FAILED or KILLED", field="status")
        error: KeelError | None = None
        points: list[Metric] = []
        try:
            if self._writer is not None:
                limit = self._settings.flush_timeout_s if timeout is None else timeout
                # The run's last points are stored with its status: one commit instead of two.
                points = self._writer.take(run_id, limit)
                self._writer.raise_failures(run_id)
        except StoreUnavailable as exc:
            dropped = self.writer.discard(run_id)
            exc.add_note(
                f"keel: {dropped} queued metric points of run {run_id} were dropped; points "
                "already being written are reported at the next flush or at exit if they fail"
            )
            error = exc
        except KeelError as exc:
            error = exc
        self._heartbeat.remove(run_id)
        end = now_ms()
        dirty = self.probes.flag(run_id, wait=True)
        self.probes.recorded(run_id)
        try:
            self.store.update_run(run_id, status=final, end_ms=end, git_dirty=dirty, metrics=points)
        except KeelError as exc:
            if not points:
                raise
            # The run ends even if its last points cannot be stored (e.g. a bad key), as it
            # did when the writer stored them on their own; the error is raised afterwards.
            self.store.update_run(run_id, status=final, end_ms=end, git_dirty=dirty)
            exc.add_note(
                f"keel: {len(points)} metric points were not written because of this error"
            )
            error = error or exc
        if error is not None:
            raise error

    def get_run(self, run_id: str) -> Run:
        self._read_your_writes()
        return self.store.get_run(run_id)

    def search_runs(
        self,
        filter: str = "",
        *,
        projects: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
        output: Literal["records", "pandas"] = "records",
    ) -> Any:
        """One page of runs matching ``filter``: a ``Page[Run]`` (iterable; ``next_token``
        for the next page), or with ``output="pandas"`` a DataFrame, one row per run."""
        if output not in ("records", "pandas"):
            raise InvalidInput("must be 'records' or 'pandas'", field="output")
        self._read_your_writes()
        self.sweep_stale_runs()
        page = self.store.search_runs(
            projects=projects,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )
        from keel.tracking._frame import runs_frame

        return runs_frame(page.items) if output == "pandas" else page

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        self._heartbeat.remove(run_id)
        self.probes.recorded(run_id)
        self.store.delete_run(run_id, hard=hard)

    # -- logging ---------------------------------------------------------------------------

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one point (returns in microseconds; written in the background)."""
        if type(key) is not str or not key:
            raise InvalidInput("must be a non-empty string", field="key")
        if type(value) is not float:
            value = metric_value(value)
        self.writer.put(
            (
                run_id,
                key,
                value,
                0 if step is None else integer(step, "step"),
                now_ms() if timestamp_ms is None else integer(timestamp_ms, "timestamp_ms"),
            )
        )

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue several points with one step and timestamp (all validated before any is)."""
        st = 0 if step is None else integer(step, "step")
        ts = now_ms() if timestamp_ms is None else integer(timestamp_ms, "timestamp_ms")
        points = []
        for key, value in metrics.items():
            if type(key) is not str or not key:
                raise InvalidInput("must be a non-empty string", field="metrics.key")
            points.append((run_id, key, metric_value(value, f"metrics.{key}"), st, ts))
        self.writer.put_many(points)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> None:
        """Write metrics, params and tags now, in one all-or-nothing transaction."""
        self.store.log_batch(
            run_id,
            metrics=list(metrics),
            params={k: _text(v) for k, v in (params or {}).items()},
            tags={k: _text(v) for k, v in (tags or {}).items()},
        )

    def log_param(self, run_id: str, key: str, value: object) -> None:
        self.store.log_batch(run_id, params={key: _text(value)})

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self.store.log_batch(run_id, params={k: _text(v) for k, v in params.items()})

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        self.store.log_batch(run_id, tags={key: _text(value)})

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.store.log_batch(run_id, tags={k: _text(v) for k, v in tags.items()})

    def set_note(self, run_id: str, text: str) -> None:
        """Replace the run's free-text note (Markdown, shown by ``keel runs show``)."""
        self.store.update_run(run_id, note=text)

    def log_input(
        self, run_id: str, ref: str, kind: str = "dataset", digest: str | None = None
    ) -> None:
        """Record that the run read ``ref`` (e.g. ``churn@v3``), for lineage."""
        self.store.log_io(run_id, [RunIO(ref=ref, kind=kind, direction="input", digest=digest)])

    def log_output(
        self, run_id: str, ref: str, kind: str = "dataset", digest: str | None = None
    ) -> None:
        """Record that the run wrote ``ref``."""
        self.store.log_io(run_id, [RunIO(ref=ref, kind=kind, direction="output", digest=digest)])

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._read_your_writes()
        return self.store.metric_history(run_id, key)

    def flush(self, timeout: float | None = None, *, run_id: str | None = None) -> None:
        """Wait until queued metric points are written (within ``timeout``, default
        ``flush_timeout_s``) and raise any write error kept since the last flush."""
        if self._writer is None:
            return
        limit = self._settings.flush_timeout_s if timeout is None else timeout
        self._writer.flush(limit, run_id=run_id)

    def _read_your_writes(self) -> None:
        if self._writer is not None and self._writer.pending():
            self._writer.wait(self._settings.flush_timeout_s)

    # -- artifacts -------------------------------------------------------------------------

    def log_artifact(
        self,
        run_id: str,
        local_path: str | Path,
        artifact_path: str | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ArtifactFile:
        """Store a file (content-addressed) as ``artifact_path/<file name>`` of the run."""
        from keel.artifacts import safe_relpath

        source = Path(local_path)
        if not source.is_file():
            raise InvalidInput(f"{str(source)!r} is not a file", field="local_path")
        rel = (
            source.name
            if artifact_path is None
            else posixpath.join(safe_relpath(artifact_path, field="artifact_path"), source.name)
        )
        ref = self.content.put_file(source, progress=progress)
        record = ArtifactFile(path=rel, digest=ref.digest, size=ref.size)
        self.store.record_artifacts(run_id, [record])
        return record

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | Path,
        artifact_path: str | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[ArtifactFile]:
        """Store every file under ``local_dir``, keeping relative paths, under ``artifact_path``."""
        from keel.artifacts import safe_relpath

        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInput(f"{str(folder)!r} is not a folder", field="local_dir")
        base = None if artifact_path is None else safe_relpath(artifact_path, field="artifact_path")
        records = [
            ArtifactFile(
                path=rel if base is None else posixpath.join(base, rel),
                digest=ref.digest,
                size=ref.size,
            )
            for rel, ref in self.content.put_tree(folder, progress=progress)
        ]
        self.store.record_artifacts(run_id, records)
        return records

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactFile]:
        """The run's files at ``path`` (a file) or under it (a folder); all for ``""``."""
        files = self.store.list_artifacts(run_id, path)
        if not path:
            return files
        folder = path.rstrip("/") + "/"
        return [f for f in files if f.path == path.rstrip("/") or f.path.startswith(folder)]

    def download_artifacts(
        self,
        run_id: str,
        path: str = "",
        dest: str | Path = ".",
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Path]:
        """Copy the run's files at or under ``path`` into ``dest`` (hashes verified on read),
        keeping their paths relative to the folder of ``path``; returns the files written."""
        from keel.artifacts import safe_relpath

        files = self.list_artifacts(run_id, path)
        if path and not files:
            raise InvalidInput(f"run {run_id} has no artifact at {path!r}", field="path")
        root = Path(dest)
        strip = posixpath.dirname(path.rstrip("/")) if path else ""
        written: list[Path] = []
        for item in files:
            rel = safe_relpath(posixpath.relpath(item.path, strip) if strip else item.path)
            target = root.joinpath(*rel.split("/"))
            self.content.get_file(item.digest, target, progress=progress)
            written.append(target)
        return written

    def after_fork(self) -> None:
        """In a forked child: no heartbeats are inherited (the parent keeps beating)."""
        self._heartbeat.after_fork()
        self.probes = DirtyProbes()  # the parent's git processes: the parent records them
        self._open_lock = threading.Lock()

    def close(self) -> None:
        """Flush queued metrics and release connections."""
        try:
            if self._writer is not None:
                self._writer.close(self._settings.flush_timeout_s)
        finally:
            if self._store is not None:
                self._store.close()
            if self._content is not None:
                self._content.backend.close()
