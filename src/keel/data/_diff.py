"""Comparing two dataset versions: schema changes, row counts, rows added/removed/changed by
key (when both versions declare the same key), per-column profile shifts, and for folders the
files added, removed and changed (from the manifests, without reading the files)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.data._records import FOLDER, DatasetDiff, DatasetVersion

if TYPE_CHECKING:
    from keel.data._datasets import Datasets

SHIFT_STATS = ("null_share", "distinct", "min", "max", "mean", "std")


def _shifts(a: DatasetVersion, b: DatasetVersion, common: list[str]) -> dict[str, dict[str, Any]]:
    cols_a = a.profile.get("columns", {})
    cols_b = b.profile.get("columns", {})
    out: dict[str, dict[str, Any]] = {}
    for column in common:
        pa_, pb = cols_a.get(column, {}), cols_b.get(column, {})
        changed = {
            stat: [pa_.get(stat), pb.get(stat)]
            for stat in SHIFT_STATS
            if pa_.get(stat) != pb.get(stat)
        }
        if changed:
            out[column] = changed
    return out


def _folder_diff(ds: Datasets, a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    files_a = {e["path"]: e["digest"] for e in ds.manifest(a)}
    files_b = {e["path"]: e["digest"] for e in ds.manifest(b)}
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        rows_a=None,
        rows_b=None,
        files_added=tuple(sorted(files_b.keys() - files_a.keys())),
        files_removed=tuple(sorted(files_a.keys() - files_b.keys())),
        files_changed=tuple(
            sorted(p for p in files_a.keys() & files_b.keys() if files_a[p] != files_b[p])
        ),
    )


def _key_counts(
    ds: Datasets, a: DatasetVersion, b: DatasetVersion, key: tuple[str, ...], common: list[str]
) -> tuple[int, int, int]:
    frame_a = ds.read_table(a, columns=common).to_pandas()
    frame_b = ds.read_table(b, columns=common).to_pandas()
    keys = list(key)
    merged = frame_a.merge(frame_b, on=keys, how="outer", suffixes=("__a", "__b"), indicator=True)
    added = int((merged["_merge"] == "right_only").sum())
    removed = int((merged["_merge"] == "left_only").sum())
    both = merged[merged["_merge"] == "both"]
    changed_mask = None
    for column in common:
        if column in key:
            continue
        left, right = both[f"{column}__a"], both[f"{column}__b"]
        differs = (left != right) & ~(left.isna() & right.isna())
        changed_mask = differs if changed_mask is None else (changed_mask | differs)
    changed = int(changed_mask.sum()) if changed_mask is not None else 0
    return added, removed, changed


def diff_versions(ds: Datasets, a: DatasetVersion, b: DatasetVersion) -> DatasetDiff:
    if FOLDER in (a.kind, b.kind):
        if a.kind != b.kind:
            from keel.errors import InvalidInput

            raise InvalidInput(f"cannot compare {a.kind} {a.ref} with {b.kind} {b.ref}", field="b")
        return _folder_diff(ds, a, b)
    types_a, types_b = dict(a.schema), dict(b.schema)
    common = [c for c in types_a if c in types_b]
    key = a.key if a.key and a.key == b.key and all(k in common for k in a.key) else ()
    added = removed = changed = None
    if key and a.digest != b.digest:
        added, removed, changed = _key_counts(ds, a, b, key, common)
    elif key:
        added = removed = changed = 0
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        rows_a=a.rows,
        rows_b=b.rows,
        columns_added=tuple(c for c in types_b if c not in types_a),
        columns_removed=tuple(c for c in types_a if c not in types_b),
        type_changes={c: (types_a[c], types_b[c]) for c in common if types_a[c] != types_b[c]},
        key=key,
        rows_added=added,
        rows_removed=removed,
        rows_changed=changed,
        column_shifts=_shifts(a, b, common),
    )
