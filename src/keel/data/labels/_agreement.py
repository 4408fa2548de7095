"""Inter-annotator agreement: Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha.

Every statistic is computed from count or coincidence matrices built with ``np.bincount``, so
the cost is linear in the number of labels (plus within-item pairs for Cohen's kappa). When a
statistic is undefined (one annotator, no shared items, a single category used) the value is
NaN and ``note`` says why; no statistic raises for a valid label set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from keel.data.labels._labelset import LabelSet
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.data.labels._consensus import Consensus

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int64]
Level = Literal["nominal", "ordinal"]

ONE_CATEGORY = "undefined: only one category was used, so chance agreement is 1"
DENSE_MATRIX_CELLS = 50_000_000
NEED_TWO = "undefined: no item has labels from two annotators"


@dataclass(frozen=True)
class Score:
    """An agreement statistic; ``value`` is NaN when undefined and ``note`` says why.

    ``note`` also carries caveats on defined values (e.g. Fleiss' kappa with varying raters).
    """

    value: float
    n_items: int
    note: str | None = None

    def __float__(self) -> float:
        return self.value


def krippendorff_alpha(labels: LabelSet, *, level: Level | None = None) -> Score:
    """Krippendorff's alpha over all pairable values (items with at least two labels).

    ``level`` defaults to ``"ordinal"`` for a label set with a declared order, else
    ``"nominal"``. Missing labels are allowed; ``n_items`` counts the pairable items.
    """
    chosen = level or ("ordinal" if labels.ordinal else "nominal")
    if chosen not in ("nominal", "ordinal"):
        raise InvalidInput("must be 'nominal' or 'ordinal'", field="level")
    counts = labels.counts().astype(np.float64)
    m = counts.sum(axis=1)
    pairable = m >= 2
    if not pairable.any():
        return Score(float("nan"), 0, NEED_TWO)
    counts, m = counts[pairable], m[pairable]
    # coincidence matrix: o_ck = sum_u (n_uc n_uk - [c=k] n_uc) / (m_u - 1)
    weighted = counts / (m - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _ordinal_delta(n_c) if chosen == "ordinal" else 1.0 - np.eye(len(n_c))
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if expected == 0.0:
        return Score(float("nan"), int(pairable.sum()), ONE_CATEGORY)
    observed = float((coincidence * delta).sum())
    return Score(1.0 - (n - 1.0) * observed / expected, int(pairable.sum()))


def _ordinal_delta(n_c: Floats) -> Floats:
    # delta_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, categories in their declared order
    cum = np.cumsum(n_c)
    idx = np.arange(len(n_c))
    lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
    between = cum[hi] - cum[lo] + n_c[lo]
    return np.asarray((between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2, dtype=np.float64)


def fleiss_kappa(labels: LabelSet) -> Score:
    """Fleiss' kappa over items with at least two labels.

    Fleiss defined it for a constant number of raters per item. When the count varies, the
    per-item agreement ``sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))`` is averaged over items and
    category shares are taken over all their labels (the usual generalisation; identical to
    Fleiss when counts are constant); ``note`` then says the counts vary. Prefer Krippendorff's
    alpha for incomplete designs.
    """
    counts = labels.counts().astype(np.float64)
    n_i = counts.sum(axis=1)
    keep = n_i >= 2
    if not keep.any():
        return Score(float("nan"), 0, NEED_TWO)
    counts, n_i = counts[keep], n_i[keep]
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return Score(float("nan"), int(keep.sum()), ONE_CATEGORY)
    p_i = ((counts * (counts - 1)).sum(axis=1)) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    note = None
    if n_i.min() != n_i.max():
        note = (
            f"raters per item vary ({int(n_i.min())}-{int(n_i.max())}): generalised Fleiss' "
            "kappa; Krippendorff's alpha suits incomplete designs better"
        )
    return Score((p_bar - p_e) / (1.0 - p_e), int(keep.sum()), note)


def cohen_kappa(labels: LabelSet) -> pd.DataFrame:
    """Cohen's kappa for every annotator pair that labelled at least one item in common.

    Columns ``annotator_a, annotator_b, kappa, n_items, note``; pairs with no shared item are
    left out, so a single annotator gives an empty frame.
    """
    n_ann = labels.n_annotators
    sizes = np.bincount(labels.item, minlength=labels.n_items)
    join_cost = int((sizes * sizes).sum())
    dense_cost = n_ann * (n_ann - 1) // 2 * labels.n_items
    if dense_cost <= 4 * join_cost and n_ann * labels.n_items <= DENSE_MATRIX_CELLS:
        pair_ids, tables = _pair_tables_dense(labels)
    else:
        pair_ids, tables = _pair_tables_join(labels, sizes)
    kappa, n, notes = _kappa(tables)
    return pd.DataFrame(
        {
            "annotator_a": labels.annotators.take(pair_ids // n_ann),
            "annotator_b": labels.annotators.take(pair_ids % n_ann),
            "kappa": kappa,
            "n_items": n.astype(np.int64),
            "note": notes,
        }
    )


def _pair_tables_dense(labels: LabelSet) -> tuple[Codes, Floats]:
    """Contingency tables per annotator pair from the annotators x items matrix (few raters)."""
    k, n_ann = labels.n_categories, labels.n_annotators
    matrix = labels.matrix()
    ids: list[int] = []
    tables: list[Codes] = []
    for a in range(n_ann):
        for b in range(a + 1, n_ann):
            both = (matrix[a] >= 0) & (matrix[b] >= 0)
            if both.any():
                cells = matrix[a][both] * k + matrix[b][both]
                ids.append(a * n_ann + b)
                tables.append(np.bincount(cells, minlength=k * k).reshape(k, k))
    if not tables:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k, k))
    return np.asarray(ids, dtype=np.int64), np.stack(tables).astype(np.float64)


def _pair_tables_join(labels: LabelSet, sizes: Codes) -> tuple[Codes, Floats]:
    """Contingency tables from all within-item label pairs (many annotators, sparse design)."""
    k, n_ann = labels.n_categories, labels.n_annotators
    item_start = np.cumsum(sizes) - sizes
    rep = sizes[labels.item]
    left = np.repeat(np.arange(labels.n_labels), rep)
    offsets = np.arange(left.size) - np.repeat(np.cumsum(rep) - rep, rep)
    right = item_start[labels.item[left]] + offsets
    a, b = labels.annotator[left], labels.annotator[right]
    keep = a < b
    cells = labels.label[left[keep]] * k + labels.label[right[keep]]
    pair_ids, pair = np.unique(a[keep] * n_ann + b[keep], return_inverse=True)
    flat = np.bincount(pair * k * k + cells, minlength=pair_ids.size * k * k)
    return pair_ids.astype(np.int64), flat.reshape(pair_ids.size, k, k).astype(np.float64)


def _kappa(tables: Floats) -> tuple[Floats, Floats, list[str | None]]:
    """Cohen's kappa for a stack of k x k contingency tables."""
    n = tables.sum(axis=(1, 2))
    safe_n = np.where(n > 0, n, 1.0)
    p_o = np.trace(tables, axis1=1, axis2=2) / safe_n
    p_e = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1) / safe_n**2
    undefined = p_e >= 1.0 - 1e-12
    kappa = np.where(undefined, np.nan, (p_o - p_e) / np.where(undefined, 1.0, 1.0 - p_e))
    notes: list[str | None] = [ONE_CATEGORY if u else None for u in undefined]
    return kappa, n, notes


def annotator_agreement(labels: LabelSet, consensus: Consensus) -> pd.DataFrame:
    """How each annotator agrees with a consensus: share of matching labels and Cohen's kappa.

    The consensus includes the annotator's own label, which flatters annotators on items with
    few labels. Columns ``annotator, n_labels, agreement, kappa, note``.
    """
    k = labels.n_categories
    n_ann = labels.n_annotators
    chosen = consensus.codes[labels.item]
    tables = np.bincount(
        labels.annotator * k * k + labels.label * k + chosen, minlength=n_ann * k * k
    )
    stacked = tables.reshape(n_ann, k, k).astype(np.float64)
    kappa, n, notes = _kappa(stacked)
    agreement = np.trace(stacked, axis1=1, axis2=2) / np.where(n > 0, n, 1.0)
    return pd.DataFrame(
        {
            "annotator": labels.annotators,
            "n_labels": n.astype(np.int64),
            "agreement": agreement,
            "kappa": kappa,
            "note": notes,
        }
    )
