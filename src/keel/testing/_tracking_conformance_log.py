"""The logging half of the tracking conformance suite: metrics, params, tags, lineage, files."""

from __future__ import annotations

import math

import pytest

from keel.errors import Conflict, InvalidInput, NotFound, ParamConflict, UnsafePath
from keel.tracking._base import TrackingStore
from keel.tracking._records import ArtifactFile, Metric, RunIO, RunStatus


def _points(key: str, *steps: int) -> list[Metric]:
    return [Metric(key, float(step), step, 1_000 + step) for step in steps]


class LoggingConformance:
    def test_metric_history_is_ordered_by_step_then_time(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.log_batch(run.id, metrics=[Metric("loss", 3.0, 2, 10), Metric("loss", 1.0, 0, 30)])
        store.log_batch(run.id, metrics=[Metric("loss", 2.0, 1, 5), Metric("loss", 2.5, 1, 4)])
        store.log_batch(run.id, metrics=[Metric("acc", 0.5, 0, 1)])
        history = store.metric_history(run.id, "loss")
        assert [(m.step, m.timestamp_ms, m.value) for m in history] == [
            (0, 30, 1.0),
            (1, 4, 2.5),
            (1, 5, 2.0),
            (2, 10, 3.0),
        ]
        assert all(m.key == "loss" for m in history)
        assert store.metric_history(run.id, "never") == []
        with pytest.raises(NotFound):
            store.metric_history("0" * 32, "loss")

    def test_every_point_is_kept_even_duplicates(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        point = Metric("m", 1.0, 0, 1)
        store.log_batch(run.id, metrics=[point, point])
        store.log_batch(run.id, metrics=[point])
        assert store.metric_history(run.id, "m") == [point, point, point]

    def test_latest_metric_is_greatest_step_then_timestamp(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.log_batch(run.id, metrics=[Metric("m", 5.0, 5, 100), Metric("m", 9.0, 3, 999)])
        assert store.get_run(run.id).metrics == {"m": 5.0}
        store.log_batch(run.id, metrics=[Metric("m", 4.0, 4, 2_000)])  # older step, later time
        assert store.get_run(run.id).metrics == {"m": 5.0}
        store.log_batch(run.id, metrics=[Metric("m", 6.0, 5, 101)])  # same step, later time
        assert store.get_run(run.id).metrics == {"m": 6.0}
        store.log_batch(run.id, metrics=[Metric("m", 7.0, 5, 50)])  # same step, earlier time
        assert store.get_run(run.id).metrics == {"m": 6.0}
        store.log_batch(run.id, metrics=[Metric("m", -1.0, 6, 0), Metric("n", 1.0, 0, 0)])
        assert store.get_run(run.id).metrics == {"m": -1.0, "n": 1.0}

    def test_nan_and_infinity_round_trip(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        points = [
            Metric("x", math.nan, 0, 1),
            Metric("x", math.inf, 1, 1),
            Metric("x", -math.inf, 2, 1),
            Metric("x", 7, 3, 1),  # an int is a number too
        ]
        store.log_batch(run.id, metrics=points[:3])
        assert math.isinf(store.get_run(run.id).metrics["x"])
        store.log_batch(run.id, metrics=[Metric("y", math.nan, 0, 1)])
        assert math.isnan(store.get_run(run.id).metrics["y"])
        store.log_batch(run.id, metrics=points[3:])
        values = [m.value for m in store.metric_history(run.id, "x")]
        assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 7.0]
        assert isinstance(values[3], float)

    def test_params_are_write_once(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.log_batch(run.id, params={"lr": "0.1", "depth": "3"})
        store.log_batch(run.id, params={"lr": "0.1"})  # same value again is fine
        with pytest.raises(ParamConflict) as info:
            store.log_batch(
                run.id,
                metrics=_points("loss", 0, 1),
                params={"new": "1", "lr": "0.2"},
                tags={"t": "v"},
            )
        assert info.value.field == "params.lr" and "lr" in str(info.value)
        assert isinstance(info.value, InvalidInput)
        got = store.get_run(run.id)  # nothing of the failed batch was stored
        assert got.params == {"depth": "3", "lr": "0.1"}
        assert (got.metrics, got.tags) == ({}, {})
        assert store.metric_history(run.id, "loss") == []

    def test_tags_are_upserted(self, store: TrackingStore) -> None:
        run = store.create_run(project="p", tags={"a": "1"})
        store.log_batch(run.id, tags={"a": "2", "b": ""})
        assert store.get_run(run.id).tags == {"a": "2", "b": ""}

    def test_logging_to_an_ended_run(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.update_run(run.id, status=RunStatus.FINISHED)
        with pytest.raises(Conflict):
            store.log_batch(run.id, metrics=_points("m", 0))
        with pytest.raises(Conflict):
            store.log_batch(run.id, params={"a": "1"})
        store.log_batch(run.id, tags={"reviewed": "yes"})  # tags stay editable
        got = store.get_run(run.id)
        assert (got.metrics, got.params, got.tags) == ({}, {}, {"reviewed": "yes"})

    def test_log_batch_to_missing_run(self, store: TrackingStore) -> None:
        with pytest.raises(NotFound):
            store.log_batch("0" * 32, metrics=_points("m", 0))
        with pytest.raises(NotFound):
            store.log_batch("0" * 32)

    @pytest.mark.parametrize(
        ("metrics", "params", "field"),
        [
            ([Metric("", 1.0, 0, 1)], None, "metrics.key"),
            ([Metric("k" * 251, 1.0, 0, 1)], None, "metrics.key"),
            ([Metric("a\nb", 1.0, 0, 1)], None, "metrics.key"),
            ([Metric("m", "1", 0, 1)], None, "metrics.value"),  # type: ignore[arg-type]
            ([Metric("m", True, 0, 1)], None, "metrics.value"),
            ([Metric("m", 1.0, 1.5, 1)], None, "metrics.step"),  # type: ignore[arg-type]
            ([Metric("m", 1.0, 2**63, 1)], None, "metrics.step"),
            ([Metric("m", 1.0, 0, -1)], None, "metrics.timestamp_ms"),
            ([], {"": "x"}, "params.key"),
            ([], {"k": "v" * 8001}, "params.k"),
            ([], {"k": 3}, "params.k"),
        ],
    )
    def test_invalid_batch_names_the_field_and_stores_nothing(
        self, store: TrackingStore, metrics: list[Metric], params: dict[str, str] | None, field: str
    ) -> None:
        run = store.create_run(project="p")
        with pytest.raises(InvalidInput) as info:
            store.log_batch(run.id, metrics=[*_points("ok", 0), *metrics], params=params)
        assert info.value.field == field
        assert store.metric_history(run.id, "ok") == []

    def test_limits_are_accepted_exactly(self, store: TrackingStore) -> None:
        run = store.create_run(project="p", name="n" * 250)
        store.log_batch(
            run.id,
            metrics=[Metric("k" * 250, 1.0, -(2**63), 0), Metric("k" * 250, 2.0, 2**63 - 1, 0)],
            params={"p" * 250: "v" * 8000},
            tags={"t": "é" * 8000},
        )
        got = store.get_run(run.id)
        assert got.metrics == {"k" * 250: 2.0} and got.params == {"p" * 250: "v" * 8000}
        assert got.tags == {"t": "é" * 8000} and got.name == "n" * 250

    def test_inputs_outputs_and_lineage(self, store: TrackingStore) -> None:
        first = store.create_run(project="p", start_ms=1)
        second = store.create_run(project="p", start_ms=2)
        data = RunIO("churn@v3", digest="b3:abc")
        store.log_io(first.id, [data, RunIO("model@1", kind="model", direction="output")])
        store.log_io(first.id, [data])  # idempotent
        store.log_io(second.id, [data])
        assert store.get_run(first.id).io == (
            data,
            RunIO("model@1", kind="model", direction="output"),
        )
        assert store.runs_using("churn@v3") == [first.id, second.id]
        assert store.runs_using("model@1", kind="model", direction="output") == [first.id]
        assert store.runs_using("model@1", kind="model") == []
        store.delete_run(second.id)
        assert store.runs_using("churn@v3") == [first.id]
        assert "b3:abc" in set(store.referenced_digests())
        with pytest.raises(InvalidInput) as info:
            store.log_io(first.id, [RunIO("x", direction="sideways")])
        assert info.value.field == "io.direction"
        with pytest.raises(NotFound):
            store.log_io("0" * 32, [data])

    def test_artifacts_by_path_and_prefix(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        files = [
            ArtifactFile("models/b.onnx", "d2", 20),
            ArtifactFile("models/a.json", "d1", 10),
            ArtifactFile("models2/c.txt", "d3", 30),
            ArtifactFile("report.html", "d4", 40),
        ]
        store.record_artifacts(run.id, files)
        assert [f.path for f in store.list_artifacts(run.id)] == [
            "models/a.json",
            "models/b.onnx",
            "models2/c.txt",
            "report.html",
        ]
        assert store.list_artifacts(run.id, "models") == [files[1], files[0]]
        assert store.list_artifacts(run.id, "models/") == [files[1], files[0]]
        assert store.list_artifacts(run.id, "report.html") == [files[3]]
        assert store.list_artifacts(run.id, "mod") == []
        store.record_artifacts(run.id, [ArtifactFile("report.html", "d5", 50)])  # replaces
        assert store.list_artifacts(run.id, "report.html") == [
            ArtifactFile("report.html", "d5", 50)
        ]
        digests = set(store.referenced_digests())
        assert {"d1", "d2", "d3", "d5"} <= digests and "d4" not in digests
        with pytest.raises(NotFound):
            store.list_artifacts("0" * 32)

    @pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a\x00b", "a\\b", ""])
    def test_unsafe_artifact_paths(self, store: TrackingStore, path: str) -> None:
        run = store.create_run(project="p")
        with pytest.raises(InvalidInput) as info:
            store.record_artifacts(run.id, [ArtifactFile(path, "d", 1)])
        assert info.value.field == "files.path"
        assert path == "" or isinstance(info.value, UnsafePath)
        assert store.list_artifacts(run.id) == []

    def test_ending_a_run_with_its_last_points(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        store.log_batch(run.id, metrics=_points("loss", 0))
        store.update_run(run.id, status=RunStatus.FINISHED, end_ms=7, metrics=_points("loss", 1, 2))
        got = store.get_run(run.id)
        assert (got.status, got.end_ms, got.metrics) == (RunStatus.FINISHED, 7, {"loss": 2.0})
        assert [m.step for m in store.metric_history(run.id, "loss")] == [0, 1, 2]

    def test_points_that_cannot_be_stored_do_not_end_the_run(self, store: TrackingStore) -> None:
        run = store.create_run(project="p")
        with pytest.raises(InvalidInput) as info:
            store.update_run(
                run.id, status=RunStatus.FINISHED, metrics=[*_points("ok", 0), Metric("", 1, 0, 1)]
            )
        assert info.value.field == "metrics.key"
        got = store.get_run(run.id)
        assert (got.status, got.metrics) == (RunStatus.RUNNING, {})
        store.update_run(run.id, status=RunStatus.FINISHED)
        with pytest.raises(Conflict):  # points go to a run that is still running, as log_batch
            store.update_run(run.id, status=RunStatus.FINISHED, metrics=_points("late", 0))
        assert store.metric_history(run.id, "late") == []
        with pytest.raises(NotFound):
            store.update_run("0" * 32, status=RunStatus.FINISHED, metrics=_points("m", 0))
