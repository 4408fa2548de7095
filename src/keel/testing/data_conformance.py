"""The one conformance suite for dataset versions (SQLite, PostgreSQL, later the HTTP client),
on every artifact backend.

Subclass ``DataConformance`` in a test module and provide two fixtures: ``store`` (an empty
``DataStore``) and ``datasets`` (a ``Datasets`` over that store and a content store)::

    class TestMine(DataConformance):
        @pytest.fixture
        def store(self): ...
        @pytest.fixture
        def datasets(self, store): ...
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keel.data._base import DataStore
from keel.data._datasets import Datasets
from keel.data._records import NewVersion
from keel.errors import InvalidInput, NotFound


def _new(name: str, digest: str, **extra: object) -> NewVersion:
    return NewVersion(name=name, digest=digest, kind="table", size=1, objects=(digest,), **extra)  # type: ignore[arg-type]


class StoreConformance:
    """The metadata contract on its own (no bytes)."""

    def test_numbers_refs_tags_and_soft_delete(self, store: DataStore) -> None:
        v1 = store.create_version(_new("churn", "d1", description="first"))
        v2 = store.create_version(_new("churn", "d2"))
        assert (v1.ref, v2.ref, v1.existed) == ("churn@v1", "churn@v2", False)
        assert store.resolve("churn") == v2 == store.resolve("churn@latest")
        assert store.resolve("churn@v1").description == "first"
        assert store.set_tag("churn@v1", "prod").tags == ("prod",)
        assert store.resolve("churn@prod").version == 1
        store.set_tag("churn@v2", "prod")  # a tag moves
        assert store.resolve("churn@prod").version == 2
        assert store.resolve("churn@v1").tags == ()
        store.delete_version("churn@v2")
        assert store.resolve("churn").version == 1
        with pytest.raises(NotFound):
            store.resolve("churn@v2")
        with pytest.raises(NotFound):
            store.resolve("churn@prod")  # the tags of a deleted version go with it
        assert [v.ref for v in store.list_versions()] == ["churn@v1"]
        v3 = store.create_version(_new("churn", "d3"))
        assert v3.version == 3  # numbers are never reused

    def test_same_digest_as_latest_creates_nothing(self, store: DataStore) -> None:
        store.create_version(_new("a", "d1"))
        again = store.create_version(_new("a", "d1"))
        assert again.existed and again.version == 1
        assert store.create_version(_new("a", "d2")).version == 2

    def test_missing_and_bad_refs(self, store: DataStore) -> None:
        with pytest.raises(NotFound):
            store.resolve("nope")
        store.create_version(_new("a", "d1"))
        with pytest.raises(NotFound):
            store.resolve("a@v9")
        with pytest.raises(NotFound):
            store.resolve("a@nosuchtag")
        for bad in ("a/b", "../x", "a b", "", "a@", "@v1"):
            with pytest.raises(InvalidInput):
                store.resolve(bad)
        for bad_tag in ("latest", "v2", "x/y"):
            with pytest.raises(InvalidInput) as info:
                store.set_tag("a@v1", bad_tag)
            assert info.value.field == "tag"

    def test_referenced_digests_skip_deleted(self, store: DataStore) -> None:
        store.create_version(
            NewVersion(name="f", digest="m1", kind="folder", size=2, objects=("x", "y"))
        )
        store.create_version(_new("g", "d9"))
        assert set(store.referenced_digests()) == {"m1", "x", "y", "d9"}
        store.delete_version("g")
        assert set(store.referenced_digests()) == {"m1", "x", "y"}

    def test_concurrent_creates_get_consecutive_numbers(self, store: DataStore) -> None:
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                store.create_version(_new("race", f"d{i}"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sorted(v.version for v in store.list_versions("race")) == list(range(1, 9))

    def test_contracts_are_versioned(self, store: DataStore) -> None:
        assert store.save_contract("churn", "columns: {}") == 1
        assert store.save_contract("churn", "columns: {a: int}") == 2
        assert store.get_contract("churn") == (2, "columns: {a: int}")
        assert store.get_contract("churn", 1) == (1, "columns: {}")
        with pytest.raises(NotFound):
            store.get_contract("churn", 3)
        with pytest.raises(NotFound):
            store.get_contract("other")
        with pytest.raises(InvalidInput):
            store.save_contract("a/b", "x")

    def test_concurrent_contract_saves(self, store: DataStore) -> None:
        got: list[int] = []
        threads = [
            threading.Thread(target=lambda: got.append(store.save_contract("c", "t")))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(1, 7))


class DatasetsConformance:
    """Adding and reading versions with their bytes."""

    def test_csv_round_trip_and_dedup(self, datasets: Datasets, tmp_path: Path) -> None:
        src = tmp_path / "churn.csv"
        src.write_text("id,age,plan\n1,30,a\n2,,b\n3,50,a\n")
        v1 = datasets.add(src, name="churn", key="id", tags=["prod"])
        assert (v1.ref, v1.rows, v1.kind, v1.existed, v1.tags) == (
            "churn@v1",
            3,
            "table",
            False,
            ("prod",),
        )
        assert [c for c, _ in v1.schema] == ["id", "age", "plan"]
        assert dict(v1.schema)["id"] == "int64" and dict(v1.schema)["age"] == "int64"
        assert v1.profile["columns"]["age"]["null_share"] == pytest.approx(1 / 3)
        again = datasets.add(src, name="churn", key="id")
        assert again.existed and again.ref == "churn@v1"
        frame = datasets.get("churn@prod")
        assert list(frame["id"]) == [1, 2, 3]
        table = datasets.get("churn", as_="arrow")
        assert table.num_rows == 3
        path = datasets.get("churn@v1", as_="path", dest=tmp_path / "out.parquet")
        assert path.exists()
        assert datasets.content.exists(v1.digest)
        assert v1.digest in set(datasets.store.referenced_digests())

    def test_folder_stores_one_new_file_per_change(
        self, datasets: Datasets, tmp_path: Path
    ) -> None:
        root = tmp_path / "imgs"
        (root / "sub").mkdir(parents=True)
        for i in range(5):
            (root / "sub" / f"{i}.txt").write_text(f"file {i}")
        (root / "empty.txt").write_bytes(b"")
        v1 = datasets.add(root, name="imgs")
        assert (v1.kind, v1.files) == ("folder", 6)
        before = {o.digest for o in datasets.content.iter_objects()}
        (root / "sub" / "3.txt").write_text("changed")
        v2 = datasets.add(root, name="imgs")
        after = {o.digest for o in datasets.content.iter_objects()}
        assert v2.version == 2 and len(after - before) == 2  # the new file and the manifest
        d = datasets.diff("imgs@v1", "imgs@v2")
        assert d.files_changed == ("sub/3.txt",) and not d.files_added
        out = datasets.get("imgs@v1", dest=tmp_path / "restored")
        assert (out / "sub" / "3.txt").read_text() == "file 3"
        assert datasets.add(root, name="imgs").existed

    def test_diff_by_key(self, datasets: Datasets) -> None:
        import pandas as pd

        datasets.add(pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0]}), name="t", key="id")
        datasets.add(
            pd.DataFrame({"id": [2, 3, 4], "x": [2.0, 30.0, 4.0], "y": ["a", "b", "c"]}),
            name="t",
            key="id",
        )
        d = datasets.diff("t@v1", "t@v2")
        assert (d.rows_added, d.rows_removed, d.rows_changed) == (1, 1, 1)
        assert d.columns_added == ("y",) and not d.columns_removed
        assert "x" in d.column_shifts and not d.same

    def test_bad_input_leaves_no_version(self, datasets: Datasets, tmp_path: Path) -> None:
        import pandas as pd

        bad_utf8 = tmp_path / "latin1.csv"
        bad_utf8.write_bytes("name\ncaf\xe9\n".encode("latin-1"))
        with pytest.raises(InvalidInput, match=r"latin1\.csv"):
            datasets.add(bad_utf8, name="x")
        empty = tmp_path / "empty.csv"
        empty.write_bytes(b"")
        with pytest.raises(InvalidInput, match="empty"):
            datasets.add(empty, name="x")
        with pytest.raises(InvalidInput) as info:
            datasets.add(pd.DataFrame({"ok": [1, 2], "mixed": [1, "a"]}), name="x")
        assert info.value.field == "mixed"
        with pytest.raises(InvalidInput) as info:
            datasets.add(pd.DataFrame({"a": [1]}), name="../etc")
        assert info.value.field == "name"
        with pytest.raises(NotFound):
            datasets.add(tmp_path / "missing.csv", name="x")
        with pytest.raises(InvalidInput):
            datasets.add(pd.DataFrame(), name="x")
        assert datasets.ls() == []

    def test_zero_row_frame_keeps_its_schema(self, datasets: Datasets) -> None:
        import pandas as pd

        v = datasets.add(pd.DataFrame({"a": pd.Series([], dtype="int64")}), name="empty")
        assert v.rows == 0 and dict(v.schema) == {"a": "int64"}
        assert len(datasets.get("empty")) == 0


class DataConformance(StoreConformance, DatasetsConformance):
    """Everything a data backend must do."""
