"""Consensus labels: majority vote and Dawid-Skene, each with a per-item confidence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from keel.data.labels._labelset import LabelSet
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.data import DatasetVersion

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int64]

DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True, eq=False)
class Consensus:
    """One consensus label per item.

    ``frame`` has the columns ``item_id, label, confidence, needs_review, n_labels``:
    confidence is the vote share (majority vote) or the posterior (Dawid-Skene) of the chosen
    label, and ``needs_review`` is true below ``threshold`` or on a tied vote. Dawid-Skene also
    fills ``priors`` (class shares) and ``confusion`` (per annotator, rows = true class,
    columns = given label, rows sum to 1). ``source`` is the label set's provenance.
    """

    frame: pd.DataFrame
    method: str
    codes: Codes
    threshold: float
    priors: pd.Series | None = None
    confusion: dict[str, pd.DataFrame] | None = None
    n_iter: int = 0
    converged: bool = True
    source: str | None = None


def majority_vote(labels: LabelSet, *, threshold: float = DEFAULT_THRESHOLD) -> Consensus:
    """The most frequent label per item; confidence is its share of the item's labels.

    Ties go to the category that comes first in ``labels.categories`` (sorted for nominal
    labels, the declared order for ordinal ones) and are always flagged for review.
    """
    _check_threshold(threshold)
    counts = labels.counts()
    n = counts.sum(axis=1)
    codes = counts.argmax(axis=1).astype(np.int64)  # argmax returns the first maximum
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    confidence = top / n
    frame = _frame(labels, codes, confidence, (confidence < threshold) | tied, n)
    return Consensus(
        frame=frame,
        method="majority_vote",
        codes=codes,
        threshold=threshold,
        source=labels.source,
    )


def dawid_skene(
    labels: LabelSet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> Consensus:
    """Dawid & Skene (1979) EM: class priors and one confusion matrix per annotator.

    Starts from the majority-vote shares, then alternates the M step (priors and confusion
    matrices from the item posteriors, plus ``smoothing`` pseudo-counts so no probability is
    zero) and the E step (item posteriors), until the mean log-likelihood per item changes by
    less than ``tol`` or ``max_iter`` rounds have run (``converged`` says which). Ties in the
    posterior go to the earlier category.
    """
    _check_threshold(threshold)
    if max_iter < 1:
        raise InvalidInput("must be at least 1", field="max_iter")
    if not tol > 0:
        raise InvalidInput("must be positive", field="tol")
    if not smoothing >= 0:
        raise InvalidInput("must be zero or more", field="smoothing")
    k, n_ann = labels.n_categories, labels.n_annotators
    counts = labels.counts().astype(np.float64)
    n = counts.sum(axis=1)
    posterior = counts / n[:, None]
    starts = np.flatnonzero(np.r_[True, labels.item[1:] != labels.item[:-1]])
    cell = labels.annotator * k + labels.label
    previous = -np.inf
    converged = False
    iteration = 0
    priors: Floats = np.full(k, 1.0 / k)
    confusion: Floats = np.full((n_ann, k, k), 1.0 / k)
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        priors, confusion = _m_step(
            posterior, labels.item, cell, n_ann=n_ann, k=k, smoothing=smoothing
        )
        posterior, loglik = _e_step(priors, confusion, labels, starts)
        if abs(loglik - previous) < tol:
            converged = True
            break
        previous = loglik
    codes = posterior.argmax(axis=1).astype(np.int64)
    confidence = posterior[np.arange(labels.n_items), codes]
    frame = _frame(labels, codes, confidence, confidence < threshold, n.astype(np.int64))
    names = list(labels.categories)
    return Consensus(
        frame=frame,
        method="dawid_skene",
        codes=codes,
        threshold=threshold,
        priors=pd.Series(priors, index=names, name="prior"),
        confusion={
            str(name): pd.DataFrame(confusion[a], index=names, columns=names)
            for a, name in enumerate(labels.annotators)
        },
        n_iter=iteration,
        converged=converged,
        source=labels.source,
    )


def save_consensus(
    result: Consensus,
    *,
    name: str,
    description: str | None = None,
    tags: Iterable[str] = (),
) -> DatasetVersion:
    """Save ``result.frame`` as the next version of dataset ``name``, keyed by ``item_id``.

    The version's ``source_uri`` is the label set's provenance (its dataset ref, e.g.
    ``reviews@v3``, or the file it was read from); the description names the method and
    threshold unless one is given.
    """
    import keel.data

    if description is None:
        origin = result.source or "a label set"
        description = f"{result.method} consensus of {origin} (review below {result.threshold})"
    return keel.data.add(
        result.frame,
        name=name,
        description=description,
        tags=tags,
        key="item_id",
        source_uri=result.source,
    )


def _m_step(
    posterior: Floats, item: Codes, cell: Codes, *, n_ann: int, k: int, smoothing: float
) -> tuple[Floats, Floats]:
    priors = posterior.sum(axis=0) + smoothing
    priors /= priors.sum()
    weights = posterior[item]  # one row per label: the posterior of the item it belongs to
    # counts[a, l, j] = sum of P(true class j) over the labels l given by annotator a
    counts = np.stack(
        [np.bincount(cell, weights=weights[:, j], minlength=n_ann * k) for j in range(k)],
        axis=1,
    ).reshape(n_ann, k, k)
    confusion = counts.transpose(0, 2, 1) + smoothing  # [a, true j, given l]
    totals = confusion.sum(axis=2, keepdims=True)
    confusion = confusion / np.where(totals > 0, totals, 1.0)
    return priors, confusion


def _e_step(
    priors: Floats, confusion: Floats, labels: LabelSet, starts: Codes
) -> tuple[Floats, float]:
    with np.errstate(divide="ignore"):
        log_conf = np.log(confusion)
        log_prior = np.log(priors)
    per_label = log_conf[labels.annotator, :, labels.label]  # (n_labels, k)
    log_post = np.add.reduceat(per_label, starts, axis=0) + log_prior
    top = log_post.max(axis=1, keepdims=True)
    joint = np.exp(log_post - top)
    total = joint.sum(axis=1, keepdims=True)
    loglik = float((np.log(total) + top).mean())
    return joint / total, loglik


def _frame(
    labels: LabelSet, codes: Codes, confidence: Floats, review: npt.NDArray[np.bool_], n: Codes
) -> pd.DataFrame:
    cats = np.empty(labels.n_categories, dtype=object)
    cats[:] = list(labels.categories)
    return pd.DataFrame(
        {
            "item_id": labels.item_ids,
            "label": cats[codes],
            "confidence": confidence.astype(np.float64),
            "needs_review": review.astype(bool),
            "n_labels": n.astype(np.int64),
        }
    )


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput("must be between 0 and 1", field="threshold")
