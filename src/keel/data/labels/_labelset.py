"""A label set: items labelled by several annotators, held as integer codes in long format."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from keel.errors import InvalidInput, NotFound

Codes = npt.NDArray[np.int64]
Duplicates = Literal["error", "last"]


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Labels given by annotators to items, one per (item, annotator) pair.

    ``item``, ``annotator`` and ``label`` are parallel integer codes sorted by item, indexing
    ``item_ids``, ``annotators`` and ``categories``. Categories are nominal and sorted, or
    ordinal in the order declared with ``order=``; ties in consensus go to the earlier category.
    Build one with :meth:`from_frame`, :meth:`read` or :meth:`from_dataset`. ``source`` is the
    provenance a saved consensus records: the dataset ref or the resolved file path.
    """

    item_ids: pd.Index
    annotators: pd.Index
    categories: tuple[Hashable, ...]
    ordinal: bool
    item: Codes
    annotator: Codes
    label: Codes
    source: str | None = None

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        item: str = "item_id",
        annotator: str = "annotator",
        label: str = "label",
        order: Sequence[Hashable] | None = None,
        duplicates: Duplicates = "error",
        source: str | None = None,
    ) -> LabelSet:
        """Build from a long frame: one row per (item, annotator) with its label.

        Rows with a missing label are dropped (that annotator did not label the item); a missing
        item or annotator is an error. A repeated (item, annotator) pair is an error unless
        ``duplicates="last"``, which keeps the last row. ``order`` declares ordinal labels.
        """
        where = source or "the frame"
        if duplicates not in ("error", "last"):
            raise InvalidInput("must be 'error' or 'last'", field="duplicates")
        for column in (item, annotator, label):
            if column not in df.columns:
                found = ", ".join(map(str, df.columns))
                raise InvalidInput(
                    f"{where} has no column '{column}' (columns: {found})", field=column
                )
        rows = df[[item, annotator, label]]
        rows = rows[rows[label].notna()]
        if rows.empty:
            raise InvalidInput(f"{where} has no labels", field=label)
        for column in (item, annotator):
            if rows[column].isna().any():
                raise InvalidInput(f"{where} has rows with no {column}", field=column)
        dup = rows.duplicated([item, annotator], keep="last")
        if dup.any():
            if duplicates == "error":
                first = rows[dup].iloc[0]
                raise InvalidInput(
                    f"{where} has {int(dup.sum())} duplicate (item, annotator) rows, e.g. "
                    f"{first[item]!r} by {first[annotator]!r}; pass duplicates='last' to keep "
                    "the last",
                    field=label,
                )
            rows = rows[~dup]
        categories = _categories(rows[label], order, source=where, field=label)
        label_codes = pd.Index(categories).get_indexer(pd.Index(rows[label]))
        item_codes, item_ids = pd.factorize(rows[item])
        ann_codes, annotators = pd.factorize(rows[annotator])
        by_item = np.argsort(item_codes, kind="stable")
        return cls(
            item_ids=pd.Index(item_ids),
            annotators=pd.Index(annotators),
            categories=categories,
            ordinal=order is not None,
            item=np.asarray(item_codes, dtype=np.int64)[by_item],
            annotator=np.asarray(ann_codes, dtype=np.int64)[by_item],
            label=np.asarray(label_codes, dtype=np.int64)[by_item],
            source=source,
        )

    @classmethod
    def read(
        cls,
        path: str | Path,
        *,
        item: str = "item_id",
        annotator: str = "annotator",
        label: str = "label",
        order: Sequence[Hashable] | None = None,
        duplicates: Duplicates = "error",
    ) -> LabelSet:
        """Read a CSV (UTF-8) or Parquet file in long format; ids in a CSV stay text."""
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"label file not found: {p}")
        suffix = p.suffix.lower()
        try:
            if suffix == ".csv":
                df = pd.read_csv(p, dtype={item: str, annotator: str}, encoding="utf-8")
            elif suffix in (".parquet", ".pq"):
                df = pd.read_parquet(p)
            else:
                raise InvalidInput(
                    f"{p}: unsupported label file type; use .csv or .parquet", field="path"
                )
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{p}: not UTF-8 text ({exc.reason})", field="path") from exc
        except pd.errors.EmptyDataError as exc:
            raise InvalidInput(f"{p}: the file is empty", field="path") from exc
        except (ValueError, OSError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"{p}: cannot read it ({exc})", field="path") from exc
        return cls.from_frame(
            df,
            item=item,
            annotator=annotator,
            label=label,
            order=order,
            duplicates=duplicates,
            source=str(p.resolve()),
        )

    @classmethod
    def from_dataset(
        cls,
        ref: str,
        *,
        item: str = "item_id",
        annotator: str = "annotator",
        label: str = "label",
        order: Sequence[Hashable] | None = None,
        duplicates: Duplicates = "error",
    ) -> LabelSet:
        """Load a table dataset version (``reviews@v3``, ``reviews@prod``) in long format."""
        import keel.data

        version = keel.data.show(ref)
        return cls.from_frame(
            keel.data.get(version),
            item=item,
            annotator=annotator,
            label=label,
            order=order,
            duplicates=duplicates,
            source=version.ref,
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def n_labels(self) -> int:
        return int(self.label.size)

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    def counts(self) -> Codes:
        """An items x categories matrix: how many annotators gave each item each label."""
        k = self.n_categories
        flat = np.bincount(self.item * k + self.label, minlength=self.n_items * k)
        return flat.reshape(self.n_items, k).astype(np.int64)

    def matrix(self) -> Codes:
        """An annotators x items matrix of label codes, ``-1`` where none was given (dense)."""
        out = np.full((self.n_annotators, self.n_items), -1, dtype=np.int64)
        out[self.annotator, self.item] = self.label
        return out

    def to_frame(self) -> pd.DataFrame:
        """The labels back in long format (``item_id, annotator, label``), sorted by item."""
        cats = np.empty(self.n_categories, dtype=object)
        cats[:] = list(self.categories)
        return pd.DataFrame(
            {
                "item_id": self.item_ids.take(self.item),
                "annotator": self.annotators.take(self.annotator),
                "label": cats[self.label],
            }
        )


def _categories(
    values: pd.Series[Any], order: Sequence[Hashable] | None, *, source: str, field: str
) -> tuple[Hashable, ...]:
    present = list(pd.unique(values))
    if order is not None:
        declared = list(order)
        if len(set(declared)) != len(declared):
            raise InvalidInput("the declared order repeats a label", field="order")
        unknown = [v for v in present if v not in set(declared)]
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:5])
            raise InvalidInput(
                f"{source} has labels not in the declared order: {shown}", field=field
            )
        return tuple(declared)
    kinds = {_kind(v) for v in present}
    if len(kinds) > 1:
        raise InvalidInput(
            f"{source} mixes types in column '{field}' ({', '.join(sorted(kinds))}): "
            "mixed types are not comparable",
            field=field,
        )
    try:
        return tuple(sorted(present))
    except TypeError as exc:
        raise InvalidInput(f"{source}: labels in '{field}' cannot be sorted", field=field) from exc


def _kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return type(value).__name__
