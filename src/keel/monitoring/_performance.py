"""Model performance over a window of the prediction log, measured on the labels that have
arrived so far (delayed feedback), with label coverage, per role, per model version, per slice,
per time bucket, champion vs challenger on the same requests, business metrics, and the
change points of the error stream.

Only rows with a label (and a prediction) count towards a metric; coverage says how many that
is. The headline metrics are the champion's (every row when the log has no champion rows).
The report records live in ``_performance_report`` (re-exported here). Metrics equal
scikit-learn's; the champion/challenger interval is ``keel.models._bootstrap``'s paired
bootstrap. Degenerate inputs give None with a reason, never NaN: no labels, one class, one
row, all-null predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring._detectors import ChangePoint
from keel.monitoring._performance_metrics import Metrics, compare, compute
from keel.monitoring._performance_report import BucketMetrics, PerformanceReport, SliceMetrics

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.monitoring._performance_align import Aligned
    from keel.monitoring._windows import Window

__all__ = ["BucketMetrics", "PerformanceReport", "SliceMetrics", "assess_performance"]

SLICE_BINS = 4
MAX_SLICE_VALUES = 20


def _table(log: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(log, pa.Table):
        return log
    try:
        return pa.Table.from_pandas(log, preserve_index=False)
    except (TypeError, AttributeError, pa.ArrowException) as exc:
        raise InvalidInput(
            f"expected a pyarrow.Table or pandas.DataFrame of the prediction log ({exc})",
            field="log",
        ) from None


def _codes(table: pa.Table, column: str, default: str) -> tuple[list[str], Any]:
    """The distinct values of a text column and each row's int64 index into them (integer
    comparisons, not a million string ones)."""
    import numpy as np
    import pyarrow as pa

    if column not in table.column_names or table.num_rows == 0:
        return [default], np.zeros(table.num_rows, dtype=np.int64)
    values = table.column(column).cast(pa.string()).fill_null(default).combine_chunks()
    encoded = values.dictionary_encode()
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    return names, np.asarray(encoded.indices, dtype=np.int64)


def _distinct(codes: Any) -> int:
    import numpy as np

    return int(np.count_nonzero(np.bincount(codes))) if len(codes) else 0


def _name(item: tuple[int, str]) -> str:
    return item[1]


def _slice_values(table: pa.Table, name: str) -> tuple[str, Any, list[str]]:
    """The slice column's name in the log, each row's slice label (text) and the labels in
    display order (bins low to high; categories by name)."""
    import numpy as np
    import pyarrow as pa

    column = name if name in table.column_names else f"input.{name}"
    if column not in table.column_names:
        raise InvalidInput(
            f"no column {name!r} or 'input.{name}' in the log; slices are input columns",
            field="slices",
        )
    values = table.column(column)
    labels = np.full(table.num_rows, "(null)", dtype=object)
    null = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), float)
        ok = ~null & np.isfinite(numbers)
        if ok.any():
            edges = np.unique(np.quantile(numbers[ok], np.linspace(0, 1, SLICE_BINS + 1)))
            inner = edges[1:-1]
            bins = np.searchsorted(inner, numbers[ok], side="right")
            names = [
                f"[{edges[i]:.6g}, {edges[i + 1]:.6g}{']' if i + 2 == len(edges) else ')'}"
                for i in range(max(len(edges) - 1, 1))
            ]
            if len(edges) == 1:
                names = [f"{edges[0]:.6g}"]
            labels[ok] = np.asarray(names, dtype=object)[bins]
            return column, labels, [*names, "(null)"]
        return column, labels, ["(null)"]
    text = values.cast(pa.string()).to_numpy(zero_copy_only=False)
    labels[~null] = np.asarray(text, dtype=object)[~null]
    uniq, counts = np.unique(labels.astype(str), return_counts=True)
    if len(uniq) > MAX_SLICE_VALUES:
        keep = set(uniq[np.argsort(-counts, kind="stable")[: MAX_SLICE_VALUES - 1]].tolist())
        labels[~np.isin(labels.astype(str), list(keep))] = "(other)"
    return column, labels, sorted(set(labels.tolist()))


def assess_performance(
    log: pa.Table | Any,
    *,
    task: str | None = None,
    prediction: str = "output.prediction",
    slices: Sequence[str] = (),
    business: Mapping[str, Any] | None = None,
    bucket_ms: int | None = None,
    positive_label: Any = None,
    detectors: Sequence[str] = ("adwin",),
    resamples: int = 1000,
    window: Window | None = None,
) -> PerformanceReport:
    """Performance of a window of the prediction log joined with its labels (a table from
    ``read_window``). See ``docs/monitoring-performance.md``: ``task`` is inferred when None,
    ``slices`` are input columns (numeric ones cut into quantile bins), ``business`` maps names
    to JSON-declared values, ``bucket_ms`` adds a time series, ``detectors`` run on the
    headline error stream in prediction-time order, ``resamples`` sizes the bootstrap."""
    import numpy as np
    import pyarrow as pa

    from keel.monitoring._detectors import METHODS
    from keel.monitoring._performance_align import align, parse_business
    from keel.monitoring._windows import timestamps_ms, window_of

    table = _table(log)
    for name in ("request_id", "timestamp"):
        if name not in table.column_names:
            raise InvalidInput(
                f"the log lacks {name!r}; pass a table from read_window", field="log"
            )
    if prediction not in table.column_names:
        outputs = [c for c in table.column_names if c.startswith("output.")]
        raise InvalidInput(
            f"no column {prediction!r} in the log; outputs present: {outputs or 'none'}",
            field="prediction",
        )
    unknown = [d for d in detectors if d not in METHODS]
    if unknown:
        raise InvalidInput(
            f"unknown detector(s) {unknown}; choose from {METHODS}", field="detectors"
        )
    rules = parse_business(business)
    window = window or window_of(table)
    n = table.num_rows
    labels = table.column("label") if "label" in table.column_names else pa.nulls(n)
    aligned = align(labels, table.column(prediction), task=task, positive_label=positive_label)
    _, request_ids = _codes(table, "request_id", "")
    role_names, role_codes = _codes(table, "role", "champion")
    version_names, version_codes = _codes(table, "model_version", "")
    champion_rows, challenger_rows = (
        role_codes == role_names.index(r) if r in role_names else np.zeros(n, dtype=bool)
        for r in ("champion", "challenger")
    )
    rows_in_request = (
        np.asarray(table.column("row").fill_null(0).to_numpy(zero_copy_only=False))
        if "row" in table.column_names
        else np.zeros(n, dtype=np.int64)
    )
    times = timestamps_ms(table)
    has_label = ~np.asarray(labels.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    requests = _distinct(request_ids)

    headline = champion_rows
    if not headline.any():
        headline = np.ones(n, dtype=bool)

    def metrics_of(mask: Any) -> Metrics:
        return compute(aligned, mask, rules, missing_labels=int((mask & ~has_label).sum()))

    by_role = {r: metrics_of(role_codes == i) for i, r in sorted(enumerate(role_names), key=_name)}
    by_version = {
        v: metrics_of(version_codes == i) for i, v in sorted(enumerate(version_names), key=_name)
    }
    slice_results: dict[str, tuple[SliceMetrics, ...]] = {}
    for name in slices:
        column, values, order = _slice_values(table, name)
        present = set(values[headline].tolist())
        slice_results[column] = tuple(
            SliceMetrics(
                str(v), int((headline & (values == v)).sum()), metrics_of(headline & (values == v))
            )
            for v in order
            if v in present
        )
    buckets = (
        _buckets(
            bucket_ms,
            times,
            headline=headline,
            request_ids=request_ids,
            has_label=has_label,
            window=window,
            metrics_of=metrics_of,
        )
        if bucket_ms is not None
        else []
    )
    comparison = None
    if champion_rows.any() and challenger_rows.any():
        comparison = compare(
            aligned,
            champion=champion_rows,
            challenger=challenger_rows,
            keys=(request_ids, rows_in_request),
            versions=np.asarray(version_names, dtype=object)[version_codes],
            resamples=resamples,
        )
    changes, ran = _changes(aligned, headline, times, detectors)
    headline_metrics = metrics_of(headline)
    reason = ""
    if n == 0:
        reason = "the window holds no predictions"
    elif not has_label.any():
        reason = "no labels have arrived for the predictions in this window"
    return PerformanceReport(
        task=aligned.task if aligned.usable.any() or task else None,
        prediction=prediction,
        rows=n,
        requests=requests,
        labelled_rows=int(has_label.sum()),
        labelled_requests=_distinct(request_ids[has_label]),
        metrics=headline_metrics,
        classes=aligned.classes,
        positive_label=aligned.positive,
        roles=by_role,
        versions=by_version,
        slices=slice_results,
        buckets=tuple(buckets),
        comparison=comparison,
        changes=tuple(changes),
        detectors=tuple(ran) if ran else tuple(detectors),
        reason=reason,
    )


def _buckets(
    bucket_ms: Any,
    times: Any,
    *,
    headline: Any,
    request_ids: Any,
    has_label: Any,
    window: Window | None,
    metrics_of: Callable[[Any], Metrics],
) -> list[BucketMetrics]:
    """The headline rows per time bucket aligned to multiples of ``bucket_ms``."""
    import numpy as np

    if isinstance(bucket_ms, bool) or not isinstance(bucket_ms, int) or bucket_ms <= 0:
        raise InvalidInput("must be a positive number of milliseconds", field="bucket_ms")
    buckets = []
    starts = times - times % bucket_ms
    for start in np.unique(starts[headline]):  # over buckets, each one vectorised pick
        pick = headline & (starts == start)
        s, e = int(start), int(start) + bucket_ms
        if window is not None:
            s, e = max(s, window.start_ms), min(e, window.end_ms)
        buckets.append(
            BucketMetrics(
                s,
                e,
                rows=int(pick.sum()),
                requests=_distinct(request_ids[pick]),
                labelled_requests=_distinct(request_ids[pick & has_label]),
                metrics=metrics_of(pick),
            )
        )
    return buckets


def _changes(
    aligned: Aligned, headline: Any, times: Any, detectors: Sequence[str]
) -> tuple[list[ChangePoint], list[str]]:
    """Change points of the headline error stream, in prediction-time order."""
    import numpy as np

    from keel.monitoring._detectors import detect_changes, error_stream

    changes: list[ChangePoint] = []
    ran: list[str] = []
    rows = np.flatnonzero(headline & aligned.usable)
    if not len(rows):
        return changes, ran
    rows = rows[np.argsort(times[rows], kind="stable")]
    errors = error_stream(aligned.truth[rows], aligned.predicted[rows], task=aligned.task)
    for method in detectors:
        if method == "ddm" and aligned.task != "classification":
            raise InvalidInput("DDM needs a classifier's 0/1 errors", field="detectors")
        changes += detect_changes(errors, times[rows], method=method)
        ran.append(method)
    return changes, ran
