"""Where the CLI's two sides come from: a file (CSV/TSV/Parquet/JSON lines), a stored
reference profile (``*.json`` written by ``ReferenceProfile.to_json``), or a dataset ref."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.monitoring._reference import ReferenceProfile


def read_table(source: str, *, field: str) -> tuple[str, pa.Table]:
    """``(label, table)`` for a file path or a dataset ref such as ``churn@v3``."""
    import keel.data
    from keel.data._ingest import read_file

    path = Path(source)
    if path.is_file():
        return str(path), read_file(path)
    if "/" in source or path.suffix.lower() in {".csv", ".tsv", ".parquet", ".pq", ".jsonl"}:
        raise InvalidInput(f"{source!r}: no such file", field=field)
    version = keel.data.show(source)
    if version.kind != "table":
        raise InvalidInput(f"{version.ref} is a folder, not a table", field=field)
    return version.ref, keel.data.get(version.ref, as_="arrow")


def read_reference(source: str) -> ReferenceProfile:
    """A stored profile (``.json``), or a profile computed from a file or a dataset version."""
    from keel.monitoring._reference import ReferenceProfile

    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{source}: {exc.strerror}", field="reference") from exc
        return ReferenceProfile.from_json(text)
    label, table = read_table(source, field="reference")
    return ReferenceProfile.from_frame(table, source=label)


def write_reference(profile: ReferenceProfile, path: Path) -> None:
    """Write the profile's JSON atomically: a reader sees the old file or the whole new one."""
    from keel.monitoring._monitor_files import write_atomically

    write_atomically(path, profile.to_json().encode())
