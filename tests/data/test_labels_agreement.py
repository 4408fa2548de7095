"""Agreement statistics against textbook examples worked by hand, and reference packages."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from keel.data.labels import (
    LabelSet,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
# 12 units, values 1..5, None = not coded. Nominal alpha .743, ordinal .815, both in the paper.
K2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}

# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 classes.
FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def wide_to_labelset(wide: dict[str, list[int | None]], **kw: object) -> LabelSet:
    rows = [
        {"item_id": u, "annotator": a, "label": v}
        for a, values in wide.items()
        for u, v in enumerate(values)
        if v is not None
    ]
    return LabelSet.from_frame(pd.DataFrame(rows), **kw)  # type: ignore[arg-type]


def counts_to_labelset(table: list[list[int]]) -> LabelSet:
    rows = []
    for item, counts in enumerate(table):
        rater = 0
        for category, n in enumerate(counts):
            for _ in range(n):
                rows.append({"item_id": item, "annotator": f"r{rater}", "label": category + 1})
                rater += 1
    return LabelSet.from_frame(pd.DataFrame(rows))


def test_krippendorff_2011_nominal_and_ordinal() -> None:
    ls = wide_to_labelset(K2011)
    nominal = krippendorff_alpha(ls, level="nominal")
    assert round(nominal.value, 3) == 0.743
    assert nominal.n_items == 11  # unit 12 has one value: not pairable
    ordinal = krippendorff_alpha(ls, level="ordinal")
    assert round(ordinal.value, 3) == 0.815
    # a declared order makes ordinal the default level
    declared = wide_to_labelset(K2011, order=[1, 2, 3, 4, 5])
    assert krippendorff_alpha(declared).value == pytest.approx(ordinal.value)
    assert krippendorff_alpha(ls).value == pytest.approx(nominal.value)


def test_fleiss_wikipedia_example() -> None:
    score = fleiss_kappa(counts_to_labelset(FLEISS))
    assert round(score.value, 3) == 0.210
    assert score.n_items == 10
    assert score.note is None


def test_cohen_kappa_from_a_2x2_table() -> None:
    # Wikipedia "Cohen's kappa": 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po .7, pe .5, k .4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    pairs += [("no", "no")] * 15
    rows = [{"item_id": i, "annotator": "A", "label": a} for i, (a, _) in enumerate(pairs)]
    rows += [{"item_id": i, "annotator": "B", "label": b} for i, (_, b) in enumerate(pairs)]
    rows.append({"item_id": 999, "annotator": "A", "label": "yes"})  # B missing: not counted
    table = cohen_kappa(LabelSet.from_frame(pd.DataFrame(rows)))
    assert list(table.columns) == ["annotator_a", "annotator_b", "kappa", "n_items", "note"]
    assert table.loc[0, "annotator_a"] == "A"
    assert table.loc[0, "kappa"] == pytest.approx(0.4)
    assert table.loc[0, "n_items"] == 50


def test_cohen_kappa_every_pair_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    n, k = 300, 4
    truth = rng.integers(0, k, n)
    rows = []
    for a in range(5):
        keep = rng.random(n) < 0.8
        noisy = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), truth)
        rows += [
            {"item_id": i, "annotator": f"a{a}", "label": int(v)}
            for i, (v, kept) in enumerate(zip(noisy, keep, strict=True))
            if kept
        ]
    df = pd.DataFrame(rows)
    table = cohen_kappa(LabelSet.from_frame(df))
    assert len(table) == 10
    wide = df.pivot(index="item_id", columns="annotator", values="label")
    for row in table.itertuples():
        both = wide[[row.annotator_a, row.annotator_b]].dropna()
        x, y = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
        po = float(np.mean(x == y))
        pe = sum(float(np.mean(x == c) * np.mean(y == c)) for c in range(k))
        assert row.kappa == pytest.approx((po - pe) / (1 - pe))
        assert row.n_items == len(both)


def test_undefined_statistics_are_nan_with_a_note() -> None:
    same = LabelSet.from_frame(
        pd.DataFrame({"item_id": [1, 1, 2, 2], "annotator": list("abab"), "label": ["x"] * 4})
    )
    table = cohen_kappa(same)
    assert math.isnan(table.loc[0, "kappa"])
    assert "one category" in table.loc[0, "note"]
    for score in (fleiss_kappa(same), krippendorff_alpha(same)):
        assert math.isnan(score.value)
        assert "one category" in (score.note or "")

    single = LabelSet.from_frame(
        pd.DataFrame({"item_id": [1, 2, 3], "annotator": ["a"] * 3, "label": [1, 2, 1]})
    )
    assert cohen_kappa(single).empty
    for score in (fleiss_kappa(single), krippendorff_alpha(single)):
        assert math.isnan(score.value)
        assert score.n_items == 0
        assert "two" in (score.note or "")


def test_fleiss_with_varying_rater_counts_says_so() -> None:
    ls = wide_to_labelset(K2011)
    score = fleiss_kappa(ls)
    assert not math.isnan(score.value)
    assert score.n_items == 11
    assert "vary" in (score.note or "")


def test_annotator_agreement_with_consensus() -> None:
    ls = wide_to_labelset(K2011)
    table = annotator_agreement(ls, majority_vote(ls))
    assert list(table.columns) == ["annotator", "n_labels", "agreement", "kappa", "note"]
    assert table.set_index("annotator").loc["A", "n_labels"] == 9
    assert table.set_index("annotator").loc["D", "agreement"] == pytest.approx(
        10 / 11
    )  # unit 6 is a 4-way tie
    assert (table.agreement <= 1).all()


def test_agreement_on_a_large_set_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    n_items, n_ann = 200_000, 5
    truth = rng.integers(0, 5, n_items)
    item = np.repeat(np.arange(n_items), n_ann)
    ann = np.tile(np.arange(n_ann), n_items)
    lab = np.where(rng.random(item.size) < 0.8, truth[item], rng.integers(0, 5, item.size))
    ls = LabelSet.from_frame(pd.DataFrame({"item_id": item, "annotator": ann, "label": lab}))
    start = time.perf_counter()
    krippendorff_alpha(ls)
    krippendorff_alpha(ls, level="ordinal")
    fleiss_kappa(ls)
    cohen_kappa(ls)
    assert time.perf_counter() - start < 5


def test_against_krippendorff_package() -> None:
    krippendorff = pytest.importorskip("krippendorff", reason="reference package not installed")
    rng = np.random.default_rng(7)
    data = rng.integers(1, 5, size=(6, 80)).astype(float)
    data[rng.random(data.shape) < 0.25] = np.nan
    wide = {f"c{i}": [None if np.isnan(v) else int(v) for v in row] for i, row in enumerate(data)}
    ls = wide_to_labelset(wide)
    for level in ("nominal", "ordinal"):
        ref = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert krippendorff_alpha(ls, level=level).value == pytest.approx(ref)


def test_against_statsmodels() -> None:
    inter_rater = pytest.importorskip(
        "statsmodels.stats.inter_rater", reason="reference package not installed"
    )
    ref = inter_rater.fleiss_kappa(np.array(FLEISS), method="fleiss")
    assert fleiss_kappa(counts_to_labelset(FLEISS)).value == pytest.approx(ref)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, 200)
    y = np.where(rng.random(200) < 0.6, x, rng.integers(0, 3, 200))
    rows = [{"item_id": i, "annotator": "A", "label": int(v)} for i, v in enumerate(x)]
    rows += [{"item_id": i, "annotator": "B", "label": int(v)} for i, v in enumerate(y)]
    table = np.zeros((3, 3))
    np.add.at(table, (x, y), 1)
    ours = cohen_kappa(LabelSet.from_frame(pd.DataFrame(rows))).loc[0, "kappa"]
    assert ours == pytest.approx(inter_rater.cohens_kappa(table).kappa)


def test_cohen_kappa_sparse_and_dense_paths_agree() -> None:
    from keel.data.labels import _agreement

    rng = np.random.default_rng(9)
    df = pd.DataFrame(
        {
            "item_id": rng.integers(0, 400, 3000),
            "annotator": rng.integers(0, 30, 3000),
            "label": rng.integers(0, 3, 3000),
        }
    ).drop_duplicates(["item_id", "annotator"])
    ls = LabelSet.from_frame(df)
    dense_ids, dense = _agreement._pair_tables_dense(ls)
    sizes = np.bincount(ls.item, minlength=ls.n_items)
    sparse_ids, sparse = _agreement._pair_tables_join(ls, sizes)
    assert len(dense_ids) > 300
    np.testing.assert_array_equal(dense_ids, sparse_ids)
    np.testing.assert_array_equal(dense, sparse)
