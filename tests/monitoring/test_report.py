"""The monitoring report: self-contained HTML (no external URL, no script), every user string
escaped (a column named <script>), charts from the stored history, and the JSON version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.errors import NotFound
from keel.monitoring._monitor import run_monitor
from keel.monitoring._reference import ReferenceProfile
from keel.monitoring._report import build_report, render_html, write_report
from monitoring.monitor_support import HOUR_MS, NOW_MS, label, register_model, send

HOSTILE = "<script>alert(1)</script>"


def _hostile_log() -> None:
    """A log whose input column and category carry markup, and a profile reference for it."""
    from keel.artifacts import open_backend
    from keel.serving import PredictionLogWriter, PredictionRow

    rng = np.random.default_rng(3)
    with PredictionLogWriter(open_backend(), deployment="evil", batch_rows=100) as writer:
        for i in range(200):
            writer.record(
                PredictionRow(
                    f"e{i}",
                    1,
                    {HOSTILE: float(rng.normal(2.0)), "kind": '"><img src=x onerror=alert(2)>'},
                    {"prediction": i % 2},
                    3.0,
                    model="m",
                    timestamp_ms=NOW_MS - HOUR_MS + i * 1000,
                )
            )


def test_html_is_self_contained_and_escapes_hostile_names(tmp_path: Path) -> None:
    _hostile_log()
    frame = pd.DataFrame(
        {HOSTILE: np.random.default_rng(4).normal(0.0, 1.0, 500), "kind": ["a"] * 500}
    )
    profile = ReferenceProfile.from_frame(frame, source="<b>ref</b>")
    result = run_monitor("evil", window="2h", now_ms=NOW_MS, reference=profile)
    assert result.drift is not None and HOSTILE in result.drift.drifted_columns
    report = write_report("evil", out=tmp_path / "r.html", json_out=tmp_path / "r.json")
    html = (tmp_path / "r.html").read_text()
    assert "<script" not in html.lower()  # neither the column's markup nor any script
    assert "<img" not in html and "<b>ref</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, escaped
    # No external URL of any kind: only the SVG namespace identifier.
    urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"<[^>]*\b(?:src|href)\s*=", html)  # no tag loads anything
    assert html.count("<svg") >= 6  # distributions, drift scores, time series
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report))
    assert report["result"]["id"] == result.id


def test_history_charts_and_the_json_document() -> None:
    register_model()
    day = 24 * HOUR_MS
    calm = send("churn", rows=400, start_ms=NOW_MS - day, end_ms=NOW_MS, seed=1)
    label("churn", calm, share=0.5)
    send("churn", rows=400, start_ms=NOW_MS, end_ms=NOW_MS + day, shift=1.0, seed=2, prefix="s")
    first = run_monitor("churn", now_ms=NOW_MS)
    second = run_monitor("churn", now_ms=NOW_MS + day)
    report = build_report("churn")
    assert report["result"]["id"] == second.id
    assert [h["id"] for h in report["history"]] == [first.id, second.id]  # oldest first
    assert build_report("churn", result_id=first.id)["result"]["id"] == first.id
    html = render_html(report)
    for heading in (
        "Drift share over time",
        "accuracy over time",
        "Label coverage over time",
        "Latency over time (ms)",
        "Error rate over time",
        "x: reference vs current",
        "c: reference vs current",
        "Performance and label coverage in the window",
    ):
        assert heading in html, heading
    assert "<polyline" in html  # two runs make a line
    with pytest.raises(NotFound):
        build_report("nobody")
    with pytest.raises(NotFound):
        build_report("churn", result_id="missing")
