"""The one conformance suite every ``TrackingStore`` passes (SQLite, PostgreSQL, HTTP client).

Subclass it in a test module and provide a ``store`` fixture yielding an empty store::

    class TestMyStore(TrackingStoreConformance):
        @pytest.fixture
        def store(self, tmp_path): ...

The exhaustive tests of the search language live with the search code; this suite checks that
search is wired to the store (a few filters, ordering, paging, projects, deleted runs).
"""

from __future__ import annotations

import pytest

from keel import _time
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.testing._tracking_conformance_log import LoggingConformance
from keel.tracking._base import TrackingStore
from keel.tracking._records import ArtifactFile, Metric, RunEnv, RunStatus


class ProjectAndRunConformance:
    """Projects and the run life cycle."""

    def test_create_and_get_project(self, store: TrackingStore) -> None:
        made = store.create_project("churn", description="who leaves")
        assert (made.name, made.description) == ("churn", "who leaves")
        assert store.get_project("churn") == made
        assert made.created_ms > 0

    def test_create_project_twice_is_already_exists(self, store: TrackingStore) -> None:
        store.create_project("churn")
        with pytest.raises(AlreadyExists, match="churn"):
            store.create_project("churn")

    def test_get_missing_project_is_not_found_unless_create(self, store: TrackingStore) -> None:
        with pytest.raises(NotFound, match="nope"):
            store.get_project("nope")
        first = store.get_project("nope", create=True)
        assert store.get_project("nope", create=True) == first
        assert [p.name for p in store.list_projects()] == ["nope"]

    def test_list_projects_by_name(self, store: TrackingStore) -> None:
        for name in ("b", "a", "C"):
            store.create_project(name)
        assert [p.name for p in store.list_projects()] == ["C", "a", "b"]

    @pytest.mark.parametrize("bad", ["", "   ", "x" * 251, "a\x00b", "tab\there", 7])
    def test_bad_project_name_is_invalid_input(self, store: TrackingStore, bad: object) -> None:
        with pytest.raises(InvalidInput) as info:
            store.create_project(bad)  # type: ignore[arg-type]
        assert info.value.field == "name"
        with pytest.raises(InvalidInput) as info:
            store.create_run(project=bad)  # type: ignore[arg-type]
        assert info.value.field == "project"

    def test_create_run_defaults(self, store: TrackingStore) -> None:
        before = _time.now_ms()
        run = store.create_run(project="churn")
        assert len(run.id) == 32 and int(run.id, 16) >= 0
        assert run.project == "churn" and run.name
        assert run.status is RunStatus.RUNNING and run.end_ms is None
        assert before <= run.start_ms <= _time.now_ms()
        assert run.heartbeat_ms == run.start_ms
        assert (run.params, run.metrics, run.tags, run.io, run.deleted) == ({}, {}, {}, (), False)
        assert store.get_project("churn").name == "churn"  # created on demand
        assert store.get_run(run.id) == run

    def test_create_run_keeps_everything_given(self, store: TrackingStore) -> None:
        env = RunEnv(
            user="ada",
            host="box",
            pid=42,
            git_commit="abc123",
            git_dirty=True,
            python_version="3.11.7",
            packages={"numpy": "2.1.0"},
        )
        run = store.create_run(
            project="p", name="first", env=env, tags={"team": "a"}, start_ms=1_000
        )
        got = store.get_run(run.id)
        assert got == run
        assert (got.name, got.start_ms, got.env, got.tags) == ("first", 1_000, env, {"team": "a"})

    def test_create_run_with_given_id_is_idempotent(self, store: TrackingStore) -> None:
        run_id = "0123456789abcdef0123456789abcdef"
        first = store.create_run(project="p", name="one", run_id=run_id, tags={"a": "1"})
        again = store.create_run(project="p", name="two", run_id=run_id, tags={"a": "2"})
        assert again == first == store.get_run(run_id)
        assert again.name == "one" and again.tags == {"a": "1"}
        elsewhere = store.create_run(project="q", run_id=run_id)  # no project "q" is needed
        assert elsewhere == first

    def test_nested_runs(self, store: TrackingStore) -> None:
        parent = store.create_run(project="p")
        child = store.create_run(project="p", parent_id=parent.id)
        assert store.get_run(child.id).parent_id == parent.id
        with pytest.raises(NotFound):
            store.create_run(project="p", parent_id="f" * 32)

    def test_get_missing_run_is_not_found(self, store: TrackingStore) -> None:
        with pytest.raises(NotFound):
            store.get_run("0" * 32)
        with pytest.raises(InvalidInput) as info:
            store.get_run("../etc/passwd")
        assert info.value.field == "run_id"

    def test_finish_run_sets_end_time(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        before = _time.now_ms()
        store.update_run(run.id, status=RunStatus.FINISHED)
        done = store.get_run(run.id)
        assert done.status is RunStatus.FINISHED
        assert done.end_ms is not None and before <= done.end_ms <= _time.now_ms()
        other = store.create_run(project="p")
        store.update_run(other.id, status=RunStatus.FAILED, end_ms=123)
        failed = store.get_run(other.id)
        assert (failed.status, failed.end_ms) == (RunStatus.FAILED, 123)

    def test_terminal_status_is_final(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.update_run(run.id, status=RunStatus.FINISHED, end_ms=5)
        done = store.get_run(run.id)
        with pytest.raises(Conflict):
            store.update_run(run.id, status=RunStatus.RUNNING)
        with pytest.raises(Conflict):
            store.update_run(run.id, status=RunStatus.FAILED)
        store.update_run(run.id, status=RunStatus.FINISHED)  # a retry is fine
        assert store.get_run(run.id) == done
        assert store.get_run(run.id).status is RunStatus.FINISHED

    def test_update_name_note_heartbeat(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.update_run(run.id, name="renamed", note="# notes", heartbeat_ms=99)
        got = store.get_run(run.id)
        assert (got.name, got.note, got.heartbeat_ms) == ("renamed", "# notes", 99)
        assert got.status is RunStatus.RUNNING
        with pytest.raises(NotFound):
            store.update_run("0" * 32, name="x")
        with pytest.raises(InvalidInput) as info:
            store.update_run(run.id, name="")
        assert info.value.field == "name"

    def test_git_dirty_found_after_the_start_is_recorded(self, store: TrackingStore) -> None:
        env = RunEnv(git_commit="abc123", git_dirty=None, packages={"numpy": "2.1.0"})
        run = store.create_run(project="p", env=env)
        store.update_run(run.id, heartbeat_ms=99, git_dirty=False)
        got = store.get_run(run.id)
        assert (got.env.git_commit, got.env.git_dirty, got.heartbeat_ms) == ("abc123", False, 99)
        other = store.create_run(project="p", env=env)
        store.update_run(other.id, status=RunStatus.FINISHED, git_dirty=True)
        assert store.get_run(other.id).env == RunEnv(
            git_commit="abc123", git_dirty=True, packages={"numpy": "2.1.0"}
        )
        store.update_run(other.id, name="kept")  # not given: unchanged
        assert store.get_run(other.id).env.git_dirty is True

    def test_soft_delete_hides_and_keeps(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.log_batch(run.id, params={"a": "1"})
        store.delete_run(run.id)
        got = store.get_run(run.id)
        assert got.deleted and got.params == {"a": "1"}

    def test_hard_delete_removes_and_orphans_children(self, store: TrackingStore) -> None:
        parent = store.create_run(project="p")
        child = store.create_run(project="p", parent_id=parent.id)
        store.log_batch(parent.id, metrics=[Metric("m", 1.0, 0, 1)], params={"a": "1"})
        store.record_artifacts(parent.id, [ArtifactFile("model.bin", "d-parent", 3)])
        store.delete_run(parent.id, hard=True)
        with pytest.raises(NotFound):
            store.get_run(parent.id)
        with pytest.raises(NotFound):
            store.metric_history(parent.id, "m")
        assert store.get_run(child.id).parent_id is None
        assert "d-parent" not in set(store.referenced_digests())
        with pytest.raises(NotFound):
            store.delete_run(parent.id)

    def test_fail_stale_runs(self, store: TrackingStore) -> None:
        stale = store.create_run(project="p", start_ms=1_000)
        fresh = store.create_run(project="p", start_ms=1_000)
        store.update_run(fresh.id, heartbeat_ms=9_500)
        ended = store.create_run(project="p", start_ms=1_000)
        store.update_run(ended.id, status=RunStatus.FINISHED, end_ms=2_000)
        assert store.fail_stale_runs(now_ms=10_000, timeout_ms=1_000) == [stale.id]
        got = store.get_run(stale.id)
        assert (got.status, got.end_ms) == (RunStatus.FAILED, 10_000)
        assert store.get_run(fresh.id).status is RunStatus.RUNNING
        assert store.get_run(ended.id).status is RunStatus.FINISHED
        assert store.fail_stale_runs(now_ms=10_000, timeout_ms=1_000) == []


class SearchConformance:
    """Search is wired to the store; the language itself is tested with its compiler."""

    def _three(self, store: TrackingStore) -> list[str]:
        ids = []
        for i, auc in enumerate((0.7, 0.9, 0.8)):
            run = store.create_run(project="p", name=f"r{i}", start_ms=1_000 + i)
            store.log_batch(
                run.id,
                metrics=[Metric("auc", auc, 0, 1)],
                params={"model": "tree" if i else "linear"},
            )
            ids.append(run.id)
        return ids

    def test_filter_and_order(self, store: TrackingStore) -> None:
        ids = self._three(store)
        store.create_run(project="other")
        page = store.search_runs(
            projects=["p"], filter="metrics.auc > 0.75", order_by=["-metrics.auc"]
        )
        assert [r.id for r in page.items] == [ids[1], ids[2]]
        assert page.next_token is None
        assert page.items[0].metrics == {"auc": 0.9} and page.items[0].params == {"model": "tree"}
        tree = store.search_runs(filter="params.model = 'tree'")
        assert {r.id for r in tree.items} == {ids[1], ids[2]}
        assert len(store.search_runs().items) == 4

    def test_paging_returns_each_run_once(self, store: TrackingStore) -> None:
        made = {store.create_run(project="p", start_ms=i).id for i in range(7)}
        seen: list[str] = []
        token = None
        for _ in range(10):
            page = store.search_runs(projects=["p"], max_results=3, page_token=token)
            assert len(page.items) <= 3
            seen += [r.id for r in page.items]
            token = page.next_token
            if token is None:
                break
        assert sorted(seen) == sorted(made)

    def test_deleted_runs_hidden_unless_asked(self, store: TrackingStore) -> None:
        ids = self._three(store)
        store.delete_run(ids[0])
        assert {r.id for r in store.search_runs().items} == set(ids[1:])
        assert {r.id for r in store.search_runs(include_deleted=True).items} == set(ids)

    def test_unknown_project_and_bad_arguments(self, store: TrackingStore) -> None:
        with pytest.raises(NotFound, match="ghost"):
            store.search_runs(projects=["ghost"])
        with pytest.raises(InvalidInput) as info:
            store.search_runs(max_results=0)
        assert info.value.field == "max_results"
        with pytest.raises(InvalidInput) as info:
            store.search_runs(filter="metrics.auc >")
        assert info.value.field == "filter"


class TrackingStoreConformance(ProjectAndRunConformance, LoggingConformance, SearchConformance):
    """Everything a tracking store promises (see ``keel.tracking._base``)."""


__all__ = ["TrackingStoreConformance"]
