"""A real prediction log for monitor tests: rows written by ``PredictionLogWriter`` into the
configured local artifact store, labels through ``SqlFeedbackStore``, and a registered model
whose lineage names its training dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR_MS = 3_600_000
NOW_MS = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS  # on the hour
TRAIN_ROWS = 3_000


def training_frame(seed: int = 0, rows: int = TRAIN_ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, rows)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.uniform(0.0, 10.0, rows),
            "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
            "label": (x > 0).astype(int),
        }
    )


def register_model(name: str = "churn") -> str:
    """A training dataset and a READY model version whose lineage names it; returns the
    dataset ref."""
    import keel.data
    from keel.models import DatasetInput, ModelFile, NewModelVersion, open_registry

    ds = keel.data.add(training_frame(), name=f"{name}-train")
    registry = open_registry()
    try:
        version = registry.create_version(
            NewModelVersion(name=name, flavor="sklearn", datasets=(DatasetInput(ds.ref),))
        )
        registry.complete_version(
            name, version.version, files=[ModelFile("model.skops", "ab" * 32, 10)]
        )
    finally:
        registry.close()
    return ds.ref


@dataclass(frozen=True)
class Traffic:
    """What ``send`` wrote: request ids in order and the true label of each."""

    ids: list[str]
    truth: list[int]


def send(
    deployment: str,
    *,
    rows: int,
    start_ms: int,
    end_ms: int,
    shift: float = 0.0,
    seed: int = 1,
    prefix: str = "r",
    model: str = "churn",
    version: int = 1,
    flip: float = 0.0,
    latency_ms: float = 5.0,
) -> Traffic:
    """``rows`` one-row requests spread evenly over [start_ms, end_ms); ``shift`` moves x and
    z; the model predicts ``x > 0`` but the truth is flipped for a ``flip`` share."""
    from keel.artifacts import open_backend
    from keel.serving import PredictionLogWriter, PredictionRow

    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    z = rng.uniform(0.0, 10.0, rows) + shift * 3
    c = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    step = (end_ms - start_ms) / rows
    ids, truth = [], []
    with PredictionLogWriter(open_backend(), deployment=deployment, batch_rows=500) as writer:
        for i in range(rows):
            rid = f"{prefix}{i}"
            prediction = int(x[i] > 0)
            ids.append(rid)
            truth.append(prediction if rng.random() >= flip else 1 - prediction)
            writer.record(
                PredictionRow(
                    rid,
                    version,
                    {"x": float(x[i]), "z": float(z[i]), "c": str(c[i])},
                    {"prediction": prediction},
                    latency_ms,
                    model=model,
                    timestamp_ms=int(start_ms + i * step),
                )
            )
    return Traffic(ids, truth)


def label(deployment: str, traffic: Traffic, *, share: float = 1.0) -> int:
    """Post the true labels of the first ``share`` of ``traffic``; returns how many."""
    from keel.monitoring._feedback import open_feedback_store

    n = int(len(traffic.ids) * share)
    store = open_feedback_store()
    try:
        store.add_many(deployment, [(i, t, None) for i, t in zip(traffic.ids[:n], traffic.truth)])
    finally:
        store.close()
    return n
