"""``OpeningStore``: the data store opened in a background thread while an add gets on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keel.artifacts import open_content_store
from keel.data._base import DataStore
from keel.data._datasets import Datasets
from keel.data._opening import OpeningStore
from keel.data._sql import SqlDataStore
from keel.errors import NotFound, StoreError


def test_an_add_through_an_opening_store_is_recorded(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.bin").write_bytes(b"one")
    (folder / "2.bin").write_bytes(b"two")
    datasets = Datasets(
        OpeningStore(lambda: SqlDataStore(sqlite_url)), open_content_store(str(tmp_path / "art"))
    )
    v1 = datasets.add(folder, name="images")
    assert (v1.version, v1.files, v1.existed) == (1, 2, False)
    assert datasets.add(folder, name="images").existed
    # Everything reached the database: a plain store sees it.
    again = SqlDataStore(sqlite_url)
    assert again.resolve("images@v1").digest == v1.digest
    assert [v.ref for v in again.list_versions("images")] == ["images@v1"]
    assert set(again.referenced_digests()) == set(datasets.store.referenced_digests())
    assert datasets.store.save_contract("images", "columns: {}\n") == 1
    assert datasets.store.get_contract("images") == (1, "columns: {}\n")
    tagged = datasets.store.set_tag("images@v1", "prod")
    assert datasets.store.resolve("images@prod").digest == tagged.digest
    assert datasets.store.find_by_source("images", "blake3:none") is None
    datasets.store.delete_version("images@v1")
    with pytest.raises(NotFound):
        again.resolve("images@v1")
    datasets.store.close()


def test_warm_up_opens_the_store_while_the_caller_works(sqlite_url: str) -> None:
    opening_started = threading.Event()
    release = threading.Event()

    def slow_open() -> DataStore:
        opening_started.set()
        assert release.wait(30)
        return SqlDataStore(sqlite_url)

    store = OpeningStore(slow_open)
    assert not opening_started.is_set()  # nothing starts before warm_up
    store.warm_up()
    # warm_up returned while the store is still opening: the caller was not held up.
    assert opening_started.wait(30)
    assert not release.is_set()
    store.warm_up()  # a second hint starts nothing more
    release.set()
    assert store.list_versions() == []


def test_without_warm_up_the_store_opens_in_the_callers_thread(sqlite_url: str) -> None:
    threads: list[threading.Thread] = []

    def open_here() -> DataStore:
        threads.append(threading.current_thread())
        return SqlDataStore(sqlite_url)

    store = OpeningStore(open_here)
    assert store.list_versions() == []
    store.warm_up()  # already open: nothing to start
    assert store.list_versions() == []
    assert threads == [threading.current_thread()]


def test_a_failed_open_is_raised_once_then_retried(sqlite_url: str) -> None:
    attempts: list[int] = []

    def flaky_open() -> DataStore:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise StoreError("metadata store: cannot open (the database was not there yet)")
        return SqlDataStore(sqlite_url)

    store = OpeningStore(flaky_open)
    store.warm_up()
    with pytest.raises(StoreError, match="not there yet"):
        store.list_versions()
    assert store.list_versions() == []
    assert len(attempts) == 2
