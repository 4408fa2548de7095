"""``assess_drift``: per-column tests chosen by type and sample size, degenerate columns
reported instead of crashing, and an optional domain classifier over all columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring._records import DRIFT, INSUFFICIENT, OK, ColumnDrift, DriftReport
from keel.monitoring._reference import (
    CATEGORICAL,
    EXACT_ROWS,
    NUMERIC,
    ColumnSummary,
    ReferenceProfile,
    as_table,
    category_counts,
    column_kind,
    finite_values,
)

if TYPE_CHECKING:
    import pyarrow as pa

KS, CHI2, PSI, WASSERSTEIN, JS = "ks", "chi2", "psi", "wasserstein", "jensenshannon"
TESTS = (KS, CHI2, PSI, WASSERSTEIN, JS)
ALIASES = {"js": JS, "chi-squared": CHI2, "chisquare": CHI2, "wasserstein_normed": WASSERSTEIN}
P_VALUE_TESTS = (KS, CHI2)
NUMERIC_TESTS = (KS, PSI, WASSERSTEIN, JS)
CATEGORICAL_TESTS = (CHI2, PSI, JS)
DEFAULT_THRESHOLDS: dict[str, float] = {KS: 0.05, CHI2: 0.05, PSI: 0.2, WASSERSTEIN: 0.1, JS: 0.1}
SMALL = EXACT_ROWS  # the smaller sample at most this many values: a p-value test
MIN_ROWS = 5  # fewer usable values than this in either sample: insufficient data
DRIFT_SHARE = 0.5


def default_test(kind: str, ref_count: int, cur_count: int) -> str:
    """The choice rule (docs/monitoring.md): a p-value test while the smaller sample has at
    most 1,000 values, a distance beyond. A test's power grows with both sizes (KS works on
    n*m/(n+m) < min(n, m)): on a million rows a side, p-values flag differences nobody cares
    about, while a window of a few hundred rows makes distances noisy (~0.07 for the
    normalised Wasserstein at 800 rows of unchanged data) but keeps p-values calibrated."""
    small = min(ref_count, cur_count) <= SMALL
    if kind == NUMERIC:
        return KS if small else WASSERSTEIN
    return CHI2 if small else JS


def _test_name(name: str) -> str:
    test = ALIASES.get(name.lower(), name.lower())
    if test not in TESTS:
        raise InvalidInput(
            f"unknown drift test {name!r}; use one of {', '.join(TESTS)}", field="tests"
        )
    return test


def _insufficient(ref: ColumnSummary, reason: str, *, cur_count: int = 0) -> ColumnDrift:
    return ColumnDrift(
        column=ref.name,
        type=ref.kind,
        test=None,
        statistic=None,
        p_value=None,
        threshold=None,
        drifted=False,
        status=INSUFFICIENT,
        reason=reason,
        reference_count=ref.count,
        current_count=cur_count,
    )


def _verdict(
    ref: ColumnSummary,
    test: str,
    stat: float,
    p_value: float | None,
    threshold: float,
    *,
    cur_count: int,
    unseen: tuple[tuple[str, int], ...] = (),
    reason: str = "",
) -> ColumnDrift:
    drifted = p_value < threshold if p_value is not None else stat >= threshold
    if unseen:
        shown = ", ".join(f"{k!r} ({v})" for k, v in unseen[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        noun = "category" if len(unseen) == 1 else "categories"
        reason = f"{len(unseen)} {noun} unseen in the reference: {shown}{more}"
    if test == PSI and not drifted and stat >= 0.1:
        reason = reason or "moderate shift (PSI >= 0.1)"
    return ColumnDrift(
        column=ref.name,
        type=ref.kind,
        test=test,
        statistic=stat,
        p_value=p_value,
        threshold=threshold,
        drifted=bool(drifted),
        status=DRIFT if drifted else OK,
        reason=reason,
        reference_count=ref.count,
        current_count=cur_count,
        unseen=unseen,
    )


def _numeric(
    ref: ColumnSummary, column: pa.ChunkedArray, test: str | None, thr: Any
) -> ColumnDrift:
    import numpy as np

    from keel.monitoring import _stats

    values = finite_values(column)
    n = len(values)
    if ref.count < MIN_ROWS:
        return _insufficient(
            ref, f"reference has {ref.count} usable values (< {MIN_ROWS})", cur_count=n
        )
    if n < MIN_ROWS:
        return _insufficient(ref, f"current has {n} usable values (< {MIN_ROWS})", cur_count=n)
    if ref.std == 0.0 or len(ref.edges) < 2:
        differ = float(np.mean(values != ref.min))
        return _insufficient(
            ref,
            f"constant in the reference ({ref.min:g}); {differ:.1%} of current values differ",
            cur_count=n,
        )
    test = test or default_test(NUMERIC, ref.count, n)
    threshold = thr(test)
    if test == KS and ref.values is not None:
        stat, p = _stats.ks_exact(np.asarray(ref.values), values)
        return _verdict(ref, test, stat, p, threshold, cur_count=n)
    bins = _stats.bin_numeric(ref, values)
    if test == KS:
        stat, p = _stats.ks_binned(ref, bins)
        return _verdict(ref, test, stat, p, threshold, cur_count=n)
    if test == WASSERSTEIN:
        # Normalised by the reference's standard deviation, so 0.1 means "moved a tenth of
        # a standard deviation" whatever the unit.
        stat = _stats.wasserstein(ref, bins) / float(ref.std or 1.0)
        return _verdict(ref, test, stat, None, threshold, cur_count=n)
    ref_counts = np.asarray(ref.counts)
    if test == PSI:
        stat = _stats.psi(
            _stats.merge_counts(ref, ref_counts, ref.deciles),
            _stats.merge_counts(ref, bins.counts, ref.deciles),
        )
        return _verdict(ref, test, stat, None, threshold, cur_count=n)
    stat = _stats.jensen_shannon(
        _stats.merge_counts(ref, ref_counts, ref.vigintiles),
        _stats.merge_counts(ref, bins.counts, ref.vigintiles),
    )
    return _verdict(ref, test, stat, None, threshold, cur_count=n)


def _categorical(
    ref: ColumnSummary, column: pa.ChunkedArray, test: str | None, thr: Any
) -> ColumnDrift:
    from keel.monitoring import _stats

    current = category_counts(column)
    n = sum(current.values())
    if ref.count < MIN_ROWS:
        return _insufficient(
            ref, f"reference has {ref.count} non-null values (< {MIN_ROWS})", cur_count=n
        )
    if n < MIN_ROWS:
        return _insufficient(ref, f"current has {n} non-null values (< {MIN_ROWS})", cur_count=n)
    counts = _stats.align_categories(ref, current)
    if len(counts.labels) < 2:
        return _insufficient(
            ref,
            f"one category ({counts.labels[0]!r}) on both sides: nothing to compare",
            cur_count=n,
        )
    test = test or default_test(CATEGORICAL, ref.count, n)
    threshold = thr(test)
    if test == CHI2:
        stat, p = _stats.chi_squared(counts.ref, counts.cur)
        return _verdict(ref, test, stat, p, threshold, cur_count=n, unseen=counts.unseen)
    stat = (_stats.psi if test == PSI else _stats.jensen_shannon)(counts.ref, counts.cur)
    return _verdict(ref, test, stat, None, threshold, cur_count=n, unseen=counts.unseen)


def assess_column(
    ref: ColumnSummary,
    column: pa.ChunkedArray | None,
    *,
    test: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    strict: bool = True,
) -> ColumnDrift:
    """One column's verdict against its reference summary (``column`` None: missing).
    A ``test`` that does not fit the column's type is an error when ``strict``, else ignored."""

    def thr(name: str) -> float:
        t = thresholds or {}
        return float(t.get(ref.name, t.get(name, DEFAULT_THRESHOLDS[name])))

    if column is None:
        return _insufficient(ref, "column missing from the current data")
    if ref.kind not in (NUMERIC, CATEGORICAL):
        return _insufficient(ref, f"type {ref.type} is not tested for drift", cur_count=len(column))
    kind = column_kind(column.type)
    if kind != ref.kind:
        return ColumnDrift(
            column=ref.name,
            type=ref.kind,
            test="type",
            statistic=None,
            p_value=None,
            threshold=None,
            drifted=True,
            status=DRIFT,
            reason=f"type changed from {ref.type} to {column.type}",
            reference_count=ref.count,
            current_count=len(column),
        )
    applicable = NUMERIC_TESTS if kind == NUMERIC else CATEGORICAL_TESTS
    if test is not None and test not in applicable and not strict:
        test = None  # one test named for every column: columns it does not fit keep the rule
    if test is not None and test not in applicable:
        raise InvalidInput(
            f"test {test!r} does not apply to {kind} column {ref.name!r}", field="tests"
        )
    if len(column) == 0:
        return _insufficient(ref, "current window has no rows")
    if column.null_count == len(column):
        return _insufficient(ref, "all current values are null", cur_count=0)
    if kind == NUMERIC:
        return _numeric(ref, column, test, thr)
    return _categorical(ref, column, test, thr)


def assess_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    tests: str | Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    multivariate: bool = False,
    drift_share: float = DRIFT_SHARE,
    current_name: str = "current",
) -> DriftReport:
    """Compare ``current`` (a DataFrame, an Arrow table, or a window source with
    ``to_arrow()``) with ``reference`` (a ``ReferenceProfile``, a dataset ref such as
    ``"churn@v3"``, or a DataFrame/Table summarised on the spot).

    ``tests`` names one test for every column or maps columns to tests (``ks``, ``chi2``,
    ``psi``, ``wasserstein``, ``jensenshannon``); ``thresholds`` maps a column or a test name
    to its threshold (the column wins). ``multivariate`` adds the domain classifier."""
    import concurrent.futures

    profile = _as_profile(reference)
    table = as_table(current, field="current")
    names = list(columns) if columns is not None else list(profile.columns)
    missing = [n for n in names if n not in profile.columns]
    if missing:
        raise InvalidInput(f"columns not in the reference: {', '.join(missing)}", field="columns")
    if isinstance(tests, str):
        chosen: dict[str, str | None] = dict.fromkeys(names, _test_name(tests))
    else:
        unknown = [c for c in (tests or {}) if c not in profile.columns]
        if unknown:
            raise InvalidInput(f"tests name unknown columns: {', '.join(unknown)}", field="tests")
        chosen = {n: _test_name(tests[n]) if tests and n in tests else None for n in names}
    limits: dict[str, float] = {}
    for given, value in (thresholds or {}).items():
        key = given
        if key not in profile.columns:
            key = ALIASES.get(key.lower(), key.lower())
            if key not in TESTS:
                raise InvalidInput(
                    f"threshold for unknown column or test {key!r}", field="thresholds"
                )
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e300:
            raise InvalidInput(f"threshold for {key!r} must be a number >= 0", field="thresholds")
        limits[key] = float(value)
    present = set(table.column_names)

    def one(name: str) -> ColumnDrift:
        column = table.column(name) if name in present else None
        return assess_column(
            profile.columns[name],
            column,
            test=chosen[name],
            thresholds=limits,
            strict=not isinstance(tests, str),
        )

    # Binning and counting run in NumPy/Arrow, which release the GIL: columns in parallel.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(names), 4))) as pool:
        results = tuple(pool.map(one, names))
    multi = None
    if multivariate:
        from keel.monitoring._domain import domain_classifier

        multi = domain_classifier(profile, table, columns=[n for n in names if n in present])
    return DriftReport(
        reference=profile.source,
        current=current_name,
        rows_reference=profile.rows,
        rows_current=table.num_rows,
        columns=results,
        drift_share_threshold=drift_share,
        multivariate=multi,
    )


def assess_prediction_drift(
    reference: Any,
    current: Any,
    *,
    column: str = "prediction",
    test: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of a model's output column (the same tests as for any other column)."""
    report = assess_drift(
        reference,
        current,
        columns=[column],
        tests={column: test} if test else None,
        thresholds={column: threshold} if threshold is not None else None,
    )
    return report.columns[0]


def _as_profile(reference: Any) -> ReferenceProfile:
    if isinstance(reference, ReferenceProfile):
        return reference
    if isinstance(reference, str):
        return ReferenceProfile.from_dataset(reference)
    return ReferenceProfile.from_frame(reference)
