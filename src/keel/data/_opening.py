"""``OpeningStore``: a data store that opens in a background thread while the caller gets on
with the work that needs no metadata.

Opening the SQL store costs a fresh process ~0.3 s (importing SQLAlchemy, connecting, checking
the schema's revision), and adding a folder needs the store only at the end, to record the
version: its files are hashed and stored meanwhile. The thread starts at ``warm_up()``, which
``Datasets.add`` calls once its own Python work is done (an import competing for the GIL would
slow the listing of the files); a store used without it opens in the caller's thread. Every
method waits for the store; if opening failed, the first call raises that error and later
calls try to open it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from keel.data._base import DataStore
from keel.data._records import DatasetVersion, NewVersion


class OpeningStore(DataStore):
    """The store ``open_store()`` returns, opened at ``warm_up()`` in a background thread or at
    first use."""

    def __init__(self, open_store: Callable[[], DataStore]) -> None:
        self._open_store = open_store
        self._store: DataStore | None = None
        self._error: Exception | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def warm_up(self) -> None:
        with self._lock:
            if self._store is None and self._thread is None:
                self._thread = threading.Thread(
                    target=self._open, name="keel-open-store", daemon=True
                )
                self._thread.start()

    def _open(self) -> None:
        try:
            self._store = self._open_store()
        except Exception as exc:  # noqa: BLE001 - raised to the caller by _opened
            self._error = exc

    def _opened(self) -> DataStore:
        store = self._store
        if store is not None:
            return store
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            if self._store is None:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                # Never warmed up, or the background attempt failed and was reported: open here.
                self._store = self._open_store()
            return self._store

    def create_version(self, new: NewVersion) -> DatasetVersion:
        return self._opened().create_version(new)

    def resolve(self, ref: str) -> DatasetVersion:
        return self._opened().resolve(ref)

    def find_by_source(self, name: str, source_digest: str) -> DatasetVersion | None:
        return self._opened().find_by_source(name, source_digest)

    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        return self._opened().list_versions(name)

    def set_tag(self, ref: str, tag: str) -> DatasetVersion:
        return self._opened().set_tag(ref, tag)

    def delete_version(self, ref: str) -> DatasetVersion:
        return self._opened().delete_version(ref)

    def referenced_digests(self) -> Iterator[str]:
        return self._opened().referenced_digests()

    def save_contract(self, name: str, text: str) -> int:
        return self._opened().save_contract(name, text)

    def get_contract(self, name: str, version: int | None = None) -> tuple[int, str]:
        return self._opened().get_contract(name, version)

    def close(self) -> None:
        self._opened().close()
