"""`make demo` keeps working: the demo script runs end to end in a fresh folder."""

from __future__ import annotations

import os
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
    runs = client.search_runs(projects=["demo-breast-cancer"]).items
    assert len(runs) == 2 and all(r.status == "FINISHED" for r in runs)
    assert all(client.list_artifacts(r.id, "model") for r in runs)
    assert all([i.ref for i in r.io] == ["breast-cancer@v1"] for r in runs)
    assert sorted(client.store.runs_using("breast-cancer@v1")) == sorted(r.id for r in runs)
