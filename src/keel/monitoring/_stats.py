"""Drift statistics computed from binned summaries (NumPy, no loop over rows).

A current column is binned on the reference's fixed edges (``bin_numeric``) or counted by
category (``align_categories``); every test then works on the two count vectors. The
Kolmogorov-Smirnov test is exact (SciPy on the values) when the reference kept its values, and
otherwise its statistic is evaluated at the reference's quantile edges (a lower bound of the
exact one, off by at most the mass of one bin: about 0.1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from keel.monitoring._reference import ColumnSummary

PSI_FLOOR = 1e-4  # share given to an empty bin so PSI stays finite (the usual convention)


def scipy_stats() -> Any:
    """``scipy.stats``, imported on first use (it takes ~0.3 s)."""
    import scipy.stats  # type: ignore[import-untyped]  # no stubs

    return scipy.stats


@dataclass(frozen=True)
class NumericBins:
    """A current numeric column on the reference's bins: ``counts`` has one more entry than
    the edges (bin 0 holds values <= the first edge, the last bin values > the last edge)."""

    counts: np.ndarray[Any, Any]
    count: int
    below: int  # values strictly below the reference minimum
    below_excess: float  # sum of (reference min - value) over those
    above_excess: float  # sum of (value - reference max) over values above the maximum


def bin_numeric(ref: ColumnSummary, values: np.ndarray[Any, Any]) -> NumericBins:
    import numpy as np

    edges = np.asarray(ref.edges)
    # Sorting the window (SIMD sort: ~7 ms per million floats) and looking the edges up in it
    # is ~10x faster than looking each value up among the edges.
    ordered = np.sort(values)
    at_or_below = np.searchsorted(ordered, edges, side="right")  # values <= each edge
    counts = np.diff(np.concatenate(([0], at_or_below, [len(ordered)])))
    below = int(np.searchsorted(ordered, edges[0], side="left"))
    above = int(at_or_below[-1])
    return NumericBins(
        counts=counts,
        count=len(ordered),
        below=below,
        below_excess=max(0.0, float(edges[0] * below - ordered[:below].sum())),
        above_excess=max(0.0, float(ordered[above:].sum() - edges[-1] * (len(ordered) - above))),
    )


def _cdf_at_edges(counts: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    import numpy as np

    # counts[k] for k < len(edges) holds values in (edge[k-1], edge[k]]: the cumulative sum is
    # the CDF evaluated at each edge.
    return np.cumsum(counts[:-1]) / n


def wasserstein(ref: ColumnSummary, cur: NumericBins) -> float:
    """First Wasserstein distance between the reference and the current values.

    Beyond the reference's range it is exact (the tails' excess sums); inside, both CDFs are
    taken as linear between quantile edges, and |F_ref - F_cur| is integrated exactly over
    each piece (including a sign change inside it)."""
    import numpy as np

    edges = np.asarray(ref.edges)
    d = _cdf_at_edges(np.asarray(ref.counts), ref.count) - _cdf_at_edges(cur.counts, cur.count)
    tails = (cur.below_excess + cur.above_excess) / cur.count
    if len(edges) < 2:
        return tails
    widths = np.diff(edges)
    a, b = d[:-1], d[1:]
    same_sign = a * b >= 0
    abs_sum = np.abs(a) + np.abs(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(abs_sum > 0, (a * a + b * b) / np.where(abs_sum > 0, abs_sum, 1), 0.0)
    pieces = np.where(same_sign, abs_sum, crossing) * widths / 2
    return float(pieces.sum()) + tails


def ks_binned(ref: ColumnSummary, cur: NumericBins) -> tuple[float, float]:
    """KS statistic at the reference's edges (and just below its minimum), with SciPy's
    asymptotic p-value for the two sample sizes."""
    import numpy as np

    kstwo = scipy_stats().kstwo

    d = np.abs(
        _cdf_at_edges(np.asarray(ref.counts), ref.count) - _cdf_at_edges(cur.counts, cur.count)
    )
    stat = max(float(d.max()) if len(d) else 0.0, cur.below / cur.count)
    en = ref.count * cur.count / (ref.count + cur.count)
    return stat, float(np.clip(kstwo.sf(stat, round(en)), 0.0, 1.0))


def ks_exact(reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any]) -> tuple[float, float]:
    result = scipy_stats().ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def merge_counts(
    ref: ColumnSummary, counts: np.ndarray[Any, Any], cuts: tuple[float, ...]
) -> np.ndarray[Any, Any]:
    """Fine-bin counts merged into the coarser bins between ``cuts`` (which are edges)."""
    import numpy as np

    edges = np.asarray(ref.edges)
    at = np.searchsorted(edges, np.asarray(cuts), side="left")
    cum = np.cumsum(counts)
    bounds = np.concatenate(([0], cum[at], [cum[-1]]))
    return np.diff(bounds)


def psi(ref_counts: np.ndarray[Any, Any], cur_counts: np.ndarray[Any, Any]) -> float:
    import numpy as np

    p = np.maximum(ref_counts / ref_counts.sum(), PSI_FLOOR)
    q = np.maximum(cur_counts / cur_counts.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts: np.ndarray[Any, Any], cur_counts: np.ndarray[Any, Any]) -> float:
    """Jensen-Shannon distance in base 2 (in [0, 1]); SciPy's ``jensenshannon(p, q, base=2)``."""
    import numpy as np

    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray[Any, Any]) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def chi_squared(
    ref_counts: np.ndarray[Any, Any], cur_counts: np.ndarray[Any, Any]
) -> tuple[float, float]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table (no continuity
    correction): ``scipy.stats.chi2_contingency(table, correction=False)``."""
    import numpy as np

    chi2 = scipy_stats().chi2

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return stat, float(np.clip(chi2.sf(stat, dof), 0.0, 1.0))


@dataclass(frozen=True)
class CategoryCounts:
    """Reference and current counts over the same categories; categories the reference never
    had (``unseen``) are bins of their own with a reference count of 0."""

    labels: tuple[str, ...]
    ref: np.ndarray[Any, Any]
    cur: np.ndarray[Any, Any]
    unseen: tuple[tuple[str, int], ...]


def align_categories(ref: ColumnSummary, current: dict[str, int]) -> CategoryCounts:
    import numpy as np

    known = set(ref.categories)
    labels = list(ref.categories)
    ref_counts = list(ref.counts)
    cur_counts = [current.get(c, 0) for c in ref.categories]
    extra = sorted(((k, v) for k, v in current.items() if k not in known), key=lambda kv: -kv[1])
    unseen: tuple[tuple[str, int], ...] = ()
    if ref.other:
        # The reference's long tail was not kept: a category outside its list may be in that
        # tail, so it counts in "other" and is not called unseen.
        labels.append("<other>")
        ref_counts.append(ref.other)
        cur_counts.append(sum(v for _, v in extra))
    else:
        unseen = tuple(extra)
        labels.extend(k for k, _ in extra)
        ref_counts.extend(0 for _ in extra)
        cur_counts.extend(v for _, v in extra)
    return CategoryCounts(
        labels=tuple(labels),
        ref=np.asarray(ref_counts, dtype=np.int64),
        cur=np.asarray(cur_counts, dtype=np.int64),
        unseen=unseen,
    )
