"""``HttpTrackingStore``: the tracking store of a team server, spoken to over HTTP.

``open_store("http(s)://host:port")`` returns one. Every method is one request to the server's
``/api/v1`` tracking routes (``keel.server.routes.tracking``), which call the server's SQL store;
the records and errors that come back are the ones the SQL store returns and raises. Create and
batch calls carry an ``Idempotency-Key``, so a retry after a lost answer is never applied twice;
``log_batch`` is one request per batch (the ``MetricWriter`` batches points before calling it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote

from keel._http import ServerBacked
from keel.errors import InvalidInput
from keel.tracking import _wire
from keel.tracking._base import TrackingStore
from keel.tracking._records import (
    ArtifactFile,
    Metric,
    Page,
    Project,
    Run,
    RunEnv,
    RunIO,
    RunStatus,
)
from keel.tracking._sql_validate import run_id as check_run_id

API = "/api/v1"


def _segment(value: object, field: str) -> str:
    """``value`` as one URL path segment. Names travel in the path only as text; anything the
    path cannot carry is refused here with the error the store would raise."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, got {type(value).__name__}", field=field)
    if not value.strip():
        raise InvalidInput("must not be empty", field=field)
    return quote(value, safe="")


def _run(run_id: object) -> str:
    return f"{API}/runs/{check_run_id(run_id)}"


class HttpTrackingStore(ServerBacked, TrackingStore):
    """The tracking store behind the Keel server at ``url`` (token: ``KEEL_TOKEN``)."""

    # -- projects --------------------------------------------------------------------------

    def create_project(self, name: str, *, description: str = "") -> Project:
        body = {"name": name, "description": description}
        got = self.http.call("POST", f"{API}/projects", body=body, idempotent_create=True)
        return _wire.project_from_wire(got)

    def get_project(self, name: str, *, create: bool = False) -> Project:
        path = f"{API}/projects/{_segment(name, 'name')}"
        got = self.http.call("PUT" if create else "GET", path)
        return _wire.project_from_wire(got)

    def list_projects(self) -> list[Project]:
        got = self.http.call("GET", f"{API}/projects")
        return [_wire.project_from_wire(p) for p in got["projects"]]

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        project: str,
        name: str | None = None,
        parent_id: str | None = None,
        env: RunEnv | None = None,
        tags: Mapping[str, str] | None = None,
        start_ms: int | None = None,
        run_id: str | None = None,
    ) -> Run:
        body = {
            "name": name,
            "parent_id": parent_id,
            "env": None if env is None else _wire.env_to_wire(env),
            "tags": None if tags is None else dict(tags),
            "start_ms": start_ms,
            "run_id": run_id,
        }
        path = f"{API}/projects/{_segment(project, 'project')}/runs"
        return _wire.run_from_wire(self.http.call("POST", path, body=body, idempotent_create=True))

    def get_run(self, run_id: str) -> Run:
        return _wire.run_from_wire(self.http.call("GET", _run(run_id)))

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_ms: int | None = None,
        name: str | None = None,
        note: str | None = None,
        heartbeat_ms: int | None = None,
        git_dirty: bool | None = None,
        metrics: Sequence[Metric] = (),
    ) -> None:
        given = {
            "status": None if status is None else str(status),
            "end_ms": end_ms,
            "name": name,
            "note": note,
            "heartbeat_ms": heartbeat_ms,
            "git_dirty": git_dirty,
        }
        body: dict[str, object] = {k: v for k, v in given.items() if v is not None}
        if metrics:
            body["metrics"] = _wire.metrics_to_wire(metrics)
        # Points make the call a batch: keyed, so a retry does not store them twice.
        self.http.call("PATCH", _run(run_id), body=body, idempotent_create=bool(metrics))

    def delete_run(self, run_id: str, *, hard: bool = False) -> None:
        if hard:
            self.http.call("POST", f"{_run(run_id)}/purge", idempotent_create=True)
        else:
            self.http.call("DELETE", _run(run_id))

    def search_runs(
        self,
        *,
        projects: Sequence[str] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        body = {
            "projects": None if projects is None else list(projects),
            "filter": filter,
            "order_by": list(order_by),
            "max_results": max_results,
            "page_token": page_token,
            "include_deleted": include_deleted,
        }
        return _wire.page_from_wire(self.http.call("POST", f"{API}/runs/search", body=body))

    def fail_stale_runs(self, *, now_ms: int, timeout_ms: int) -> list[str]:
        body = {"now_ms": now_ms, "timeout_ms": timeout_ms}
        got = self.http.call("POST", f"{API}/runs/fail-stale", body=body, idempotent_create=True)
        return list(got["run_ids"])

    # -- logging ---------------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        body: dict[str, object] = {}
        if metrics:
            body["metrics"] = _wire.metrics_to_wire(metrics)
        if params is not None:
            body["params"] = params if isinstance(params, Mapping) else list(params)
        if tags is not None:
            body["tags"] = tags if isinstance(tags, Mapping) else list(tags)
        self.http.call(
            "POST", f"{_run(run_id)}/batch", body=body, idempotent_create=True, field="metrics"
        )

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        got = self.http.call("GET", f"{_run(run_id)}/metric-history", params={"key": key})
        return list(_wire.metrics_from_wire(got))

    def log_io(self, run_id: str, items: Iterable[RunIO]) -> None:
        body = {"items": [_wire.io_to_wire(i) for i in items]}
        self.http.call("POST", f"{_run(run_id)}/io", body=body, idempotent_create=True)

    def runs_using(self, ref: str, *, kind: str = "dataset", direction: str = "input") -> list[str]:
        params = {"ref": ref, "kind": kind, "direction": direction}
        return list(self.http.call("GET", f"{API}/lineage", params=params)["run_ids"])

    def record_artifacts(self, run_id: str, files: Iterable[ArtifactFile]) -> None:
        body = {"files": _wire.files_to_wire(list(files))}
        self.http.call("POST", f"{_run(run_id)}/artifact-files", body=body, idempotent_create=True)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactFile]:
        got = self.http.call("GET", f"{_run(run_id)}/artifact-files", params={"prefix": prefix})
        return _wire.files_from_wire(got["files"])

    def referenced_digests(self) -> Iterator[str]:
        yield from self.http.call("GET", f"{API}/artifacts/referenced-digests")["digests"]
