"""A model folder: the flavour's files, an input example, and ``keel-model.json`` describing
them (flavour, options, signature, environment, latency). The JSON lets a model logged to a
run be registered later (``runs:/<id>/model``); Keel's own metadata is never pickled.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput, PermissionDenied
from keel.models import _env, _signature
from keel.models._records import ModelEnv, Signature
from keel.models.flavors import Flavor, Loaded, for_model, get
from keel.models.flavors._base import library_errors

MANIFEST = "keel-model.json"
FORMAT = 1
EXAMPLE_ROWS = 5
_MAX_MANIFEST = 1 << 20
# Latency: one warm-up call, then the median of up to this many calls within the time budget.
_LATENCY_CALLS = 7
_LATENCY_BUDGET_S = 2.0


@dataclass(frozen=True, slots=True)
class Bundle:
    """What ``keel-model.json`` says about a model folder."""

    flavor: str
    options: Mapping[str, Any] = field(default_factory=dict)
    signature: Signature | None = None
    input_example: str | None = None
    environment: ModelEnv = field(default_factory=ModelEnv)
    latency_ms: float | None = None
    requires_trust: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "flavor": self.flavor,
                "options": dict(self.options),
                "signature": None if self.signature is None else self.signature.to_dict(),
                "input_example": self.input_example,
                "environment": self.environment.to_dict(),
                "latency_ms": self.latency_ms,
                "requires_trust": self.requires_trust,
            },
            indent=2,
            sort_keys=True,
            allow_nan=False,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Bundle:
        if len(data) > _MAX_MANIFEST:
            raise InvalidInput(f"{MANIFEST} is over {_MAX_MANIFEST} bytes", field="model")
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("format") != FORMAT:
                raise ValueError(f"unsupported format {raw.get('format')!r}")
            flavor = get(str(raw["flavor"]))
            signature = raw.get("signature")
            latency = raw.get("latency_ms")
            return cls(
                flavor=flavor.name,
                options=dict(raw.get("options") or {}),
                signature=None if signature is None else Signature.from_dict(signature),
                input_example=check_example_name(raw.get("input_example")),
                environment=ModelEnv.from_dict(raw.get("environment") or {}),
                latency_ms=None if latency is None else float(latency),
                # a file cannot talk its way out of the trust check
                requires_trust=bool(raw.get("requires_trust")) or flavor.requires_trust,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{MANIFEST} is not valid: {exc}", field="model") from exc


def _head(data: Any, rows: int) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[:rows]
    if isinstance(data, Mapping):
        return {k: list(v)[:rows] for k, v in data.items()}
    if type(data).__module__.startswith("torch"):
        return data.detach().cpu().numpy()[:rows]
    import numpy as np

    return np.asarray(data)[:rows]


def _write_example(example: Any, folder: Path) -> str:
    import numpy as np

    frame = _signature._frame(example)
    if frame is not None:
        name = "input_example.parquet"
        frame.to_parquet(folder / name, index=False)
        return name
    name = "input_example.npy"
    arr = np.asarray(example)
    if arr.dtype.hasobject:
        raise InvalidInput("an array example must not hold Python objects", field="input_example")
    np.save(folder / name, arr, allow_pickle=False)
    return name


_EXAMPLE_SUFFIXES = (".parquet", ".npy")


def check_example_name(name: object) -> str | None:
    """``name`` if it can name a stored example: a contained relative path to a Parquet or
    ``.npy`` file (the manifest is untrusted input)."""
    if name is None:
        return None
    from keel.artifacts import safe_relpath

    checked = safe_relpath(name if isinstance(name, str) else str(name), field="input_example")
    if not checked.endswith(_EXAMPLE_SUFFIXES):
        raise InvalidInput(f"{checked!r} is not a .parquet or .npy file", field="input_example")
    return checked


def read_example(folder: Path, name: str) -> Any:
    """The stored input example (never unpickled)."""
    path = folder.joinpath(*str(check_example_name(name)).split("/"))
    if name.endswith(".parquet"):
        import pandas as pd

        return pd.read_parquet(path)
    import numpy as np

    return np.load(path, allow_pickle=False)


def _latency_ms(loaded: Loaded, example: Any) -> tuple[float, Any]:
    output = loaded.predict(example)  # warm-up, and the output the signature describes
    times = []
    deadline = time.perf_counter() + _LATENCY_BUDGET_S
    for _ in range(_LATENCY_CALLS):
        start = time.perf_counter()
        loaded.predict(example)
        times.append((time.perf_counter() - start) * 1000)
        if time.perf_counter() > deadline:
            break
    return float(statistics.median(times)), output


def choose(model: Any, flavor: str | None, *, trusted: bool) -> Flavor:
    chosen = for_model(model) if flavor is None else get(flavor)
    if chosen.requires_trust and not trusted:
        raise PermissionDenied(
            f"the {chosen.name} flavour runs code from the file when loaded; pass trusted=True "
            "to log it, and an admin must mark the version trusted before it can be loaded"
        )
    if flavor is not None and not chosen.requires_trust and not chosen.accepts(model):
        raise InvalidInput(
            f"the {flavor} flavour cannot save {type(model).__name__}", field="flavor"
        )
    return chosen


def save(
    model: Any,
    folder: Path,
    *,
    flavor: Flavor,
    signature_from: Any = None,
    input_example: Any = None,
    config: Mapping[str, Any] | None = None,
) -> Bundle:
    """Write ``model`` into the empty ``folder`` with its example and ``keel-model.json``.

    The saved files are loaded back (except for flavours that need trust, whose in-memory
    model is used) and timed on the example, so a model that does not survive its own format
    fails here, not when it is served."""
    with library_errors(f"the {flavor.name} flavour could not save the model", "model"):
        options = flavor.save(model, folder, config=dict(config or {}))
    example = (
        input_example
        if input_example is not None
        else (None if signature_from is None else _head(signature_from, EXAMPLE_ROWS))
    )
    with library_errors("the input example could not be stored", "input_example"):
        example_name = None if example is None else _write_example(example, folder)
    signature = None
    latency = None
    if example is not None:
        kind, specs = _signature.infer(signature_from if signature_from is not None else example)
        inputs = Signature(kind=kind, inputs=specs)  # type: ignore[arg-type]
        stored = read_example(folder, example_name) if example_name else example
        prepared = _signature.enforce(inputs, stored)
        with library_errors("the saved model could not be loaded back", "model"):
            loaded = (
                _in_memory(model, flavor) if flavor.requires_trust else flavor.load(folder, options)
            )
        with library_errors("predicting the input example failed", "signature_from"):
            latency, output = _latency_ms(loaded, prepared)
        _, outputs = _signature.infer(output)
        signature = Signature(kind=inputs.kind, inputs=inputs.inputs, outputs=outputs)
    bundle = Bundle(
        flavor=flavor.name,
        options=options,
        signature=signature,
        input_example=example_name,
        environment=_env.capture([*flavor.packages, *flavor.modules(model)]),
        latency_ms=latency,
        requires_trust=flavor.requires_trust,
    )
    (folder / MANIFEST).write_bytes(bundle.to_json())
    return bundle


def _in_memory(model: Any, flavor: Flavor) -> Loaded:
    from keel.models.flavors._base import proba_of

    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise InvalidInput(f"{type(model).__name__} has no predict method", field="model")
    return Loaded(raw=model, predict=predict, predict_proba=proba_of(model))
