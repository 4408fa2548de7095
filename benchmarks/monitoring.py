"""Drift detection, Keel against Evidently, side by side on one machine.

    python benchmarks/monitoring.py          # full sizes: writes benchmarks/results/monitoring.json
    python benchmarks/monitoring.py --quick  # smaller sizes, a smoke run (writes nothing)
    python benchmarks/monitoring.py --sides keel --rows 5000 --json

For each size (100k and 1M rows; ``--rows`` picks one) the driver generates a reference and a
current table (seeded; 25 columns: 20 numeric (17 float, 3 integer) and 5 categorical; five
columns of the current drift, the rest are fresh draws of the same distributions) and writes
both as Parquet under ``benchmarks/.work``. Each side reads them in a fresh subprocess of its own
interpreter (Keel: the one running this script; Evidently: ``benchmarks/.venvs/evidently``, made
on first run, with ``pandas<3``), untimed, as its natural input: Arrow tables for Keel, pandas
DataFrames for Evidently. Measured:

1. Keel: ``ReferenceProfile.from_frame(reference)`` then ``assess_drift(profile, current)``:
   the comparison with Evidently, both starting from the raw tables. Then ``assess_drift``
   against the stored profile alone (median of ``--repeat``; how a monitor runs in practice),
   and with the domain classifier (``multivariate=True``).
2. Evidently: ``Report([DataDriftPreset()]).run(current_data=..., reference_data=...)``.
3. Peak memory of each side's drift computation: the process's peak resident memory during the
   call above what it held with both tables loaded (Linux VmHWM, reset before the call).
4. The import time of each library, in its own fresh interpreter.

Both sides record their per-column scores and verdicts; the driver reports where they agree.
This file is also the worker: the driver runs it again as ``--worker TASK`` in each interpreter.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _harness as h

EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas<3"]
FULL = (100_000, 1_000_000)
QUICK = (20_000,)
SEED = 20_261_122
DRIFTING = ("f00", "f01", "i0", "s0", "s3")
SHAPE = "20 numeric + 5 categorical columns"


# --- the data both tools compare ---------------------------------------------------------------


def generate(path: Path, rows: int, *, current: bool, seed: int) -> None:
    """17 float, 3 integer and 5 string columns; the current shifts ``DRIFTING``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(17):
        if i % 3 == 0:
            values = rng.normal(10 * i, 1 + i, rows)
        elif i % 3 == 1:
            values = rng.lognormal(0, 0.5, rows)
        else:
            values = rng.uniform(-i, i, rows)
        cols[f"f{i:02d}"] = values
    for i in range(3):
        cols[f"i{i}"] = rng.integers(0, 1_000, rows)
    labels = np.array([f"cat{k:02d}" for k in range(20)])
    for i in range(5):
        cols[f"s{i}"] = labels[rng.integers(0, 20, rows)]
    if current:
        cols["f00"] = cols["f00"] + 0.3  # a third of a standard deviation
        cols["f01"] = cols["f01"] * 1.5
        cols["i0"] = rng.integers(100, 1_100, rows)
        more = np.array([f"cat{k:02d}" for k in range(25)])  # five categories never seen
        cols["s0"] = more[rng.integers(0, 25, rows)]
        weights = np.linspace(1.0, 3.0, 20)  # a skew over the same categories
        cols["s3"] = labels[rng.choice(20, rows, p=weights / weights.sum())]
    pq.write_table(pa.table(cols), path)


# --- workers -------------------------------------------------------------------------------------


def keel_drift(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    ref = pq.read_table(p["reference"])
    cur = pq.read_table(p["current"])
    with h.timed() as imports:
        import keel.monitoring
        from keel.monitoring._stats import scipy_stats

        scipy_stats()  # the lazy imports a first call pays
    with h.peak_memory() as memory, h.timed() as total:
        profile = keel.monitoring.ReferenceProfile.from_frame(ref)
        keel.monitoring.assess_drift(profile, cur)
    assess_s, laps, report = h.repeat_median(
        lambda: keel.monitoring.assess_drift(profile, cur), p["repeat"]
    )
    with h.timed() as multi:
        with_classifier = keel.monitoring.assess_drift(profile, cur, multivariate=True)
    stored = len(profile.to_json().encode())
    m = with_classifier.multivariate
    return {
        "rows": cur.num_rows,
        "columns": cur.num_columns,
        "import_s": imports.seconds,
        "total_s": total.seconds,
        "peak_mib": memory.above_mib,
        "seconds": assess_s,
        "laps": laps,
        "multivariate_s": multi.seconds,
        "auc": None if m is None else m.auc,
        "profile_json_bytes": stored,
        "drifted": list(report.drifted_columns),
        "scores": {c.column: [c.test, c.score] for c in report.columns},
    }


def evidently_drift(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    ref = pd.read_parquet(p["reference"])
    cur = pd.read_parquet(p["current"])
    with h.timed() as imports:
        from evidently import Report
        from evidently.presets import DataDriftPreset

    def run() -> Any:
        return Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)

    with h.peak_memory() as memory:
        seconds, laps, snapshot = h.repeat_median(run, p["peer_repeat"])
    scores: dict[str, list[Any]] = {}
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            column, value, threshold = config["column"], float(metric["value"]), config["threshold"]
            method = config.get("method", "")
            scores[column] = [method, value]
            p_value = "p_value" in method.lower()
            if (value < threshold) if p_value else (value >= threshold):
                drifted.append(column)
    return {
        "rows": len(cur),
        "columns": cur.shape[1],
        "import_s": imports.seconds,
        "seconds": seconds,
        "laps": laps,
        "peak_mib": memory.above_mib,
        "drifted": drifted,
        "scores": scores,
    }


WORKERS = {"keel:drift": keel_drift, "evidently:drift": evidently_drift}


def worker_main(task: str, params: dict[str, Any], workdir: Path, out: Path) -> None:
    from importlib.metadata import version

    result = WORKERS[task](workdir, params)
    side = task.split(":", 1)[0]
    result["tool_version"] = version("keel-mlops" if side == "keel" else "evidently")
    result["python"] = sys.version.split()[0]
    h.write_worker_result(out, result)


# --- the driver ----------------------------------------------------------------------------------


def rows(raw: dict[str, dict[str, Any]], n: int) -> list[h.Row]:
    k, e = raw.get(f"keel.drift.{n}", {}), raw.get(f"evidently.drift.{n}", {})
    size = f"{n:,} rows"
    # The targets apply on 1M rows: at least 10x faster, at most a quarter the memory.
    full = n == max(FULL)
    return [
        h.Row(
            f"drift {size}: profile reference + assess",
            k.get("total_s"),
            "DataDriftPreset",
            e.get("seconds"),
            target=10.0 if full else None,
            note="both sides start from the raw reference and current tables",
        ),
        h.Row(
            f"drift {size}: peak memory of the same",
            k.get("peak_mib"),
            "DataDriftPreset",
            e.get("peak_mib"),
            target=4.0 if full else None,
            unit="MiB",
            note="peak resident memory above the two loaded tables",
        ),
        h.Row(
            f"drift {size}: assess against a stored profile",
            k.get("seconds"),
            "DataDriftPreset",
            e.get("seconds"),
            note="how a monitor runs; Evidently has no stored reference",
        ),
        h.Row(
            f"drift {size}: + domain classifier (Keel only)",
            k.get("multivariate_s"),
            "(no peer)",
            None,
        ),
    ]


def import_row(raw: dict[str, dict[str, Any]]) -> h.Row:
    k = next((v for key, v in raw.items() if key.startswith("keel.")), {})
    e = next((v for key, v in raw.items() if key.startswith("evidently.")), {})
    return h.Row("import", k.get("import_s"), "import evidently", e.get("import_s"))


def agreement(raw: dict[str, dict[str, Any]], n: int) -> dict[str, Any] | None:
    k, e = raw.get(f"keel.drift.{n}"), raw.get(f"evidently.drift.{n}")
    if not k or not e:
        return None
    same = sorted(k["drifted"]) == sorted(e["drifted"])
    return {
        "rows": n,
        "same_drifted_columns": same,
        "keel_drifted": sorted(k["drifted"]),
        "evidently_drifted": sorted(e["drifted"]),
        "scores": {
            c: {"keel": k["scores"].get(c), "evidently": e["scores"].get(c)} for c in k["scores"]
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = h.bench_parser(
        __doc__, peer="evidently", default_out="benchmarks/results/monitoring.json", timeout=1800
    )
    ap.add_argument("--rows", type=int, help="rows of each table")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of Keel's assess")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, json.loads(args.params), args.workdir, args.out)
        return 0
    sizes = (args.rows,) if args.rows is not None else (QUICK if args.quick else FULL)
    sides = h.parse_sides(args.sides, peer="evidently")
    pythons = {"keel": Path(sys.executable)}
    if "evidently" in sides:
        pythons["evidently"] = h.ensure_venv("evidently", EVIDENTLY_REQUIREMENTS, quiet=args.json)
    log = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    script = Path(__file__).resolve()
    machine = h.machine_info()
    source = h.git_state("src")
    raw: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for n in sizes:
        with h.fresh_dir("monitoring-data-") as shared:
            log(f"generating reference and current, {n:,} rows x {SHAPE} ...")
            paths = {
                "reference": str(shared / "reference.parquet"),
                "current": str(shared / "current.parquet"),
            }
            generate(Path(paths["reference"]), n, current=False, seed=SEED)
            generate(Path(paths["current"]), n, current=True, seed=SEED + 1)
            plan = [
                (f"keel.drift.{n}", "keel:drift", {**paths, "repeat": args.repeat}),
                (f"evidently.drift.{n}", "evidently:drift", {**paths, "peer_repeat": 1}),
            ]
            for key, task, params in plan:
                side = task.split(":", 1)[0]
                if side not in sides:
                    continue
                log(f"running {key} ...")
                raw[key] = h.run_task(pythons[side], script, task, params, timeout_s=args.timeout)

    table = [row for n in sizes for row in rows(raw, n)] + [import_row(raw)]
    versions = {"python": sys.version.split()[0]}
    for key, result in raw.items():
        versions[key.split(".", 1)[0]] = result["tool_version"]
    payload = h.result_payload(
        "monitoring",
        started=started,
        machine=machine,
        versions=versions,
        source=source,
        fields={
            "data": {"rows": list(sizes), "shape": SHAPE, "seed": SEED, "drifting": list(DRIFTING)},
            "results": [row.to_dict() for row in table],
            "agreement": [a for n in sizes if (a := agreement(raw, n)) is not None],
            "raw": raw,
        },
    )
    out = args.out
    if out is None and not args.quick and set(sides) == {"keel", "evidently"} and sizes == FULL:
        out = h.RESULTS_DIR / "monitoring.json"
    if h.publish(payload, out, as_json=args.json):
        h.print_table("Drift: Keel vs Evidently", table, peer_name="Evidently")
        for agree in payload["agreement"]:
            print(
                f"{agree['rows']:,} rows, drifted columns: Keel {agree['keel_drifted']}, "
                f"Evidently {agree['evidently_drifted']} (same: {agree['same_drifted_columns']})"
            )
        if out is not None:
            print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
