"""Saving a consensus as a dataset version with provenance back to its label set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import keel.data
from keel.data.labels import LabelSet, dawid_skene, majority_vote, save_consensus

ROWS = pd.DataFrame(
    {
        "item_id": ["a", "a", "a", "b", "b", "b"],
        "annotator": ["x", "y", "z"] * 2,
        "label": ["cat", "cat", "dog", "dog", "dog", "dog"],
    }
)


def test_consensus_from_a_file_records_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    ROWS.to_csv(path, index=False)
    result = dawid_skene(LabelSet.read(path))
    version = save_consensus(result, name="pets-consensus")
    assert version.ref == "pets-consensus@v1"
    assert version.source_uri == str(path.resolve())
    assert version.key == ("item_id",)
    assert "dawid_skene" in version.description
    saved = keel.data.get(version)
    assert list(saved.columns) == ["item_id", "label", "confidence", "needs_review", "n_labels"]
    assert saved.label.tolist() == ["cat", "dog"]


def test_consensus_from_a_dataset_records_its_ref() -> None:
    labels_version = keel.data.add(ROWS, name="pets-labels")
    labels = LabelSet.from_dataset("pets-labels@latest")
    assert labels.source == labels_version.ref
    version = save_consensus(majority_vote(labels), name="pets-consensus", tags=["gold"])
    assert version.source_uri == "pets-labels@v1"
    assert keel.data.show("pets-consensus@gold").version == version.version
