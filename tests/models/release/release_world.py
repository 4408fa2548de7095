"""A small churn-like world for release tests: one dataset version and real scikit-learn
models registered from runs that read it. (A module of its own, not conftest: test folders
each have a conftest, so ``from conftest import`` would pick whichever was imported first.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class World:
    frame: pd.DataFrame
    ref: str  # the dataset version, name@vN


def make_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], n)
    sex = rng.choice(["f", "m"], n)
    churned = (a + 0.8 * b + 0.6 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(
        {"customer": np.arange(n), "a": a, "b": b, "noise": noise, "region": region,
         "sex": sex, "churned": churned}
    )  # fmt: skip


def register(
    world: World,
    columns: list[str],
    *,
    author: str = "alice",
    seed: int = 0,
    name: str = "churn",
) -> int:
    """Train a logistic regression on ``columns`` in a run that read the dataset; register it
    as the next version of ``name``; return its number."""
    from sklearn.linear_model import LogisticRegression

    import keel
    import keel.data
    import keel.models

    frame = world.frame
    x = frame[columns]
    model = LogisticRegression(random_state=seed).fit(x, frame["churned"])
    with keel.start_run(project="churn", inputs=[keel.data.show(world.ref)]):
        version = keel.models.log(model, name=name, signature_from=x, tags={"author": author})
    return int(version.version)
