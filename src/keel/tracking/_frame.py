"""Search results as a pandas DataFrame (``output="pandas"``), in MLflow's column layout."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from keel.tracking._records import Run

if TYPE_CHECKING:
    import pandas as pd


def runs_frame(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per run: run_id, project, name, status, start_time, end_time (UTC),
    then ``params.<k>``, ``metrics.<k>`` and ``tags.<k>`` columns."""
    import pandas as pd

    rows: list[dict[str, object]] = []
    for run in runs:
        row: dict[str, object] = {
            "run_id": run.id,
            "project": run.project,
            "name": run.name,
            "status": str(run.status),
            "start_time": run.start_ms,
            "end_time": run.end_ms,
        }
        row.update({f"params.{k}": v for k, v in run.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        row.update({f"tags.{k}": v for k, v in run.tags.items()})
        rows.append(row)
    base = ["run_id", "project", "name", "status", "start_time", "end_time"]
    frame = pd.DataFrame(rows, columns=base) if not rows else pd.DataFrame(rows)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
    return frame
