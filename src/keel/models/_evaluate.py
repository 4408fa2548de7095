"""``evaluate``: score a registered version on a dataset version, record the result, and log
it to a run whose input is that dataset version.

The model predicts once on the whole table (one call, vectorised in the model library); every
metric is computed on the resulting arrays. Features are the model's signature columns for a
table model; for a tensor model, every column but the target and the dataset's key columns in
table order, unless ``features`` says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from keel import _time
from keel.errors import InvalidInput, KeelError
from keel.models import _metrics
from keel.models._release_records import EvaluationResult, new_id

if TYPE_CHECKING:
    import pandas as pd

    from keel.data import DatasetVersion
    from keel.models._load import LoadedModel
    from keel.models._records import ModelVersion
    from keel.models._registry import Models
    from keel.models._release_base import ReleaseStore

Task = Literal["auto", "classification", "regression"]
BusinessMetric = Callable[[Any, Any, "pd.DataFrame"], float]
_MAX_LOGGED_SLICE_KEYS = 500
# An integer target with at most this many distinct values is read as class labels.
_MAX_AUTO_CLASSES = 20


@dataclass(frozen=True, slots=True)
class Scored:
    """A model's predictions on one table: labels or values, class probabilities (columns in
    ``classes`` order) when it has them, and the truth."""

    y_true: npt.NDArray[Any]
    y_pred: npt.NDArray[Any]
    proba: npt.NDArray[np.float64] | None
    classes: tuple[Any, ...] | None  # None: regression

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"


def read_dataset(data: str | DatasetVersion) -> tuple[DatasetVersion, pd.DataFrame]:
    """A dataset version (``name@vN``, ``name@latest``, ``name@tag`` …) and its table."""
    import keel.data

    version = keel.data.show(data) if isinstance(data, str) else data
    if version.kind != "table":
        raise InvalidInput(f"{version.ref} is a folder; evaluation needs a table", field="data")
    return version, keel.data.get(version.ref)


def feature_frame(
    model: LoadedModel,
    frame: pd.DataFrame,
    *,
    target: str,
    key: Sequence[str] = (),
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    if target not in frame.columns:
        raise InvalidInput(
            f"no column {target!r} in the data (columns: {', '.join(map(str, frame.columns))})",
            field="target",
        )
    if features is not None:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise InvalidInput(f"no column {missing[0]!r} in the data", field="features")
        return frame[list(features)]
    signature = model.signature
    if signature is not None and signature.kind == "columns":
        return frame  # the signature picks and orders its columns
    drop = [target, *(k for k in key if k in frame.columns and k != target)]
    return frame.drop(columns=drop)


def score(model: LoadedModel, x: Any, y_true: Any, *, task: Task = "auto") -> Scored:
    """Predict once on ``x`` and pair the predictions with the truth."""
    import pandas as pd

    truth = np.asarray(y_true)
    missing = int(pd.isna(truth).sum())
    if missing:
        raise InvalidInput(
            f"the target has {missing} missing values; evaluate on rows with a known target",
            field="target",
        )
    if len(truth) == 0:
        raise InvalidInput("the data has no rows", field="data")
    pred = np.asarray(_call(model.predict, x))
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if len(pred) != len(truth):
        raise InvalidInput(
            f"the model returned {len(pred)} predictions for {len(truth)} rows", field="model"
        )
    has_proba = hasattr(model, "predict_proba")
    if task == "auto":
        task = "classification" if has_proba or _looks_categorical(truth, pred) else "regression"
    if task == "regression":
        try:
            numbers, values = truth.astype(np.float64), pred.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"regression needs numbers: {exc}", field="target") from exc
        if not np.isfinite(values).all():
            raise InvalidInput("the model predicted NaN or infinite values", field="model")
        return Scored(numbers, values, None, None)
    proba = None
    classes = _model_classes(model)
    if has_proba:
        raw = np.asarray(_call(model.predict_proba, x), dtype=np.float64)
        if classes is None or len(classes) != raw.shape[-1]:
            seen = np.unique(np.concatenate([truth.astype(object), pred.astype(object)]))
            if raw.ndim == 2 and len(seen) == raw.shape[1]:
                classes = tuple(seen)
            else:
                raise InvalidInput(
                    f"cannot tell which classes the model's {raw.shape[-1]} probability "
                    "columns stand for",
                    field="model",
                )
        proba = _metrics.check_proba(raw, rows=len(truth), classes=len(classes))
    if classes is None:
        classes = tuple(np.unique(np.concatenate([truth.astype(object), pred.astype(object)])))
    truth, pred = _align_labels(truth, pred, classes)
    return Scored(truth, pred, proba, tuple(classes))


def _call(fn: Callable[[Any], Any], x: Any) -> Any:
    """A prediction call; the model library's own exception becomes ``InvalidInput`` naming the
    model (the cause stays chained), so a broken model is a clear error, not a traceback."""
    try:
        return fn(x)
    except KeelError:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"the model failed to predict: {type(exc).__name__}: {exc}", field="model"
        ) from exc


def _looks_categorical(truth: npt.NDArray[Any], pred: npt.NDArray[Any]) -> bool:
    """Labels: text or booleans, or a few distinct integers that the model also predicts (a
    regressor's continuous predictions on a count target make it regression)."""
    if truth.dtype.kind in "OUSb":
        return True
    if truth.dtype.kind not in "iu":
        return False
    labels = np.unique(truth)
    return len(labels) <= _MAX_AUTO_CLASSES and bool(np.isin(pred, labels).all())


def _model_classes(model: LoadedModel) -> tuple[Any, ...] | None:
    classes = getattr(model.raw, "classes_", None)
    return None if classes is None else tuple(np.asarray(classes).tolist())


def _align_labels(
    truth: npt.NDArray[Any], pred: npt.NDArray[Any], classes: Sequence[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Compare labels in the model's own type: a target stored as 0/1 integers against
    classes 0.0/1.0 (or the reverse) is the same label."""
    kinds = {np.asarray(classes).dtype.kind, truth.dtype.kind}
    if kinds <= set("iuf"):
        return truth.astype(np.float64), pred.astype(np.float64)
    return truth, pred


def compute(
    scored: Scored,
    frame: pd.DataFrame,
    *,
    slices: Sequence[str] = (),
    business_metrics: Mapping[str, BusinessMetric] | None = None,
) -> dict[str, Any]:
    """Metrics, confusion matrix, calibration, per-slice and business metrics of ``scored``."""
    out: dict[str, Any] = {"confusion": None, "calibration": None}
    if scored.classes is None:
        out["metrics"] = _metrics.regression_metrics(scored.y_true, scored.y_pred)
    else:
        out["metrics"] = _metrics.classification_metrics(
            scored.y_true, scored.y_pred, scored.proba, classes=scored.classes
        )
        out["confusion"] = _metrics.confusion(scored.y_true, scored.y_pred, classes=scored.classes)
        if scored.proba is not None:
            out["calibration"] = _metrics.reliability(
                scored.y_true, scored.proba, classes=scored.classes
            )
    out["slices"] = {}
    for column in slices:
        if column not in frame.columns:
            raise InvalidInput(f"no column {column!r} in the data", field="slices")
        out["slices"][column] = _metrics.slice_metrics(
            frame[column].to_numpy(), scored.y_true, scored.y_pred, scored.proba,
            classes=scored.classes, field=f"slices.{column}",
        )  # fmt: skip
    out["business"] = {}
    for name, fn in (business_metrics or {}).items():
        try:
            value = fn(scored.y_true, scored.y_pred, frame)
        except KeelError:
            raise
        except Exception as exc:  # a user's function: its failure is named, not hidden
            raise InvalidInput(
                f"business metric {name!r} failed: {type(exc).__name__}: {exc}",
                field=f"business_metrics.{name}",
            ) from exc
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise InvalidInput(
                f"business metric {name!r} must return a number, got {type(value).__name__}",
                field=f"business_metrics.{name}",
            )
        if not math.isfinite(float(value)):
            raise InvalidInput(
                f"business metric {name!r} returned {value}", field=f"business_metrics.{name}"
            )
        out["business"][name] = float(value)
    return out


def evaluate(
    models: Models,
    releases: ReleaseStore,
    model_uri: str | ModelVersion,
    *,
    data: str | DatasetVersion,
    target: str,
    slices: Sequence[str] = (),
    business_metrics: Mapping[str, BusinessMetric] | None = None,
    features: Sequence[str] | None = None,
    task: Task = "auto",
    project: str | None = None,
) -> EvaluationResult:
    from keel.models._load import load

    version = models.resolve(model_uri if isinstance(model_uri, str) else model_uri.uri)
    dataset, frame = read_dataset(data)
    model = load(models, version)
    x = feature_frame(model, frame, target=target, key=dataset.key, features=features)
    scored = score(model, x, frame[target].to_numpy(), task=task)
    facts = compute(scored, frame, slices=slices, business_metrics=business_metrics)
    result = EvaluationResult(
        id=new_id(),
        name=version.name,
        version=version.version,
        dataset=dataset.ref,
        dataset_digest=dataset.digest,
        target=target,
        task=scored.task,
        rows=len(frame),
        metrics=facts["metrics"],
        classes=tuple(_metrics.label_text(c) for c in scored.classes or ()),
        confusion=facts["confusion"],
        calibration=facts["calibration"],
        slices=facts["slices"],
        business=facts["business"],
        created_ms=_time.now_ms(),
    )
    run_id = _log_run(models, version, dataset, result, project=project)
    return releases.save_evaluation(_with_run(result, run_id))


def _with_run(result: EvaluationResult, run_id: str) -> EvaluationResult:
    from dataclasses import replace

    return replace(result, run_id=run_id)


def _log_run(
    models: Models,
    version: ModelVersion,
    dataset: DatasetVersion,
    result: EvaluationResult,
    *,
    project: str | None,
) -> str:
    """One FINISHED run holding the evaluation: the dataset version as its input, the model as
    params and tags, every metric; a child of the active run if there is one."""
    from keel.config import get_settings
    from keel.tracking import Metric, RunIO, RunStatus, active_run
    from keel.tracking._env import capture_env

    tracking = models.tracking
    if project is None and version.run_id is not None:
        try:
            project = tracking.get_run(version.run_id).project
        except KeelError:
            project = None
    parent = active_run()
    run = tracking.create_run(
        project=project or get_settings().project,
        name=f"evaluate {version.name}/v{version.version}",
        parent_id=None if parent is None else parent.id,
        env=capture_env(),
        tags={
            "keel.evaluation": result.id,
            "keel.model": version.ref,
            "keel.dataset": dataset.ref,
        },
    )
    now = _time.now_ms()
    values: dict[str, float] = dict(result.metrics)
    values.update({f"business.{k}": v for k, v in result.business.items()})
    for column, by_value in result.slices.items():
        for value, found in by_value.items():
            for metric, number in found.items():
                if len(values) < _MAX_LOGGED_SLICE_KEYS:
                    values[f"slice.{column}={value}.{metric}"[:250]] = number
    try:
        tracking.log_io(run.id, [RunIO(ref=dataset.ref, digest=dataset.digest)])
        tracking.log_batch(
            run.id,
            metrics=[Metric(k, v, 0, now) for k, v in values.items() if math.isfinite(v)],
            params={"model": version.uri, "dataset": dataset.ref, "target": result.target,
                    "task": result.task, "rows": str(result.rows)},
        )  # fmt: skip
    except KeelError:
        tracking.update_run(run.id, status=RunStatus.FAILED, end_ms=_time.now_ms())
        raise
    tracking.update_run(run.id, status=RunStatus.FINISHED, end_ms=_time.now_ms())
    return run.id
