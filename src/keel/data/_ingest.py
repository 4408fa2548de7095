"""Reading what users add: CSV, Parquet, JSON lines, a pandas DataFrame, a pyarrow Table, or a
folder of files. Every failure is ``InvalidInput`` (or ``NotFound``) naming the file or column.

A 0-row table is allowed when it has columns: its schema is the point (e.g. a header-only CSV
recording an expected layout). A table without columns and a 0-byte file are errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.artifacts import safe_relpath
from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABULAR_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES
_JSON_COLUMN = re.compile(r"Column\(/?([^)]*)\)")


def is_frame(source: object) -> bool:
    return type(source).__module__.startswith(("pandas", "pyarrow")) and type(source).__name__ in (
        "DataFrame",
        "Table",
    )


def _check_columns(table: pa.Table, where: str) -> pa.Table:
    names = table.column_names
    if not names:
        raise InvalidInput(f"{where} has no columns", field="source")
    seen: set[str] = set()
    for n in names:
        if not n or n in seen:
            raise InvalidInput(
                f"{where}: column name {n!r} is empty or repeated", field=n or "source"
            )
        seen.add(n)
    return table.replace_schema_metadata(None)


def from_frame(source: Any) -> pa.Table:
    """An Arrow table from a DataFrame or Table; a column of mixed types is named."""
    import pyarrow as pa

    if isinstance(source, pa.Table):
        return _check_columns(source, "the table")
    frame = source
    if len(frame.columns) == 0:
        raise InvalidInput("the DataFrame has no columns", field="source")
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        for column in frame.columns:
            try:
                pa.array(frame[column], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as col_exc:
                raise InvalidInput(
                    f"column {column!r} mixes types and cannot be stored as one column "
                    f"({col_exc}); convert it (e.g. .astype(str)) first",
                    field=str(column),
                ) from exc
        raise InvalidInput(f"the DataFrame cannot be stored: {exc}", field="source") from exc
    return _check_columns(table, "the DataFrame")


def readable(path: Path) -> None:
    """``InvalidInput`` naming ``path`` unless it can be opened for reading."""
    try:
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {str(path)!r}: {exc.strerror or exc}", field="source"
        ) from exc


def check_file(path: Path) -> None:
    if not path.exists():
        raise NotFound(f"source: no such file or folder {str(path)!r}")
    if path.is_file():
        readable(path)
        if path.stat().st_size == 0:
            raise InvalidInput(f"{str(path)!r} is empty (0 bytes)", field="source")


def read_file(path: Path) -> pa.Table:
    """The table in a CSV/TSV, Parquet or JSON-lines file."""
    import pyarrow as pa

    check_file(path)
    suffix = path.suffix.lower()
    where = str(path)
    try:
        if suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix in CSV_SUFFIXES:
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            table = csv.read_csv(path, parse_options=parse)
            for field_ in table.schema:
                # Arrow falls back to binary for text that is not valid UTF-8.
                if pa.types.is_binary(field_.type) or pa.types.is_large_binary(field_.type):
                    raise InvalidInput(
                        f"{where}: column {field_.name!r} is not UTF-8 text; re-encode the "
                        "file (e.g. iconv -f latin1 -t utf-8)",
                        field=field_.name,
                    )
        elif suffix in JSONL_SUFFIXES:
            from pyarrow import json

            table = json.read_json(path)
        else:
            raise InvalidInput(
                f"{where}: unknown table format {suffix or '(no suffix)'!r}; use .csv, .tsv, "
                ".parquet, .jsonl or a folder",
                field="source",
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        field = "source"
        if "UTF8" in message or "UTF-8" in message:
            message += " (the file is not UTF-8 text; re-encode it, e.g. iconv -t utf-8)"
        match = _JSON_COLUMN.search(message)
        if match:
            field = match.group(1)
            message = f"column {field!r} mixes types: {message}"
        raise InvalidInput(f"{where}: {message}", field=field) from exc
    return _check_columns(table, where)


def list_folder(root: Path) -> list[tuple[str, Path]]:
    """``(relative posix name, path)`` of every file under ``root``, by name."""
    files: list[tuple[str, Path]] = []
    for here, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for d in dirs:
            if os.path.islink(os.path.join(here, d)):
                raise InvalidInput(
                    f"{Path(here, d)} is a symlink to a folder; copy it in instead", field="source"
                )
        # One relative prefix per folder, not a relative_to() per file (1,000s of files).
        prefix = Path(here).relative_to(root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        for n in names:
            path = Path(here, n)
            rel = safe_relpath(prefix + n, field="source")
            readable(path)
            files.append((rel, path))
    if not files:
        raise InvalidInput(f"{str(root)!r} holds no files", field="source")
    files.sort()
    return files
