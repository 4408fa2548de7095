"""Consensus labels: majority vote (ties, shares, review flags) and Dawid-Skene EM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.data.labels import Consensus, LabelSet, dawid_skene, majority_vote
from keel.errors import InvalidInput

COLUMNS = ["item_id", "label", "confidence", "needs_review", "n_labels"]


def test_majority_vote_shares_ties_and_review() -> None:
    df = pd.DataFrame(
        {
            "item_id": ["i1"] * 3 + ["i2"] * 2 + ["i3"],
            "annotator": ["a", "b", "c", "a", "b", "c"],
            "label": ["dog", "dog", "cat", "dog", "cat", "bird"],
        }
    )
    result = majority_vote(LabelSet.from_frame(df), threshold=0.6)
    assert isinstance(result, Consensus)
    frame = result.frame
    assert list(frame.columns) == COLUMNS
    rows = frame.set_index("item_id")
    assert rows.loc["i1", "label"] == "dog"
    assert rows.loc["i1", "confidence"] == pytest.approx(2 / 3)
    assert not rows.loc["i1", "needs_review"]
    # tie: the first category in the label set's order wins ("cat" < "dog"), and is flagged
    assert rows.loc["i2", "label"] == "cat"
    assert rows.loc["i2", "needs_review"]
    assert rows.loc["i3", "n_labels"] == 1
    assert rows.loc["i3", "confidence"] == 1.0
    assert result.method == "majority_vote"


def test_tie_break_follows_declared_order() -> None:
    df = pd.DataFrame({"item_id": [1, 1], "annotator": ["a", "b"], "label": ["lo", "hi"]})
    result = majority_vote(LabelSet.from_frame(df, order=["hi", "lo"]))
    assert result.frame.loc[0, "label"] == "hi"


def test_threshold_is_checked() -> None:
    ls = LabelSet.from_frame(pd.DataFrame({"item_id": [1], "annotator": ["a"], "label": ["x"]}))
    with pytest.raises(InvalidInput, match="threshold"):
        majority_vote(ls, threshold=1.5)
    with pytest.raises(InvalidInput, match="max_iter"):
        dawid_skene(ls, max_iter=0)
    with pytest.raises(InvalidInput, match="smoothing"):
        dawid_skene(ls, smoothing=-1)


def simulate(seed: int, n_items: int = 3000) -> tuple[LabelSet, np.ndarray, dict[str, np.ndarray]]:
    """Three classes; two good annotators, two noisy ones, one who systematically relabels."""
    rng = np.random.default_rng(seed)
    k = 3
    eye = np.eye(k)
    confusions = {
        "good1": 0.9 * eye + 0.05 * (1 - eye),
        "good2": 0.85 * eye + 0.075 * (1 - eye),
        "noisy1": 0.4 * eye + 0.3 * (1 - eye),
        "noisy2": 0.45 * eye + 0.275 * (1 - eye),
        "adversary": 0.05 * eye + np.roll(0.9 * eye, 1, axis=1) + 0.05 * np.roll(eye, 2, axis=1),
    }
    truth = rng.choice(k, size=n_items, p=[0.5, 0.3, 0.2])
    rows = []
    for name, conf in confusions.items():
        cum = conf.cumsum(axis=1)[truth]
        labels = (rng.random(n_items)[:, None] > cum).sum(axis=1)
        rows.append(
            pd.DataFrame({"item_id": np.arange(n_items), "annotator": name, "label": labels})
        )
    return LabelSet.from_frame(pd.concat(rows)), truth, confusions


def test_dawid_skene_recovers_confusions_and_beats_majority_vote() -> None:
    ls, truth, confusions = simulate(seed=11)
    ds = dawid_skene(ls, tol=1e-8, max_iter=500)
    mv = majority_vote(ls)
    assert ds.converged
    assert ds.method == "dawid_skene"
    acc_ds = float(np.mean(ds.frame.label.to_numpy() == truth))
    acc_mv = float(np.mean(mv.frame.label.to_numpy() == truth))
    assert acc_ds > acc_mv + 0.05, (acc_ds, acc_mv)
    assert acc_ds > 0.9
    assert ds.confusion is not None
    assert ds.priors is not None
    for name, conf in confusions.items():
        got = ds.confusion[name].to_numpy()
        assert np.abs(got - conf).max() < 0.05, name
    assert np.abs(ds.priors.to_numpy() - [0.5, 0.3, 0.2]).max() < 0.03
    # confidence is the posterior of the chosen label; low posteriors are flagged
    assert ds.frame.confidence.between(1 / 3, 1).all()
    assert (ds.frame.needs_review == (ds.frame.confidence < 0.6)).all()


def test_dawid_skene_is_deterministic_and_smoothing_avoids_zeros() -> None:
    df = pd.DataFrame(
        {
            "item_id": [1, 1, 1, 2, 2, 2, 3, 3],
            "annotator": ["a", "b", "c"] * 2 + ["a", "b"],
            "label": ["x", "x", "x", "y", "y", "y", "x", "x"],
        }
    )
    ls = LabelSet.from_frame(df)
    one, two = dawid_skene(ls), dawid_skene(ls)
    pd.testing.assert_frame_equal(one.frame, two.frame)
    assert one.confusion is not None
    assert all((m.to_numpy() > 0).all() for m in one.confusion.values())
    assert one.frame.label.tolist() == ["x", "y", "x"]


def test_dawid_skene_single_annotator_and_single_class() -> None:
    single = LabelSet.from_frame(
        pd.DataFrame({"item_id": [1, 2, 3], "annotator": ["a"] * 3, "label": ["p", "q", "p"]})
    )
    assert dawid_skene(single).frame.label.tolist() == ["p", "q", "p"]
    same = LabelSet.from_frame(
        pd.DataFrame({"item_id": [1, 1, 2], "annotator": ["a", "b", "a"], "label": ["p"] * 3})
    )
    result = dawid_skene(same)
    assert result.frame.label.tolist() == ["p", "p"]
    assert result.frame.confidence.tolist() == [1.0, 1.0]
