"""Labels against predictions: making the two comparable, inferring the task, and business
metrics declared as data.

Labels arrive as JSON scalars (numbers, booleans, text) and predictions as whatever the model
returned, so the same class can be spelled ``1``, ``1.0``, ``"1"`` or ``True``. The rule:

* A value that is a number, a boolean (``True`` = 1) or text that parses as a number is that
  number; ``"1"``, ``1``, ``1.0`` and ``True`` are the same class, shown as ``1``.
* Any other text is a class named by its text, exactly (``"yes"`` is not ``"Yes"``). The log
  writer stores a column of mixed values as JSON text; text in JSON quotes (``'"yes"'``) is
  read back as the string it encodes.
* When every label and prediction is a number the pair is numeric; otherwise the numbers are
  compared by their text (``1.0`` as ``"1"``) with the text values.

Task inference (``task=None``): classification when any value is text, or when every value is
a whole number and there are at most ``MAX_CLASSES`` distinct ones; otherwise regression. Pass
``task`` to decide it yourself (integer-valued regression targets with few values need it).

Business metrics are a mapping ``name -> spec`` of plain numbers (JSON-declarable, nothing is
evaluated): ``{"fp": 5, "fn": 50}`` (binary outcomes ``tp``/``fp``/``tn``/``fn``, missing = 0),
``{"matrix": {"<true>": {"<predicted>": value}}}`` (any classes; unlisted cells are 0) or, for
regression, ``{"over": a, "under": b}`` (value per unit of over- / under-prediction).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

MAX_CLASSES = 20
_OUTCOMES = ("tp", "fp", "tn", "fn")


@dataclass(frozen=True, slots=True)
class Aligned:
    """Labels and predictions made comparable. For classification ``truth``/``predicted`` are
    class codes (int64) into ``classes`` (text, the positive class last when binary); for
    regression they are float64. ``usable`` marks rows with both a label and a prediction."""

    task: str
    truth: npt.NDArray[Any]
    predicted: npt.NDArray[Any]
    usable: npt.NDArray[np.bool_]
    classes: tuple[str, ...] = ()
    positive: str | None = None


def _numbers_and_text(column: pa.ChunkedArray | pa.Array, field: str) -> tuple[Any, Any, Any]:
    """(float64 numbers, NaN where not a number; object text or None; null mask)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_struct(kind) or pa.types.is_map(kind):
        raise InvalidInput(
            f"holds {kind} values, not one label or class per row; choose a scalar output",
            field=field,
        )
    if pa.types.is_null(kind):
        n = len(column)
        return np.full(n, np.nan), np.full(n, None, dtype=object), np.ones(n, dtype=bool)
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
        numbers = np.asarray(
            column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        null |= np.isnan(numbers)
        return numbers, np.full(len(numbers), None, dtype=object), null
    text = column.cast(pa.string()).to_pandas()
    quoted = text.str.startswith('"') & text.str.endswith('"') & (text.str.len() >= 2)
    if quoted.any():
        # The log writer stores a column of mixed values as JSON text: '"yes"' means yes.
        uniq = pd.unique(text[quoted])
        decoded = {}
        for value in uniq:  # over distinct values, not rows
            try:
                decoded[value] = str(json.loads(value))
            except ValueError:
                decoded[value] = value
        text = text.where(~quoted, text.map(decoded))
    numbers = np.array(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    numbers[~np.isfinite(numbers)] = np.nan  # "inf" and "nan" text stay text
    return numbers, text.to_numpy(dtype=object), null


def _label_text(number: float) -> str:
    from keel.models._metrics import label_text

    return label_text(number)


def canonical(value: Any) -> tuple[bool, float | str]:
    """One scalar by the module's rule: (is a number, the number or the text)."""
    if isinstance(value, bool):
        return True, float(value)
    if isinstance(value, int | float):
        return True, float(value)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return False, text
    return (True, number) if math.isfinite(number) else (False, text)


def align(
    labels: pa.ChunkedArray | pa.Array,
    predictions: pa.ChunkedArray | pa.Array,
    *,
    task: str | None = None,
    positive_label: Any = None,
) -> Aligned:
    """Labels and predictions of the same rows made comparable (see the module docstring)."""
    import numpy as np

    if task not in (None, "classification", "regression"):
        raise InvalidInput("must be 'classification' or 'regression'", field="task")
    t_num, t_text, t_null = _numbers_and_text(labels, "label")
    p_num, p_text, p_null = _numbers_and_text(predictions, "prediction")
    usable = ~t_null & ~p_null
    t_is_num = ~np.isnan(t_num)
    p_is_num = ~np.isnan(p_num)
    numeric = bool(np.all(t_is_num[usable]) and np.all(p_is_num[usable]))
    if task is None:
        values = np.concatenate([t_num[usable], p_num[usable]])
        whole = numeric and bool(np.all(values == np.round(values)))
        few = whole and len(np.unique(values)) <= MAX_CLASSES
        task = "classification" if not numeric or few else "regression"
    if task == "regression":
        if not numeric:
            raise InvalidInput(
                "regression needs numeric labels and predictions; some are text "
                "(pass task='classification' or choose another prediction column)",
                field="task",
            )
        return Aligned("regression", t_num, p_num, usable)

    # Classification: every usable value as a class key (numbers first, by value).
    def keys(num: Any, text: Any, is_num: Any) -> Any:
        out = np.empty(len(num), dtype=object)
        if numeric:
            out[:] = num
        else:
            out[:] = text
            uniq, inverse = np.unique(num[is_num], return_inverse=True)
            out[is_num] = np.array([_label_text(v) for v in uniq], dtype=object)[inverse]
        return out

    truth_keys = keys(t_num, t_text, t_is_num)[usable]
    pred_keys = keys(p_num, p_text, p_is_num)[usable]
    both = np.concatenate([truth_keys, pred_keys])
    both = both.astype(np.float64) if numeric else both.astype(str)
    uniq, inverse = np.unique(both, return_inverse=True)
    found: list[Any] = uniq.tolist()
    if positive_label is not None:
        is_num, value = canonical(positive_label)
        if numeric and not is_num:
            raise InvalidInput(
                f"{positive_label!r} is not a number, but labels and predictions are",
                field="positive_label",
            )
        key: Any = value if numeric else (_label_text(float(value)) if is_num else value)
        if key in found:
            found.remove(key)
        found.append(key)  # the positive class goes last, as keel.models._metrics expects
    lookup = {k: i for i, k in enumerate(found)}
    code_of = np.array([lookup[k] for k in uniq.tolist()], dtype=np.int64)  # over classes
    codes = code_of[inverse] if len(inverse) else np.zeros(0, dtype=np.int64)
    m = len(truth_keys)
    truth = np.full(len(usable), -1, dtype=np.int64)
    predicted = np.full(len(usable), -1, dtype=np.int64)
    truth[usable], predicted[usable] = codes[:m], codes[m:]
    names = tuple(_label_text(float(k)) if numeric else str(k) for k in found)
    positive = names[-1] if len(names) == 2 else None
    return Aligned("classification", truth, predicted, usable, names, positive)


@dataclass(frozen=True, slots=True)
class BusinessRule:
    """One business metric: ``kind`` is ``outcomes`` (binary tp/fp/tn/fn), ``matrix`` or
    ``regression``; ``values`` maps the outcome, (true, predicted) cell or over/under to a
    value."""

    name: str
    kind: str
    values: dict[Any, float]


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"must be a finite number, got {value!r}", field=field)
    return float(value)


def parse_business(spec: Mapping[str, Any] | None) -> list[BusinessRule]:
    """Business metrics from their JSON form (see the module docstring)."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        raise InvalidInput("must map a metric name to its values", field="business")
    rules = []
    for name, body in spec.items():
        field = f"business.{name}"
        if not isinstance(name, str) or not name or not isinstance(body, Mapping) or not body:
            raise InvalidInput("must be a non-empty mapping of numbers", field=field)
        if set(body) <= set(_OUTCOMES):
            values = {k: _number(v, f"{field}.{k}") for k, v in body.items()}
            rules.append(BusinessRule(name, "outcomes", values))
        elif set(body) <= {"over", "under"}:
            values = {k: _number(v, f"{field}.{k}") for k, v in body.items()}
            rules.append(BusinessRule(name, "regression", values))
        elif set(body) == {"matrix"} and isinstance(body["matrix"], Mapping):
            cells: dict[Any, float] = {}
            for true, row in body["matrix"].items():
                if not isinstance(row, Mapping):
                    raise InvalidInput("must map predicted classes to values", field=field)
                for pred, value in row.items():
                    cells[(_class_name(true), _class_name(pred))] = _number(
                        value, f"{field}.matrix.{true}.{pred}"
                    )
            rules.append(BusinessRule(name, "matrix", cells))
        else:
            raise InvalidInput(
                "expected outcome values {'fp': 5, 'fn': 50} (keys tp, fp, tn, fn), "
                "{'matrix': {true: {predicted: value}}} or {'over': a, 'under': b}",
                field=field,
            )
    return rules


def _class_name(value: Any) -> str:
    is_num, key = canonical(value)
    return _label_text(float(key)) if is_num else str(key)


def business_value(rule: BusinessRule, aligned: Aligned, rows: Any) -> tuple[float | None, str]:
    """The total of ``rule`` over the rows selected by ``rows`` (indices or a mask) and the
    reason when it cannot be computed."""
    import numpy as np

    truth, pred = aligned.truth[rows], aligned.predicted[rows]
    if rule.kind == "regression":
        if aligned.task != "regression":
            return None, "over/under values apply to regression"
        diff = pred - truth
        over = float(np.sum(np.clip(diff, 0, None)))
        under = float(np.sum(np.clip(-diff, 0, None)))
        return rule.values.get("over", 0.0) * over + rule.values.get("under", 0.0) * under, ""
    if aligned.task != "classification":
        return None, "outcome and matrix values apply to classification"
    k = len(aligned.classes)
    counts = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k) if k else None
    if rule.kind == "outcomes":
        if k != 2 or counts is None:
            return None, f"tp/fp/tn/fn need exactly two classes; found {k}"
        outcome = {"tn": counts[0, 0], "fp": counts[0, 1], "fn": counts[1, 0], "tp": counts[1, 1]}
        return float(sum(rule.values.get(o, 0.0) * float(c) for o, c in outcome.items())), ""
    total = 0.0
    index = {name: i for i, name in enumerate(aligned.classes)}
    for (true, pred_name), value in rule.values.items():
        if counts is not None and true in index and pred_name in index:
            total += value * float(counts[index[true], index[pred_name]])
    return total, ""
