"""What a monitor run measures drift against, from the ``reference`` users write.

Syntax (``docs/monitoring-runs.md``):

* nothing: the training dataset of the model version the champion served in the window, from
  registry lineage (the version's first input dataset);
* ``dataset:NAME@vN`` or plain ``NAME@vN`` / ``NAME@alias``: a dataset version;
* ``profile:PATH`` or a path ending in ``.json``: a stored reference profile
  (``ReferenceProfile.to_json``, e.g. written by ``keel monitor run --save-reference``);
* ``log:DURATION``: the log window of that length just before the current window
  (``log:24h`` = the previous day when the window is ``24h``);
* ``log:A..B`` with durations back from now (``log:7d..1d``) or ISO-8601 times
  (``log:2026-11-01T00:00..2026-11-02T00:00``): that window of the log.

A profile names input columns plainly (``x``, as the training data does) and model outputs
with their log prefix (``output.prediction``); only a log window (or a profile saved from
one) has outputs, so prediction drift needs one of those.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound
from keel.monitoring._windows import Window, parse_duration, parse_window

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.monitoring._reference import ReferenceProfile

INPUT = "input."
OUTPUT = "output."
CHAMPION = "champion"

_cache: dict[str, ReferenceProfile] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 8


@dataclass(frozen=True)
class Reference:
    """The resolved reference: its ``profile`` (None when none could be found, with the
    ``reason``), what ``kind`` it is (``dataset``, ``profile``, ``log``, ``none``) and the
    ``spec`` it came from."""

    kind: str
    source: str
    profile: ReferenceProfile | None
    reason: str = ""
    window: Window | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "reason": self.reason,
            "rows": None if self.profile is None else self.profile.rows,
            "window": None if self.window is None else self.window.to_dict(),
        }


def monitored_columns(table: pa.Table) -> pa.Table:
    """The champion's rows of a log window with ``input.x`` renamed ``x`` and ``output.*``
    kept: the table drift is measured on (a shadow challenger repeats the same inputs)."""
    import pyarrow.compute as pc

    if "role" in table.column_names and table.num_rows:
        table = table.filter(pc.equal(table.column("role"), CHAMPION))
    names = [n for n in table.column_names if n.startswith((INPUT, OUTPUT))]
    renamed = [n[len(INPUT) :] if n.startswith(INPUT) else n for n in names]
    return table.select(names).rename_columns(renamed)


def _dataset_profile(ref: str) -> ReferenceProfile:
    """A dataset version's profile, computed once per process (versions are immutable)."""
    import keel.data
    from keel.monitoring._reference import ReferenceProfile

    resolved = keel.data.show(ref).ref  # an alias moves; the resolved NAME@vN does not
    with _cache_lock:
        found = _cache.get(resolved)
    if found is not None:
        return found
    profile = ReferenceProfile.from_dataset(resolved)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[resolved] = profile
    return profile


def champion_version(table: pa.Table) -> tuple[str, str] | None:
    """``(model, version)`` of the champion's newest row in the window, if any."""
    import pyarrow.compute as pc

    if not table.num_rows or "model" not in table.column_names:
        return None
    rows = table.filter(pc.equal(table.column("role"), CHAMPION))
    if not rows.num_rows:
        return None
    last = rows.num_rows - 1
    model = rows.column("model")[last].as_py()
    version = rows.column("model_version")[last].as_py()
    if not model or version is None:
        return None
    return str(model), str(version)


def _lineage(table: pa.Table) -> Reference:
    import keel.models

    found = champion_version(table)
    if found is None:
        return Reference("none", "", None, "no champion predictions in the window to find a model")
    model, version = found
    try:
        mv = keel.models.get_version(model, int(version) if version.isdigit() else version)
    except NotFound:
        return Reference(
            "none", "", None, f"model {model} v{version} is not in the registry; pass a reference"
        )
    inputs = [d for d in mv.datasets if d.direction == "input"]
    if not inputs:
        return Reference(
            "none",
            "",
            None,
            f"{model} v{version} has no training dataset in its lineage; pass a reference "
            "(a dataset version, a profile .json or a log window such as log:7d..1d)",
        )
    ref = inputs[0].ref
    return Reference("dataset", ref, _dataset_profile(ref))


def _log_window(spec: str, current: Window) -> Window:
    text = spec.strip()
    if ".." not in text:
        length = parse_duration(text, field="reference")
        return Window(current.start_ms - length, current.start_ms)
    first, _, second = text.partition("..")
    try:
        older, newer = parse_duration(first, field="reference"), parse_duration(second)
    except InvalidInput:
        return parse_window(text)  # ISO-8601 times
    return Window(current.end_ms - older, current.end_ms - newer)


def resolve_reference(
    spec: str | ReferenceProfile | None,
    *,
    current: pa.Table,
    window: Window,
    read_log: Any,
) -> Reference:
    """The reference for ``spec`` (see the module docstring). ``current`` is the window's
    log table (for lineage) and ``read_log(window)`` reads another window of the same log."""
    from keel.monitoring._reference import ReferenceProfile

    if isinstance(spec, ReferenceProfile):
        return Reference("profile", spec.source, spec)
    if spec is None or not spec.strip():
        return _lineage(current)
    text = spec.strip()
    if text.startswith("log:"):
        try:
            span = _log_window(text[4:], window)
        except InvalidInput as exc:
            raise InvalidInput(
                f"not a log window: {text!r} ({exc}); write e.g. log:24h, log:7d..1d or "
                "log:2026-11-01T00:00..2026-11-02T00:00",
                field="reference",
            ) from None
        table = monitored_columns(read_log(span))
        source = f"log:{window_text(span)}"
        if not table.num_rows:
            return Reference("log", source, None, "the reference window has no rows", span)
        return Reference("log", source, ReferenceProfile.from_frame(table, source=source), "", span)
    path_text = text[len("profile:") :] if text.startswith("profile:") else text
    if text.startswith("profile:") or path_text.lower().endswith(".json"):
        path = Path(path_text)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(
                f"cannot read reference profile {path}: {exc.strerror}", field="reference"
            ) from None
        profile = ReferenceProfile.from_json(data)
        return Reference("profile", profile.source, profile)
    ref = text[len("dataset:") :] if text.startswith("dataset:") else text
    return Reference("dataset", ref, _dataset_profile(ref))


def window_text(window: Window) -> str:
    """``START..END`` in ISO-8601, as users write a range."""
    d = window.to_dict()
    return f"{d['start']}..{d['end']}"
