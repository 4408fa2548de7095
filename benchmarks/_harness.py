"""Shared helpers for Keel's side-by-side benchmarks (see DESIGN.md, "Speed").

Every peer tool runs in its own virtualenv under ``benchmarks/.venvs/<name>`` (gitignored), made
on first use from pinned requirements; Keel runs in the interpreter that runs the benchmark.
Each measured task runs in a fresh subprocess of its side's interpreter, in a fresh temporary
folder, and writes its figures to a JSON file the driver reads back. This module imports only
the standard library at the top, so a worker can import it from a peer's virtualenv; Rich is
loaded only by the functions that print.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS_DIR = BENCH_DIR / ".venvs"
WORK_DIR = BENCH_DIR / ".work"
RESULTS_DIR = BENCH_DIR / "results"

_STAMP = ".keel-bench-requirements"


# --- virtualenvs for peers -------------------------------------------------------------------


def bench_parser(
    doc: str, *, peer: str, default_out: str, timeout: float
) -> argparse.ArgumentParser:
    """The options every benchmark script shares; the script adds its size overrides."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--sides", default=f"keel,{peer}", help=f"comma-separated: keel, {peer}")
    ap.add_argument("--timeout", type=float, default=timeout, help="seconds allowed per task")
    ap.add_argument(
        "--out",
        type=Path,
        help=f"write results here (default: {default_out}, full runs only)",
    )
    # Internal: run one task in this interpreter (the driver starts these).
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return ap


def parse_sides(text: str, *, peer: str) -> list[str]:
    """The sides named by ``--sides``; an unknown one stops the script."""
    sides = [s.strip() for s in text.split(",") if s.strip()]
    unknown = set(sides) - {"keel", peer}
    if unknown:
        raise SystemExit(f"unknown side(s): {', '.join(sorted(unknown))}")
    return sides


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(name: str, requirements: Sequence[str], *, quiet: bool = False) -> Path:
    """The python of ``benchmarks/.venvs/<name>``, created and filled with ``requirements``
    unless a previous call already installed exactly those (a stamp file records them)."""
    venv = VENVS_DIR / name
    python = venv_python(venv)
    stamp = venv / _STAMP
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    log = (lambda _msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    log(f"creating virtualenv {venv} with {' '.join(requirements)} (first run only)")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, *(["-q"] if quiet else []), *requirements], check=True)
    stamp.write_text(wanted)
    return python


def package_version(python: Path | str, distribution: str) -> str:
    """The installed version of ``distribution`` in the environment of ``python``."""
    code = "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))"
    out = subprocess.run(
        [str(python), "-c", code, distribution], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


# --- running one measured task ---------------------------------------------------------------


@contextmanager
def fresh_dir(prefix: str, *, under: Path | None = None) -> Iterator[Path]:
    """An empty folder under ``benchmarks/.work`` (or ``$KEEL_BENCH_WORK``), removed afterwards;
    with ``under``, an empty folder inside that one, left for whoever removes ``under``."""
    root = under or Path(os.environ.get("KEEL_BENCH_WORK") or WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield path
    finally:
        if under is None:
            shutil.rmtree(path, ignore_errors=True)


class TaskFailed(RuntimeError):
    """A worker subprocess exited non-zero, timed out or wrote no result."""


def run_task(
    python: Path | str,
    script: Path,
    task: str,
    params: Mapping[str, Any],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    under: Path | None = None,
) -> dict[str, Any]:
    """Run ``python script --worker task --params JSON --workdir DIR --out FILE`` in a fresh
    folder (kept if it is made ``under`` a given one, see ``fresh_dir``) and return the JSON
    object the worker wrote to FILE."""
    with fresh_dir(f"{task.replace(':', '-')}-", under=under) as workdir:
        out = workdir / "result.json"
        cmd = [
            str(python),
            str(script),
            "--worker",
            task,
            "--params",
            json.dumps(dict(params)),
            "--workdir",
            str(workdir),
            "--out",
            str(out),
        ]
        child_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        # The driver's own virtualenv must not leak into a peer's interpreter.
        child_env.pop("VIRTUAL_ENV", None)
        child_env.pop("PYTHONPATH", None)
        try:
            proc = subprocess.run(
                cmd,
                env=child_env,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TaskFailed(f"{task} timed out after {timeout_s:.0f} s") from exc
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-4000:]
            raise TaskFailed(f"{task} exited {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server under test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    """Wait until ``url`` answers 200; ``TaskFailed`` with the tail of the server's ``log`` if
    ``proc`` exits first or ``timeout_s`` passes (the caller stops ``proc``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TaskFailed(f"the server exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TaskFailed(
        f"the server did not answer {url} in {timeout_s:.0f} s: {log.read_text()[-3000:]}"
    )


def write_worker_result(path: Path | str, result: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(dict(result), indent=2, sort_keys=True))


# --- timing ----------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    seconds: float = 0.0
    laps: list[float] = field(default_factory=list)


@contextmanager
def timed() -> Iterator[Stopwatch]:
    """``with timed() as t: ...`` then ``t.seconds`` (wall clock, perf_counter)."""
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


@dataclass
class Memory:
    baseline_mib: float | None = None
    peak_mib: float | None = None

    @property
    def above_mib(self) -> float | None:
        """The peak resident memory over what the process held when the block started."""
        if self.peak_mib is None or self.baseline_mib is None:
            return None
        return max(0.0, self.peak_mib - self.baseline_mib)


def _status_mib(field_name: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@contextmanager
def peak_memory() -> Iterator[Memory]:
    """``with peak_memory() as m: ...`` then ``m.above_mib``: the block's peak resident memory
    above the start. Linux: the kernel's high-water mark (VmHWM) is reset at the start by
    writing 5 to /proc/self/clear_refs, so allocations outside the heap (Arrow, NumPy) count too.
    None elsewhere."""
    memory = Memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        memory.baseline_mib = _status_mib("VmRSS")
    except OSError:
        pass
    try:
        yield memory
    finally:
        if memory.baseline_mib is not None:
            memory.peak_mib = _status_mib("VmHWM")


def repeat_median(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Call ``fn`` ``repeat`` times; the median seconds, every lap, and the last return value."""
    laps: list[float] = []
    value: Any = None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        value = fn()
        laps.append(time.perf_counter() - start)
    return statistics.median(laps), laps, value


# --- describing the machine ------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the figures."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    return {
        "load_average_at_start": load_average(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def git_state(*paths: str) -> dict[str, Any]:
    """The repository's commit and whether ``paths`` (e.g. ``src``) differ from it, so a figure
    can be tied to the code it measured."""
    git = shutil.which("git")
    if git is None:
        return {"commit": None, "dirty": None}

    def run(*args: str) -> str | None:
        proc = subprocess.run(
            [git, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = run("status", "--porcelain", "--untracked-files=no", "--", *paths)
    return {"commit": run("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def command_line() -> str:
    """How this benchmark was started, relative to the repository root when possible."""
    argv = list(sys.argv)
    with suppress(ValueError):
        argv[0] = str(Path(argv[0]).resolve().relative_to(REPO_ROOT))
    return " ".join(["python", *argv])


# --- results ---------------------------------------------------------------------------------


def ratio(peer_s: float | None, keel_s: float | None) -> float | None:
    """How many times faster Keel is (peer seconds / Keel seconds)."""
    if peer_s is None or keel_s is None or keel_s <= 0:
        return None
    return peer_s / keel_s


def write_results(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(dict(payload), indent=2) + "\n")
    tmp.replace(path)
    return path


def result_payload(
    benchmark: str,
    *,
    started: float,
    machine: Mapping[str, Any],
    versions: Mapping[str, Any],
    source: Mapping[str, Any],
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """The results document every benchmark writes: what ran, when, on what machine (with the
    load average at the end too), which versions, then the benchmark's own ``fields``."""
    return {
        "benchmark": benchmark,
        "created": now_iso(),
        "command": command_line(),
        "total_s": round(time.perf_counter() - started, 1),
        "machine": {**machine, "load_average_at_end": load_average()},
        "versions": dict(versions),
        "keel_source": dict(source),
        **fields,
    }


def publish(payload: Mapping[str, Any], out: Path | None, *, as_json: bool) -> bool:
    """Write ``payload`` to ``out`` (when given) and print it when ``as_json``; True when the
    caller should print its human-readable table instead."""
    if out is not None:
        write_results(out, payload)
    if as_json:
        print(json.dumps(dict(payload), indent=2))
    return not as_json


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_value(value: float | None, unit: str) -> str:
    if unit == "s":
        return fmt_seconds(value)
    return "-" if value is None else f"{value:,.0f} {unit}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


@dataclass(frozen=True)
class Row:
    """One line of a comparison table."""

    benchmark: str
    keel_s: float | None
    peer: str
    peer_s: float | None
    target: float | None = None
    note: str = ""
    unit: str = "s"  # "s" or "MiB": the ratio is peer/Keel either way (higher is better)

    @property
    def ratio(self) -> float | None:
        return ratio(self.peer_s, self.keel_s)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "keel_s" if self.unit == "s" else "keel_mib": self.keel_s,
            "peer": self.peer,
            "peer_s" if self.unit == "s" else "peer_mib": self.peer_s,
            "ratio": self.ratio,
            "target_ratio": self.target,
            "target_met": self.met,
            "note": self.note,
        }


def print_table(title: str, rows: Sequence[Row], *, peer_name: str) -> None:
    """A Rich table: each figure, the peer/Keel ratio, and whether the target is met."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("benchmark")
    table.add_column("Keel", justify="right")
    table.add_column(f"{peer_name} mode")
    table.add_column(peer_name, justify="right")
    table.add_column(f"{peer_name}/Keel", justify="right")
    table.add_column("target", justify="right")
    for row in rows:
        met = row.met
        mark = "" if met is None else (" [green]ok[/]" if met else " [red]missed[/]")
        target = "-" if row.target is None else f">= {row.target:g}x{mark}"
        table.add_row(
            row.benchmark,
            fmt_value(row.keel_s, row.unit),
            row.peer,
            fmt_value(row.peer_s, row.unit),
            fmt_ratio(row.ratio),
            target,
        )
    console = Console()
    console.print(table)
    for row in rows:
        if row.note:
            console.print(f"  {row.benchmark} / {row.peer}: {row.note}")
