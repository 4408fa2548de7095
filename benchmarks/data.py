"""Dataset versions, Keel against DVC, side by side on one machine.

    python benchmarks/data.py            # full sizes, writes benchmarks/results/data.json
    python benchmarks/data.py --quick    # smaller sizes, a smoke run (writes nothing)
    python benchmarks/data.py --json     # print the results as JSON only

The driver generates one folder of random files (seeded) under ``benchmarks/.work`` and both
sides add that same folder; each measurement runs in a fresh subprocess of its side's
interpreter (Keel: the one running this script; DVC: ``benchmarks/.venvs/dvc``, made on first
run) in a fresh folder, and the files are read once before each side so both start from a warm
page cache; before each first add, dirty pages left by earlier steps are flushed (``sync``,
untimed), so each side pays only for writing its own copy. Every run's files stay on disk until
the end (when there is room), evicted from the page cache before the next run: deleting them
would make the next run's file creation slower (ext4 without a journal passes over recently
freed inodes), and caching them would leave later runs less free memory. Measurements:

1. ``hash``: Keel's ``hash_file`` over every file of the folder against raw BLAKE3
   (``blake3(data)``, one thread) over the same bytes already in memory (GB/s).
2. ``add``: ``keel.data.add(FOLDER)`` (Python API) against ``dvc add FOLDER`` (the CLI, as a
   subprocess, in a ``dvc init --no-scm`` repository: the folder is moved into it, a rename,
   and back afterwards). Then, on both sides, re-adding the unchanged folder (Keel: its state
   cache of size + mtime + inode; DVC: its state database), and re-adding it after one file is
   rewritten with new bytes of the same size (restored afterwards). Keel's CLI
   (``python -m keel data add``, in a fresh home) is timed as a task of its own: like
   ``dvc add``, it includes the interpreter's start-up, so it is the like-for-like figure. The
   three add tasks run ``--add-repeat`` times each, in rotating order (API, CLI, DVC; CLI, DVC,
   API; ...), each starting from a synced disk and a warm folder, and every figure is the
   median of its runs: one run on a shared machine says little. Keel fsyncs every object before
   it publishes it; ``dvc add`` does not fsync its cache. So each first add is also timed until
   its bytes are on disk (the add, then ``sync``): the same work on both sides.
   A fourth task in the same rotation measures the disk's floor for any add that keeps its
   bytes safe: the same files copied to new files and fsynced, eight at a time, with no
   hashing or bookkeeping (``disk_floor``).
3. ``profile``: Keel's profile of a 1M rows x 20 columns table (no peer; reported alone).

This file is also the worker: the driver runs it again as ``--worker TASK`` in each interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _harness as h

DVC_REQUIREMENT = "dvc==3.67.1"

FULL = {"files": 1_000, "total_mb": 1_024, "rows": 1_000_000, "columns": 20}
QUICK = {"files": 100, "total_mb": 32, "rows": 100_000, "columns": 20}
SEED = 20_260_101
TARGETS = {"add": 3.0, "cli_add": 3.0}
GB = 1e9


# --- the data both tools add -----------------------------------------------------------------


def file_names(n: int) -> list[str]:
    """``dNN/fNNNN.bin``: 100 files per subfolder, like a folder of images."""
    return [f"d{i // 100:02d}/f{i:04d}.bin" for i in range(n)]


def generate_folder(root: Path, files: int, total_bytes: int, seed: int = SEED) -> int:
    """Write ``files`` random files of equal size (``total_bytes`` in all) under ``root``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = total_bytes // files
    for rel in file_names(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(size))
    return size * files


def warm(root: Path) -> None:
    """Read every file once, so that each side starts with the folder in the page cache."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 22):
                    pass


def evict(root: Path) -> None:
    """Drop the (clean, after ``sync``) page cache of every file under ``root``: earlier runs'
    files, kept on disk, must not fill memory, or later runs that write through the page cache
    would pay for reclaiming it."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def folder_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"check failed: {message}")


class OneFileChanged:
    """Rewrite one file with new bytes of the same size; ``restore`` puts the old bytes back."""

    def __init__(self, root: Path, files: int) -> None:
        self.path = root / file_names(files)[files // 2]
        self.original = self.path.read_bytes()

    def change(self) -> None:
        self.path.write_bytes(os.urandom(len(self.original)))

    def restore(self) -> None:
        self.path.write_bytes(self.original)


# --- Keel side -------------------------------------------------------------------------------


def keel_home(workdir: Path) -> Path:
    home = workdir / "keel-home"
    home.mkdir()
    os.environ["KEEL_HOME"] = str(home)
    os.environ["KEEL_TRACKING_URI"] = f"sqlite:///{home / 'keel.db'}"
    return home


def keel_hash(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    from blake3 import blake3

    from keel._hashing import hash_file

    files = folder_files(Path(p["folder"]))
    data = [f.read_bytes() for f in files]
    total = sum(len(d) for d in data)
    raw_s, raw_laps, raw = h.repeat_median(
        lambda: [blake3(d).hexdigest() for d in data], p["repeat"]
    )
    keel_s, keel_laps, ours = h.repeat_median(lambda: [hash_file(f) for f in files], p["repeat"])
    check([d for d, _ in ours] == raw, "hash_file digests differ from raw BLAKE3")
    return {
        "seconds": keel_s,
        "raw_s": raw_s,
        "laps": keel_laps,
        "raw_laps": raw_laps,
        "bytes": total,
        "files": len(files),
        "keel_gb_s": total / keel_s / GB,
        "raw_gb_s": total / raw_s / GB,
    }


def keel_add(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel_home(workdir)
    import keel.data

    root = Path(p["folder"])
    # Untimed: the imports and the metadata schema, on a tiny folder under another name.
    tiny = workdir / "tiny"
    tiny.mkdir()
    (tiny / "a.txt").write_text("warm-up")
    keel.data.add(tiny, name="warmup")

    os.sync()
    with h.timed() as add:
        v1 = keel.data.add(root, name="bench")
    with h.timed() as flush:
        os.sync()  # what the add left unwritten (Keel fsyncs its objects: little)
    check(not v1.existed and v1.files == p["files"], f"first add made {v1}")
    with h.timed() as readd:
        again = keel.data.add(root, name="bench")
    check(again.existed and again.digest == v1.digest, "re-add of unchanged content")
    changed = OneFileChanged(root, p["files"])
    changed.change()
    try:
        with h.timed() as one:
            v2 = keel.data.add(root, name="bench")
    finally:
        changed.restore()
    check(not v2.existed and v2.version == v1.version + 1, "one-file change made no version")
    files = keel.data.get(v1, as_="path", dest=workdir / "out")
    check(
        (Path(files) / file_names(p["files"])[0]).read_bytes()
        == (root / file_names(p["files"])[0]).read_bytes(),
        "materialised file differs",
    )
    return {
        "seconds": add.seconds,
        "durable_s": add.seconds + flush.seconds,
        "readd_s": readd.seconds,
        "one_changed_s": one.seconds,
        "bytes": v1.size,
        "files": v1.files,
        "gb_s": v1.size / add.seconds / GB,
        "digest": v1.digest,
    }


def keel_cli(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    """``python -m keel data add FOLDER`` in a fresh Keel home: what a shell user waits for.
    Its own task, so that it starts from the state ``dvc add`` starts from (nothing written
    since the untimed sync), not after the API task's writes. The home is initialised first,
    untimed, as the DVC side runs ``dvc init`` untimed."""
    root = Path(p["folder"])
    home = workdir / "keel-cli-home"
    home.mkdir()
    env = {
        **os.environ,
        "KEEL_HOME": str(home),
        "KEEL_TRACKING_URI": f"sqlite:///{home / 'keel.db'}",
    }
    init = [sys.executable, "-m", "keel", "db", "upgrade", "--json"]
    subprocess.run(init, env=env, capture_output=True, text=True, check=True)
    cmd = [sys.executable, "-m", "keel", "data", "add", str(root), "--name", "cli", "--json"]
    os.sync()
    with h.timed() as t:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    with h.timed() as flush:
        os.sync()
    if proc.returncode != 0:
        raise RuntimeError(f"keel CLI add failed: {proc.stderr[-2000:]}")
    added = json.loads(proc.stdout)
    check(not added["existed"] and added["files"] == p["files"], f"CLI add made {added}")
    return {
        "seconds": t.seconds,
        "durable_s": t.seconds + flush.seconds,
        "digest": added["digest"],
    }


def disk_floor(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    """The least any durable add of the folder takes on this disk: each file's bytes read into
    a buffer, written to a new file and fsynced (its pages then dropped from the page cache),
    eight files at a time, then the new folders fsynced. No hashing, dedup or bookkeeping:
    Keel's add is this plus those."""
    import mmap
    import threading
    from concurrent.futures import ThreadPoolExecutor

    root = Path(p["folder"])
    files = folder_files(root)
    out = workdir / "copy"
    folders = sorted({f.parent for f in files})
    for folder in folders:
        (out / folder.relative_to(root)).mkdir(parents=True, exist_ok=True)
    local = threading.local()

    def copy(src: Path) -> int:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = mmap.mmap(-1, 64 << 20)
        view = memoryview(buf)
        with src.open("rb", buffering=0) as f:
            n = f.readinto(view) or 0
        check(n < len(buf), f"{src} is larger than the copy buffer")
        fd = os.open(out / src.relative_to(root), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            data = view[:n]
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return n

    with h.timed() as t:
        with ThreadPoolExecutor(max_workers=8) as pool:
            total = sum(pool.map(copy, files))
        for folder in folders:
            fd = os.open(out / folder.relative_to(root), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return {"seconds": t.seconds, "bytes": total}


def keel_profile(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    keel_home(workdir)
    import numpy as np
    import pyarrow as pa

    from keel.data._profile import profile_table

    rng = np.random.default_rng(SEED)
    n, c = p["rows"], p["columns"]
    columns: dict[str, Any] = {}
    cities = np.array([f"city-{i}" for i in range(50)])
    for j in range(c):
        kind = j % 4
        if kind == 0:
            values = rng.normal(size=n)
            values[rng.random(n) < 0.01] = np.nan
            columns[f"f{j}"] = pa.array(values, from_pandas=True)
        elif kind == 1:
            columns[f"i{j}"] = pa.array(rng.integers(0, 1_000_000, size=n))
        elif kind == 2:
            columns[f"s{j}"] = pa.array(cities[rng.integers(0, len(cities), size=n)])
        else:
            columns[f"b{j}"] = pa.array(rng.random(n) < 0.3)
    table = pa.table(columns)
    profile_table(table.slice(0, 1000))  # untimed: lazy imports
    seconds, laps, profile = h.repeat_median(lambda: profile_table(table), p["repeat"])
    check(len(profile["columns"]) == c, "profile misses columns")
    return {"seconds": seconds, "laps": laps, "rows": n, "columns": c}


# --- DVC side --------------------------------------------------------------------------------


def dvc_add(workdir: Path, p: dict[str, Any]) -> dict[str, Any]:
    dvc = str(Path(sys.executable).with_name("dvc"))
    repo = workdir / "repo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def run(*args: str) -> float:
        with h.timed() as t:
            proc = subprocess.run(
                [dvc, *args], cwd=repo, env=env, capture_output=True, text=True, check=False
            )
        if proc.returncode != 0:
            raise RuntimeError(f"dvc {' '.join(args)} failed: {proc.stderr[-2000:]}")
        return t.seconds

    run("init", "--no-scm", "-q")
    run("config", "core.analytics", "false")
    run("config", "core.site_cache_dir", str(workdir / "site-cache"))
    source = Path(p["folder"])
    data = repo / "data"
    source.rename(data)  # same filesystem: instant, keeps inodes and mtimes
    try:
        os.sync()
        add_s = run("add", "data", "-q")
        with h.timed() as flush:
            os.sync()  # dvc add does not fsync its cache: the OS writes it back later
        check((repo / "data.dvc").exists(), "dvc add wrote no data.dvc")
        readd_s = run("add", "data", "-q")
        changed = OneFileChanged(data, p["files"])
        changed.change()
        try:
            one_s = run("add", "data", "-q")
        finally:
            changed.restore()
        cached = sum(1 for f in (repo / ".dvc" / "cache").rglob("*") if f.is_file())
    finally:
        data.rename(source)
    # 1,000 files + the changed file + the .dir listing of each of the two versions.
    check(cached >= p["files"] + 1, f"dvc cache holds {cached} files")
    return {
        "seconds": add_s,
        "durable_s": add_s + flush.seconds,
        "readd_s": readd_s,
        "one_changed_s": one_s,
        "cached": cached,
    }


WORKERS: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "keel:hash": keel_hash,
    "keel:add": keel_add,
    "keel:cli": keel_cli,
    "keel:profile": keel_profile,
    "keel:floor": disk_floor,
    "dvc:add": dvc_add,
}


def worker_main(task: str, params: dict[str, Any], workdir: Path, out: Path) -> None:
    side = task.split(":", 1)[0]
    result = WORKERS[task](workdir, params)
    result["tool_version"] = tool_version(side)
    result["python"] = sys.version.split()[0]
    h.write_worker_result(out, result)


def tool_version(side: str) -> str:
    from importlib.metadata import version

    return version("keel-mlops" if side == "keel" else "dvc")


# --- the driver ------------------------------------------------------------------------------


def rows(raw: dict[str, dict[str, Any]], sizes: dict[str, int]) -> list[h.Row]:
    def get(key: str, field: str = "seconds") -> float | None:
        value = raw.get(key, {}).get(field)
        return None if value is None else float(value)

    n, mb = sizes["files"], sizes["total_mb"]
    folder = f"{n:,} files, {mb:,} MiB"
    out = [
        h.Row(f"add {folder}", get("keel.add"), "dvc add", get("dvc.add"), TARGETS["add"]),
        h.Row(
            f"add {folder}, Keel CLI",
            get("keel.cli"),
            "dvc add",
            get("dvc.add"),
            TARGETS["cli_add"],
            note="python -m keel data add: includes interpreter start-up, like dvc add",
        ),
        h.Row(
            f"add {folder}, Keel CLI, until on disk",
            get("keel.cli", "durable_s"),
            "dvc add + sync",
            get("dvc.add", "durable_s"),
            note="each add then sync: the time until the added bytes are durable (Keel fsyncs "
            "as it writes; dvc add leaves its cache copy to the OS)",
        ),
        h.Row("re-add unchanged", get("keel.add", "readd_s"), "dvc add", get("dvc.add", "readd_s")),
        h.Row(
            "re-add, one file changed",
            get("keel.add", "one_changed_s"),
            "dvc add",
            get("dvc.add", "one_changed_s"),
        ),
    ]
    if "keel.floor" in raw:
        out.insert(
            3,
            h.Row(
                f"add {folder} vs the disk's floor",
                get("keel.add"),
                "plain durable copy",
                get("keel.floor"),
                note="the same bytes copied to new files and fsynced, eight at a time, without "
                "hashing or bookkeeping: the least any add that keeps its bytes safe takes "
                "here; ratio < 1 is what Keel's add costs above it",
            ),
        )
    if "keel.hash" in raw:
        k = raw["keel.hash"]
        out.append(
            h.Row(
                f"hash {folder}: hash_file",
                k["seconds"],
                "raw BLAKE3",
                k["raw_s"],
                note=(
                    f"Keel {k['keel_gb_s']:.2f} GB/s from files, raw BLAKE3 {k['raw_gb_s']:.2f} "
                    "GB/s on the bytes in memory (one thread); ratio < 1 is the cost of reading"
                ),
            )
        )
    if "keel.add" in raw:
        out[0] = h.Row(
            out[0].benchmark,
            out[0].keel_s,
            out[0].peer,
            out[0].peer_s,
            out[0].target,
            f"Keel stores at {raw['keel.add']['gb_s']:.2f} GB/s (hash + copy + fsync)",
        )
    if "keel.profile" in raw:
        out.append(
            h.Row(
                f"profile {sizes['rows']:,} rows x {sizes['columns']} columns",
                raw["keel.profile"]["seconds"],
                "(no peer)",
                None,
            )
        )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = h.bench_parser(
        __doc__, peer="dvc", default_out="benchmarks/results/data.json", timeout=900
    )
    ap.add_argument("--files", type=int, help="files in the folder")
    ap.add_argument("--total-mb", type=int, help="MiB in the folder, split evenly")
    ap.add_argument("--rows", type=int, help="rows of the profiled table")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of hashing and profiling")
    ap.add_argument(
        "--add-repeat",
        type=int,
        default=5,
        help="runs of each add task (Keel API, Keel CLI, DVC), in rotating order; medians",
    )
    return ap.parse_args(argv)


def add_plan(common: dict[str, Any], repeat: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Both sides' add tasks ``repeat`` times each, rotating which goes first, so that a slow
    spell of the machine falls on both sides alike."""
    tasks = [
        ("keel.add", "keel:add", common),
        ("keel.cli", "keel:cli", common),
        ("dvc.add", "dvc:add", common),
        ("keel.floor", "keel:floor", common),
    ]
    plan: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(max(1, repeat)):
        shift = i % len(tasks)
        plan.extend(tasks[shift:] + tasks[:shift])
    return plan


def room_to_keep_runs(folder: Path, total: int, repeat: int) -> bool:
    """Whether the disk holds every run's files until the end (about five copies of the folder
    per rotation: Keel's store and ``get`` output, the CLI's store, DVC's cache, the floor's
    copy) with 2 GB to
    spare. Deleting a run's files as it ends would slow the next run's file creation: ext4
    without a journal passes over inodes freed in the last minute or so. Kept files are evicted
    from the page cache before each run (``evict``), so every run starts with as much free
    memory as the first."""
    return shutil.disk_usage(folder).free > 5 * total * max(1, repeat) + 2 * GB


def median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs of a task: the median of each number (runs that produced
    none for a field are left out of it), the other fields of the first run, and every run's
    seconds under ``runs_s``."""
    out = dict(runs[0])
    for field in {f for r in runs for f, v in r.items() if isinstance(v, float)}:
        values = [r[field] for r in runs if isinstance(r.get(field), float)]
        out[field] = statistics.median(values)
    out["runs_s"] = [r.get("seconds") for r in runs]
    if "gb_s" in out:
        out["gb_s"] = out["bytes"] / out["seconds"] / GB
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, json.loads(args.params), args.workdir, args.out)
        return 0

    sizes = dict(QUICK if args.quick else FULL)
    for key in ("files", "total_mb", "rows"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    sides = h.parse_sides(args.sides, peer="dvc")
    pythons = {"keel": Path(sys.executable)}
    if "dvc" in sides:
        pythons["dvc"] = h.ensure_venv("dvc", [DVC_REQUIREMENT], quiet=args.json)

    log = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    script = Path(__file__).resolve()
    machine = h.machine_info()
    source = h.git_state("src")
    started = time.perf_counter()
    with h.fresh_dir("data-folder-") as shared:
        folder = shared / "data"
        log(f"generating {sizes['files']:,} files, {sizes['total_mb']:,} MiB in {folder} ...")
        total = generate_folder(folder, sizes["files"], sizes["total_mb"] << 20)
        common = {"folder": str(folder), "files": sizes["files"]}
        plan: list[tuple[str, str, dict[str, Any]]] = [
            ("keel.hash", "keel:hash", {**common, "repeat": args.repeat}),
            *add_plan(common, args.add_repeat),
            (
                "keel.profile",
                "keel:profile",
                {"rows": sizes["rows"], "columns": sizes["columns"], "repeat": args.repeat},
            ),
        ]
        keep = room_to_keep_runs(shared, total, args.add_repeat)
        if not keep:
            log(
                "not enough free disk to keep every run's files: "
                "each run's deletion will slow the next"
            )
        runs: dict[str, list[dict[str, Any]]] = {}
        for key, task, params in plan:
            side = task.split(":", 1)[0]
            if side not in sides:
                continue
            log(f"running {key} ...")
            if hasattr(os, "sync"):
                os.sync()  # earlier writes (the folder, the other side) are not this side's cost
            if keep:
                evict(shared / "runs")
            warm(folder)
            under = shared / "runs" if keep else None
            result = h.run_task(
                pythons[side], script, task, params, timeout_s=args.timeout, under=under
            )
            runs.setdefault(key, []).append(result)
        raw: dict[str, dict[str, Any]] = {k: median_result(r) for k, r in runs.items()}

    table = rows(raw, sizes)
    versions = {"python": sys.version.split()[0]}
    for key, result in raw.items():
        versions[key.split(".", 1)[0]] = result["tool_version"]
    payload = h.result_payload(
        "data",
        started=started,
        machine=machine,
        versions=versions,
        source=source,
        fields={
            "folder": {**sizes, "bytes": total, "seed": SEED, "layout": "dNN/fNNNN.bin"},
            "runs_kept_until_the_end": keep,
            "results": [row.to_dict() for row in table],
            "raw": raw,
        },
    )
    out = args.out
    if out is None and not args.quick and set(sides) == {"keel", "dvc"} and sizes == FULL:
        out = h.RESULTS_DIR / "data.json"
    if h.publish(payload, out, as_json=args.json):
        h.print_table("Keel vs DVC: dataset versions", table, peer_name="DVC")
        if out is not None:
            print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
