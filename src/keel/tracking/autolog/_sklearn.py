"""The scikit-learn autologger: wraps ``fit`` of every estimator class.

Classes already defined are found by walking ``BaseEstimator``'s subclasses, and classes
defined later (a module imported after ``autolog()``) by a ``__init_subclass__`` hook, so no
sklearn module is imported just to be patched. Only the outermost ``fit`` logs: the fits a
Pipeline or a search CV makes of inner estimators run unwrapped (a ``ContextVar`` marks that
a fit is in progress in this thread or task).

On a fit: a run is started if none is active (and ended after, FAILED if fit raised); then
``get_params(deep=False)`` as params, ``training_*`` metrics on the training data, the best
params and score of a search CV, and the fitted model saved with skops (never pickle) as
``model/model.skops``. A metric sklearn cannot compute for this data (e.g. ROC AUC with one
class present) and a param a second fit in the same run would change are reported with an
``AutologWarning``; store errors propagate like any logging call.
"""

from __future__ import annotations

import functools
import math
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from keel.errors import ParamConflict
from keel.tracking import _fluent as fluent

_MAX_PARAM = 8000

_in_fit: ContextVar[bool] = ContextVar("keel_autolog_in_fit", default=False)
_patched: dict[type, Callable[..., Any]] = {}
_lock = threading.Lock()
_log_models = True


class AutologWarning(UserWarning):
    """Something autologging could not record; training itself was not affected."""


def _warn(message: str) -> None:
    warnings.warn(f"keel autolog: {message}", AutologWarning, stacklevel=4)


def enable_sklearn(*, log_models: bool = True) -> None:
    from sklearn.base import BaseEstimator

    global _log_models  # noqa: PLW0603 - one switch per process, like the patch itself
    _log_models = log_models
    with _lock:
        todo: list[type] = [BaseEstimator]
        seen: set[type] = set()
        while todo:
            cls = todo.pop()
            if cls in seen:
                continue
            seen.add(cls)
            _patch(cls)
            todo.extend(cls.__subclasses__())
        if "__init_subclass__" not in BaseEstimator.__dict__:

            def hook(cls: type, /, **kwargs: Any) -> None:
                super(BaseEstimator, cls).__init_subclass__(**kwargs)
                with _lock:
                    _patch(cls)

            BaseEstimator.__init_subclass__ = classmethod(hook)


def disable_sklearn() -> None:
    with _lock:
        for cls, original in _patched.items():
            cls.fit = original  # type: ignore[attr-defined]
        _patched.clear()
        import sys

        base = sys.modules.get("sklearn.base")
        if base is not None and "__init_subclass__" in base.BaseEstimator.__dict__:
            del base.BaseEstimator.__init_subclass__


def _patch(cls: type) -> None:
    original = cls.__dict__.get("fit")
    if original is None or cls in _patched or not callable(original):
        return
    _patched[cls] = original

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_fit.get():
            return original(self, *args, **kwargs)
        token = _in_fit.set(True)
        try:
            return _logged_fit(original, self, args, kwargs)
        finally:
            _in_fit.reset(token)

    cls.fit = fit  # type: ignore[attr-defined]


def _logged_fit(
    original: Callable[..., Any], est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    owner = None
    if fluent.active_run() is None:
        owner = fluent.start_run(name=type(est).__name__, tags={"autolog": "sklearn"})
    with owner if owner is not None else nullcontext():
        result = original(est, *args, **kwargs)
        x = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        _log_fit(est, x, y, kwargs.get("sample_weight"))
    return result


def _param_text(value: object) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 1] + "…"


def _log_fit(est: Any, x: Any, y: Any, weight: Any) -> None:
    cls = type(est)
    fluent.set_tags({"estimator_class": f"{cls.__module__}.{cls.__qualname__}"})
    params = {k: _param_text(v) for k, v in est.get_params(deep=False).items()}
    best = getattr(est, "best_params_", None)
    if isinstance(best, Mapping):
        params.update({f"best_{k}": _param_text(v) for k, v in best.items()})
    try:
        fluent.log_params(params)
    except ParamConflict as exc:
        _warn(
            f"params not logged, an earlier fit in this run logged others ({exc}); "
            "start a run per fit to keep both"
        )
    metrics = _training_metrics(est, x, y, weight) if y is not None else {}
    score = getattr(est, "best_score_", None)
    if isinstance(score, int | float) and math.isfinite(score):
        metrics["best_cv_score"] = float(score)
    if metrics:
        fluent.log_metrics(metrics)
    if _log_models:
        _log_model(est)


def _training_metrics(est: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(est, "predict"):
        return {}
    out: dict[str, float] = {}

    def add(name: str, compute: Callable[[], Any]) -> None:
        try:
            out[f"training_{name}"] = float(compute())
        except (ValueError, TypeError, IndexError) as exc:
            _warn(f"training_{name} not computed: {exc}")

    if is_classifier(est):
        pred = est.predict(x)
        add("accuracy", lambda: m.accuracy_score(y, pred, sample_weight=weight))
        for name, score in (
            ("precision", m.precision_score),
            ("recall", m.recall_score),
            ("f1", m.f1_score),
        ):
            add(
                name,
                functools.partial(
                    score, y, pred, average="weighted", zero_division=0, sample_weight=weight
                ),
            )
        if hasattr(est, "predict_proba"):
            proba = est.predict_proba(x)
            labels = getattr(est, "classes_", None)
            add("log_loss", lambda: m.log_loss(y, proba, labels=labels, sample_weight=weight))
            add("roc_auc", lambda: _roc_auc(m, y, proba, labels, weight))
    elif is_regressor(est):
        pred = est.predict(x)
        mse = m.mean_squared_error(y, pred, sample_weight=weight)
        add("mae", lambda: m.mean_absolute_error(y, pred, sample_weight=weight))
        add("mse", lambda: mse)
        add("rmse", lambda: math.sqrt(mse))
        add("r2", lambda: m.r2_score(y, pred, sample_weight=weight))
    return out


def _roc_auc(m: Any, y: Any, proba: Any, labels: Any, weight: Any) -> float:
    if proba.shape[1] == 2:
        return float(m.roc_auc_score(y, proba[:, 1], sample_weight=weight))
    return float(
        m.roc_auc_score(
            y, proba, multi_class="ovr", average="weighted", labels=labels, sample_weight=weight
        )
    )


def _log_model(est: Any) -> None:
    import skops.io

    with tempfile.TemporaryDirectory(prefix="keel-autolog-") as tmp:
        path = Path(tmp) / "model.skops"
        try:
            skops.io.dump(est, path)
        except (TypeError, ValueError, NotImplementedError) as exc:
            _warn(f"model not logged: skops cannot save {type(est).__name__}: {exc}")
            return
        fluent.log_artifact(path, "model")
