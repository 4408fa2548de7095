"""Datasets: content-addressed versions (``name@vN``) of tables and folders, with schema,
profile, diff and tags. See ``docs/data.md``.

``add``, ``get``, ``show``, ``ls``, ``diff``, ``tag`` and ``rm`` work on the configured stores
(metadata at ``tracking_uri``, bytes at ``artifacts_uri``); ``Datasets`` takes explicit ones.
pyarrow, pandas and SQLAlchemy load on first use, not on ``import keel.data``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from keel.data._records import DatasetDiff, DatasetVersion, NewVersion

if TYPE_CHECKING:
    from keel.data._base import DataStore
    from keel.data._contract import ColumnSpec, Contract, CustomCheck, infer_contract
    from keel.data._contract_store import (
        infer_dataset_contract,
        load_contract,
        save_contract,
        validate_dataset,
        validate_file,
    )
    from keel.data._datasets import Datasets
    from keel.data._expr import parse_check
    from keel.data._sanity import ColumnSanity, SanityReport, SanityThresholds, sanity_report
    from keel.data._validate import CheckResult, ValidationReport, validate

_LAZY = {
    "Datasets": "keel.data._datasets",
    "DataStore": "keel.data._base",
    # contracts and validation (docs/data-contracts.md)
    "Contract": "keel.data._contract",
    "ColumnSpec": "keel.data._contract",
    "CustomCheck": "keel.data._contract",
    "infer_contract": "keel.data._contract",
    "validate": "keel.data._validate",
    "ValidationReport": "keel.data._validate",
    "CheckResult": "keel.data._validate",
    "sanity_report": "keel.data._sanity",
    "SanityReport": "keel.data._sanity",
    "SanityThresholds": "keel.data._sanity",
    "ColumnSanity": "keel.data._sanity",
    "parse_check": "keel.data._expr",
    "save_contract": "keel.data._contract_store",
    "load_contract": "keel.data._contract_store",
    "infer_dataset_contract": "keel.data._contract_store",
    "validate_dataset": "keel.data._contract_store",
    "validate_file": "keel.data._contract_store",
}

__all__ = [
    "CheckResult",
    "ColumnSanity",
    "ColumnSpec",
    "Contract",
    "CustomCheck",
    "DataStore",
    "DatasetDiff",
    "DatasetVersion",
    "Datasets",
    "NewVersion",
    "SanityReport",
    "SanityThresholds",
    "ValidationReport",
    "add",
    "default",
    "diff",
    "get",
    "infer_contract",
    "infer_dataset_contract",
    "load_contract",
    "ls",
    "open_data_store",
    "parse_check",
    "rm",
    "sanity_report",
    "save_contract",
    "show",
    "tag",
    "validate",
    "validate_dataset",
    "validate_file",
]

# settings key -> the Datasets built for it (one entry: rebuilt when the settings change)
_default: dict[tuple[str, str, str], Datasets] = {}
_lock = threading.Lock()


def open_data_store(uri: str | None = None) -> DataStore:
    from keel.data._store import open_data_store as _open

    return _open(uri)


def default() -> Datasets:
    """The ``Datasets`` on the configured stores (rebuilt when the settings change)."""
    from keel.config import get_settings

    settings = get_settings()
    key = (settings.tracking_uri, settings.artifacts_uri, str(settings.home))
    with _lock:
        found = _default.get(key)
        if found is None:
            from keel.artifacts import open_content_store
            from keel.data._datasets import Datasets
            from keel.data._opening import OpeningStore
            from keel.data._state import StateCache

            # The metadata store opens in the background (SQLAlchemy alone takes a new
            # process ~0.2 s to import) while an add hashes and stores its files.
            found = Datasets(
                OpeningStore(open_data_store),
                open_content_store(),
                state=StateCache(settings.home / "state.db"),
            )
            _default.clear()
            _default[key] = found
        return found


def add(
    source: Any,
    *,
    name: str,
    description: str = "",
    tags: Iterable[str] = (),
    key: str | Iterable[str] | None = None,
    source_uri: str | None = None,
    produced_by: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> DatasetVersion:
    """Add a CSV/TSV, Parquet or JSON-lines file, a pandas DataFrame, a pyarrow Table or a
    folder as the next version of ``name``. Identical content to the latest version creates
    nothing: that version is returned with ``existed=True``."""
    return default().add(
        source,
        name=name,
        description=description,
        tags=tags,
        key=key,
        source_uri=source_uri,
        produced_by=produced_by,
        progress=progress,
    )


def get(
    ref: str | DatasetVersion,
    *,
    as_: str | None = None,
    dest: str | os.PathLike[str] | None = None,
) -> Any:
    """A table version as a pandas DataFrame (default), ``as_="arrow"`` a pyarrow Table, or
    ``as_="path"`` a Parquet file; a folder version materialised under ``dest`` (a Path)."""
    return default().get(ref, as_=as_, dest=dest)


def show(ref: str) -> DatasetVersion:
    """The version ``ref`` names: ``name``, ``name@latest``, ``name@vN`` or ``name@tag``."""
    return default().show(ref)


def ls(name: str | None = None) -> list[DatasetVersion]:
    """Live versions of ``name`` (or of every dataset), by name and version."""
    return default().ls(name)


def diff(a: str, b: str) -> DatasetDiff:
    """What changed from version ``a`` to version ``b``."""
    return default().diff(a, b)


def tag(ref: str, tag: str) -> DatasetVersion:
    """Point ``name@tag`` at ``ref`` (e.g. ``tag("churn@v3", "prod")``)."""
    return default().tag(ref, tag)


def rm(ref: str) -> DatasetVersion:
    """Soft-delete a version; its bytes stay until ``keel gc`` finds them unreferenced."""
    return default().rm(ref)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keel.data' has no attribute {name!r}")
