"""`make demo` keeps working: the demo script runs end to end in a fresh folder, and ends with
the better model gated into champion and its model card written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[1] / "examples" / "demo.py"


def test_demo_trains_tracks_and_compares_two_models(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "logistic-regression" in result.stdout and "gradient-boosting" in result.stdout
    assert "150 points of val_log_loss" in result.stdout
    assert "Data: breast-cancer@v1 (569 rows" in result.stdout
    assert (tmp_path / ".keel" / "keel.db").is_file()  # data stays in the working folder
    import keel.tracking

    client = keel.tracking.Client(tracking_uri=f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    found = client.search_runs(projects=["demo-breast-cancer"]).items
    runs = [r for r in found if not r.name.startswith("evaluate ")]
    assert len(runs) == 2 and all(r.status == "FINISHED" for r in found)
    assert all(client.list_artifacts(r.id, "model") for r in runs)
    assert all([i.ref for i in r.io] == ["breast-cancer@v1"] for r in runs)
    assert sorted(client.store.runs_using("breast-cancer@v1")) == sorted(r.id for r in runs)

    # The better model is registered from its run, evaluated on the held-out version, gated
    # into champion (with a reviewer's approval), and its card is written next to the data.
    home = tmp_path / ".keel"
    assert "Champion: breast-cancer@champion -> v1" in result.stdout
    cards = [home / "cards" / "breast-cancer-v1.md", home / "cards" / "breast-cancer-v1.html"]
    assert all(card.is_file() and f"Model card: {card}" in result.stdout for card in cards)
    html = cards[1].read_text()
    assert "breast-cancer-holdout@v1" in html and "<svg" in html and "demo-reviewer" in html
    from keel.models._release_sql import SqlReleaseStore
    from keel.models._sql import SqlModelRegistry

    url = f"sqlite:///{home / 'keel.db'}"
    registry = SqlModelRegistry(url)
    champion = registry.resolve_alias("breast-cancer", "champion")
    best = max(runs, key=lambda r: r.metrics["roc_auc"])
    assert champion.version == 1 and champion.run_id == best.id
    (decision,) = SqlReleaseStore(url).list_decisions("breast-cancer", 1)
    assert decision.moved and decision.passed and decision.dataset == "breast-cancer-holdout@v1"
    assert {g.kind for g in decision.gates} == {"metric", "beat", "latency", "size", "approvals"}
    evaluations = [r for r in found if r.name.startswith("evaluate ")]
    assert evaluations and all(
        [i.ref for i in r.io] == ["breast-cancer-holdout@v1"] for r in evaluations
    )

    # The champion is served through a deployment by a real `keel serve` process, measured,
    # given feedback, then stopped; the prediction log holds every answered request.
    assert re.search(
        r"300 single-row requests, latency p50 \d+\.\d ms, p99 \d+\.\d ms", result.stdout
    ), result.stdout
    assert "Answers matching the registered model: 300/300; server stopped" in result.stdout
    assert (
        "Feedback: 100 true labels posted to POST /feedback for deployment breast-cancer; "
        "300 predictions in the prediction log"
    ) in result.stdout

    # The second half of the traffic came through a recalibrated instrument: the monitor finds
    # the shifted columns against the training data and the accuracy drop on the delayed
    # labels, both rules raise an alert, and the HTML report is written.
    assert re.search(r"drifted columns\s+│\s+0/30\s+│\s+10/30", result.stdout), result.stdout
    assert "Most drifted in the shifted half: worst " in result.stdout
    assert "Alert open: demo-drift (drift.share = 0.333)" in result.stdout
    assert "Alert open: demo-accuracy (performance.accuracy = " in result.stdout
    report = home / "reports" / "breast-cancer-monitoring.html"
    assert f"Monitoring report: {report}" in result.stdout
    page = report.read_text()
    assert "worst radius" in page and "<svg" in page and "<script" not in page
