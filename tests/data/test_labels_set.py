"""LabelSet: building from frames and files, duplicates, ordinal order, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data.labels import LabelSet
from keel.errors import InvalidInput, NotFound


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "a", "b", "b", "b", "c"],
            "annotator": ["x", "y", "x", "y", "z", "z"],
            "label": ["cat", "dog", "dog", "dog", "cat", "bird"],
        }
    )


def test_from_frame_shapes_and_categories() -> None:
    ls = LabelSet.from_frame(_frame())
    assert ls.n_items == 3
    assert ls.n_annotators == 3
    assert ls.n_labels == 6
    assert ls.categories == ("bird", "cat", "dog")  # nominal: sorted
    assert not ls.ordinal
    counts = ls.counts()
    assert counts.shape == (3, 3)
    assert counts.sum(axis=1).tolist() == [2, 3, 1]
    back = ls.to_frame()
    assert list(back.columns) == ["item_id", "annotator", "label"]
    assert len(back) == 6


def test_custom_column_names() -> None:
    df = _frame().rename(columns={"item_id": "doc", "annotator": "who", "label": "y"})
    ls = LabelSet.from_frame(df, item="doc", annotator="who", label="y")
    assert ls.n_labels == 6


def test_ordinal_order_is_kept_and_checked() -> None:
    df = pd.DataFrame(
        {"item_id": [1, 1, 2], "annotator": ["a", "b", "a"], "label": ["low", "high", "mid"]}
    )
    ls = LabelSet.from_frame(df, order=["low", "mid", "high"])
    assert ls.ordinal
    assert ls.categories == ("low", "mid", "high")
    with pytest.raises(InvalidInput, match="'mid'"):
        LabelSet.from_frame(df, order=["low", "high"])
    with pytest.raises(InvalidInput, match="repeats"):
        LabelSet.from_frame(df, order=["low", "mid", "mid", "high"])


def test_duplicates_error_by_default_and_last_wins_on_request() -> None:
    df = pd.concat([_frame(), pd.DataFrame([{"item_id": "a", "annotator": "x", "label": "bird"}])])
    with pytest.raises(InvalidInput, match=r"duplicate.*'a'.*'x'"):
        LabelSet.from_frame(df)
    ls = LabelSet.from_frame(df, duplicates="last")
    assert ls.n_labels == 6
    rows = ls.to_frame()
    got = rows[(rows.item_id == "a") & (rows.annotator == "x")].label.tolist()
    assert got == ["bird"]
    with pytest.raises(InvalidInput, match="duplicates"):
        LabelSet.from_frame(df, duplicates="first")  # type: ignore[arg-type]


def test_missing_labels_are_dropped_missing_ids_rejected() -> None:
    df = _frame()
    df.loc[0, "label"] = None
    assert LabelSet.from_frame(df).n_labels == 5
    df.loc[1, "annotator"] = None
    with pytest.raises(InvalidInput, match="annotator"):
        LabelSet.from_frame(df)


def test_empty_and_missing_columns() -> None:
    with pytest.raises(InvalidInput, match="no labels"):
        LabelSet.from_frame(_frame().iloc[:0])
    with pytest.raises(InvalidInput, match="'label'"):
        LabelSet.from_frame(_frame().drop(columns=["label"]))
    nulls = _frame().assign(label=None)
    with pytest.raises(InvalidInput, match="no labels"):
        LabelSet.from_frame(nulls)


def test_mixed_label_types_are_rejected() -> None:
    df = _frame()
    df["label"] = df["label"].astype(object)
    df.loc[0, "label"] = 3
    with pytest.raises(InvalidInput, match="mixed types"):
        LabelSet.from_frame(df)


def test_read_csv_and_parquet(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"item_id": ["007", "007", "008"], "annotator": ["a", "b", "a"], "label": [1, 2, 2]}
    )
    csv = tmp_path / "labels.csv"
    df.to_csv(csv, index=False)
    ls = LabelSet.read(csv, order=[1, 2, 3])
    assert ls.item_ids.tolist() == ["007", "008"]  # ids stay text: leading zeros survive
    assert ls.categories == (1, 2, 3)
    pq = tmp_path / "labels.parquet"
    df.to_parquet(pq)
    assert LabelSet.read(pq).n_labels == 3


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nope\.csv"):
        LabelSet.read(tmp_path / "nope.csv")
    bad = tmp_path / "labels.txt"
    bad.write_text("x")
    with pytest.raises(InvalidInput, match=r"labels\.txt.*\.csv"):
        LabelSet.read(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InvalidInput, match=r"empty\.csv"):
        LabelSet.read(empty)
    cols = tmp_path / "cols.csv"
    cols.write_text("item_id,who,label\n1,a,x\n")
    with pytest.raises(InvalidInput, match=r"cols\.csv.*'annotator'"):
        LabelSet.read(cols)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item_id,annotator,label\n1,a,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin\.csv.*UTF-8"):
        LabelSet.read(latin)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match=r"garbage\.parquet"):
        LabelSet.read(garbage)


def test_matrix_has_missing_as_minus_one() -> None:
    ls = LabelSet.from_frame(_frame())
    m = ls.matrix()
    assert m.shape == (3, 3)  # annotators x items
    assert (m == -1).sum() == 3
    assert m.dtype == np.int64
