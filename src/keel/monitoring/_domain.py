"""Multivariate drift with a domain classifier: how well a random forest tells reference rows
from current rows (cross-validated ROC AUC), and which columns it relies on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.monitoring._records import DRIFT, INSUFFICIENT, OK, MultivariateDrift
from keel.monitoring._reference import (
    NUMERIC,
    SAMPLE_ROWS,
    ReferenceProfile,
    column_kind,
    sample_rows_of,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

AUC_THRESHOLD = 0.55  # Evidently's default for its domain-classifier (embeddings) drift
FOLDS = 3
MIN_ROWS = 20  # per side: fewer and a 3-fold AUC is noise


def _matrix(
    ref: dict[str, list[Any]],
    cur: dict[str, list[Any]],
    columns: Sequence[str],
    kinds: dict[str, str],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    import numpy as np

    n_ref = len(next(iter(ref.values()))) if ref else 0
    n_cur = len(next(iter(cur.values()))) if cur else 0
    features = []
    for name in columns:
        both = list(ref[name]) + list(cur[name])
        if kinds[name] == NUMERIC:
            values = np.array([np.nan if v is None else v for v in both], dtype=np.float64)
            fill = np.nanmedian(values[:n_ref]) if np.isfinite(values[:n_ref]).any() else 0.0
            features.append(np.where(np.isnan(values), fill, values))
        else:
            # Codes from the union of categories, nulls as their own code: an unseen category
            # gets a code the reference never has, which the forest can use.
            codes = {c: i for i, c in enumerate(sorted({str(v) for v in both if v is not None}))}
            features.append(np.array([-1 if v is None else codes[str(v)] for v in both], float))
    x = np.column_stack(features)
    y = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    return x, y


def domain_classifier(
    profile: ReferenceProfile,
    current: pa.Table,
    *,
    columns: Sequence[str],
    sample_rows: int = SAMPLE_ROWS,
    threshold: float = AUC_THRESHOLD,
    seed: int = 0,
) -> MultivariateDrift:
    cols = [
        c
        for c in columns
        if c in profile.sample and column_kind(current.column(c).type) == profile.columns[c].kind
    ]
    ref = {c: profile.sample[c] for c in cols}
    cur = sample_rows_of(current.select(cols), sample_rows, seed=seed + 1) if cols else {}
    n_ref = len(next(iter(ref.values()))) if ref else 0
    n_cur = len(next(iter(cur.values()))) if cur else 0
    if not cols or n_ref < MIN_ROWS or n_cur < MIN_ROWS:
        why = (
            "the reference kept no sample rows (e.g. made from a stored dataset profile)"
            if not profile.sample
            else "no column to compare"
            if not cols
            else (f"{min(n_ref, n_cur)} rows on the smaller side (< {MIN_ROWS})")
        )
        return MultivariateDrift(
            auc=None,
            auc_std=None,
            threshold=threshold,
            drifted=False,
            status=INSUFFICIENT,
            reason=why,
            rows_reference=n_ref,
            rows_current=n_cur,
        )
    import numpy as np

    try:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score
    except ImportError as exc:
        from keel.errors import MissingDependency

        raise MissingDependency(
            "scikit-learn", extra="sklearn", purpose="Multivariate drift"
        ) from exc

    kinds = {c: profile.columns[c].kind for c in cols}
    x, y = _matrix(ref, cur, cols, kinds)

    def forest() -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=60, max_depth=8, min_samples_leaf=5, random_state=seed, n_jobs=1
        )

    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_score(forest(), x, y, cv=folds, scoring="roc_auc")
    auc = float(np.mean(scores))
    model = forest().fit(x, y)
    ranked = sorted(zip(cols, model.feature_importances_, strict=True), key=lambda kv: -kv[1])
    drifted = auc >= threshold
    return MultivariateDrift(
        auc=auc,
        auc_std=float(np.std(scores)),
        threshold=threshold,
        drifted=drifted,
        status=DRIFT if drifted else OK,
        reason=f"the classifier relies most on {ranked[0][0]!r}" if drifted else "",
        rows_reference=n_ref,
        rows_current=n_cur,
        folds=FOLDS,
        importances=tuple((c, float(v)) for c, v in ranked),
    )
