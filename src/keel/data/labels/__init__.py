"""Label quality: multi-annotator label sets, agreement statistics and consensus labels."""

from __future__ import annotations

from keel.data.labels._agreement import (
    Score,
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from keel.data.labels._consensus import Consensus, dawid_skene, majority_vote, save_consensus
from keel.data.labels._labelset import LabelSet

__all__ = [
    "Consensus",
    "LabelSet",
    "Score",
    "annotator_agreement",
    "cohen_kappa",
    "dawid_skene",
    "fleiss_kappa",
    "krippendorff_alpha",
    "majority_vote",
    "save_consensus",
]
