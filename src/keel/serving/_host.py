"""``ModelHost``: one served model — the loaded model, its micro-batcher, its metric labels.

The app talks to hosts only (``predict``, ``signature``, ``name``, ``version``), so a later
deployment layer can put champion/challenger/shadow hosts behind one name, or swap the model
of a host (``swap``) without touching the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from keel.errors import InvalidInput
from keel.serving._batcher import MicroBatcher
from keel.serving._metrics import ServingMetrics
from keel.serving._outputs import as_array
from keel.serving._payload import Inputs
from keel.serving._settings import ServingSettings

if TYPE_CHECKING:
    from keel.models import LoadedModel, Signature


class Predictor(Protocol):
    """What a host serves: ``keel.models.load`` returns one (``LoadedModel``)."""

    signature: Signature | None

    def predict(self, data: Any) -> Any: ...


@lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> Any:
    """The columns ``Index`` of a signature, built once: pandas spends far longer turning a
    list of names into an Index than placing one 2-D block of data under it."""
    import pandas as pd

    return pd.Index(names)


def _frame(batch: Sequence[Inputs]) -> Any:
    """One DataFrame (or array) for a whole micro-batch: columns are concatenated in NumPy.
    Columns of one numeric dtype become a single 2-D block (a dict of arrays costs pandas a
    block per column, and the model then interleaves them again)."""
    import pandas as pd

    first = batch[0]
    if first.tensor is not None:
        arrays = [b.tensor for b in batch if b.tensor is not None]
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    assert first.columns is not None
    if len(batch) == 1:
        cols = first.columns
    else:
        cols = {
            n: np.concatenate([b.columns[n] for b in batch if b.columns]) for n in first.columns
        }
    arrays = list(cols.values())
    dtype = arrays[0].dtype
    if dtype.kind in "biuf" and all(a.dtype == dtype for a in arrays):
        return pd.DataFrame(np.column_stack(arrays), columns=_column_index(tuple(cols)), copy=False)
    return pd.DataFrame(dict(cols), copy=False)


class ModelHost:
    """Serves ``model`` as ``name`` (version label ``version``) with the app's batching
    settings. ``ModelHost.load("churn@champion", settings=...)`` loads from the registry."""

    def __init__(
        self,
        name: str,
        model: Predictor,
        *,
        version: str,
        settings: ServingSettings | None = None,
        flavor: str = "",
    ) -> None:
        if model.signature is None or not model.signature.inputs:
            raise InvalidInput(
                f"{name} has no signature; log it with signature_from= to serve it",
                field="model",
            )
        self.name = name
        # One attribute for the pair, replaced in a single store: a batch reads both at once
        # and can never compute with one version and report another.
        self._current: tuple[Predictor, str] = (model, version)
        self.flavor = flavor
        self.settings = settings or ServingSettings()
        self.metrics = ServingMetrics()
        self._children: dict[tuple[str, str], Any] = {}
        self.batcher = MicroBatcher(
            self._predict_batch, settings=self.settings, name=name, observe=self._observe
        )

    @classmethod
    def load(cls, uri: str, *, settings: ServingSettings | None = None) -> ModelHost:
        """Load a registered version (``churn@champion``, ``models:/churn/3``, ``churn/3``)."""
        import keel.models

        return cls.from_loaded(keel.models.load(uri), settings=settings)

    @classmethod
    def from_loaded(
        cls, model: LoadedModel, *, settings: ServingSettings | None = None
    ) -> ModelHost:
        """Serve an already loaded registered version under its own name and number."""
        version = model.version
        if version is None:
            raise InvalidInput(
                f"{model.uri}: serve a registered version, not run files", field="uri"
            )
        return cls(
            version.name,
            model,
            version=str(version.version),
            settings=settings,
            flavor=model.flavor,
        )

    @property
    def model(self) -> Predictor:
        return self._current[0]

    @property
    def version(self) -> str:
        return self._current[1]

    @property
    def signature(self) -> Signature:
        assert self.model.signature is not None
        return self.model.signature

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def swap(self, model: Predictor, *, version: str) -> None:
        """Serve ``model`` from the next batch on (a batch already running finishes on the
        old one). The new model must take the same signature: routes and schemas stay."""
        if model.signature != self.model.signature:
            raise InvalidInput(
                f"{self.name} version {version} takes another signature; start a new host",
                field="signature",
            )
        self._current = (model, version)

    def attach(self, metrics: ServingMetrics) -> None:
        """Report into the app's metrics registry (called by ``create_serving_app``)."""
        self.metrics = metrics
        self._children.clear()

    def _observe(self, event: str, value: float) -> None:
        # The labelled series are looked up once per event and version, not per request.
        key = (event, self.version)
        child: Any = self._children.get(key)
        if child is None:
            m, labels = self.metrics, (self.name, self.version)
            metric = {
                "queue_depth": m.queue_depth,
                "batch_rows": m.batch_rows,
                "batch_requests": m.batch_requests,
                "predict_seconds": m.predict_latency,
                "worker_restart": m.worker_restarts,
            }[event]
            child = self._children[key] = metric.labels(*labels)
        if event == "queue_depth":
            child.set(value)
        elif event == "worker_restart":
            child.inc()
        else:
            child.observe(value)

    def _predict_batch(self, batch: Sequence[Inputs]) -> tuple[np.ndarray, str]:
        model, version = self._current
        # Overflow and invalid operations are answered as flagged nulls (``non_finite``), not
        # as a warning per request in the server log.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return as_array(model.predict(_frame(batch))), version

    async def predict(self, inputs: Inputs) -> np.ndarray:
        """This request's predictions (one per row), computed in a shared micro-batch."""
        return await self.batcher.submit(inputs, inputs.rows)

    async def predict_versioned(self, inputs: Inputs) -> tuple[np.ndarray, str]:
        """``predict`` plus the version that computed the answer (exact during a swap)."""
        out, version = await self.batcher.submit_tagged(inputs, inputs.rows)
        return out, str(version)

    async def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()
