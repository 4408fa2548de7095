"""The JSON shapes tracking records take between the HTTP store and the team server.

Both sides use these functions, so a record survives the trip exactly: floats that JSON cannot
spell (NaN, ±infinity) travel as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, and a
metric value that is not a number at all travels wrapped in a list so the server's checks
reject it with the same error the local store raises. Decoders check types and raise
``InvalidInput`` naming the field, because on the server their input is untrusted.

Metrics go as columns (``keys``, ``values``, ``steps``, ``timestamps``): one batch of thousands
of points is four flat arrays that orjson writes and reads in a millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from keel.errors import InvalidInput
from keel.tracking._metric_columns import MetricColumns
from keel.tracking._records import (
    ArtifactFile,
    Metric,
    Page,
    Project,
    Run,
    RunEnv,
    RunIO,
    RunStatus,
)

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: object, field: str) -> float:
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"must be a number, got {type(value).__name__}", field=field)
    return float(value)


def _expect(value: object, kind: type | tuple[type, ...], field: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"has the wrong type ({type(value).__name__})", field=field)
    return value


def _opt(value: object, kind: type, field: str) -> Any:
    return None if value is None else _expect(value, kind, field)


def obj(value: object, field: str = "body") -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``InvalidInput``."""
    return dict(_expect(value, dict, field))


# -- metrics ---------------------------------------------------------------------------------


def metrics_to_wire(points: Sequence[Metric]) -> dict[str, Sequence[Any]]:
    if isinstance(points, MetricColumns):
        values = points.values
        # The writer's batches hold finite floats only (checked by type, then by a sum that
        # is finite only if every value is): the columns go as they are.
        if set(map(type, values)) <= {float} and math.isfinite(sum(values)):
            return {
                "keys": points.keys,
                "values": values,
                "steps": points.steps,
                "timestamps": points.timestamps,
            }
    return {
        "keys": [p.key for p in points],
        "values": [_value_to_wire(p.value) for p in points],
        "steps": [p.step for p in points],
        "timestamps": [p.timestamp_ms for p in points],
    }


def _value_to_wire(v: object) -> object:
    if isinstance(v, float):  # numpy floats too, as the local store accepts them
        v = float(v)
        return v if v - v == 0.0 else encode_float(v)  # v - v is NaN unless finite
    if isinstance(v, int):  # bools included: the server rejects them as the store does
        return v
    return [repr(v)]  # not a number: kept distinguishable, rejected remotely


def metrics_from_wire(data: object, field: str = "metrics") -> MetricColumns:
    """The columns of a batch; their types are checked by the store (``metrics.key`` …)."""
    if data is None:
        return MetricColumns([], [], [], [])
    cols = obj(data, field)
    keys, values, steps, stamps = (
        cols.get("keys"),
        cols.get("values"),
        cols.get("steps"),
        cols.get("timestamps"),
    )
    for name, col in (("keys", keys), ("values", values), ("steps", steps), ("timestamps", stamps)):
        _expect(col, list, f"{field}.{name}")
    assert isinstance(keys, list) and isinstance(values, list)
    assert isinstance(steps, list) and isinstance(stamps, list)
    if not len(keys) == len(values) == len(steps) == len(stamps):
        raise InvalidInput("the columns differ in length", field=field)
    if str in set(map(type, values)):
        values = [_SPECIAL.get(v, v) if type(v) is str else v for v in values]
    return MetricColumns(keys, values, steps, stamps)


# -- records ---------------------------------------------------------------------------------


def project_to_wire(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "description": p.description, "created_ms": p.created_ms}


def project_from_wire(d: Mapping[str, Any]) -> Project:
    return Project(d["id"], d["name"], d["description"], d["created_ms"])


def env_to_wire(env: RunEnv) -> dict[str, Any]:
    return {
        "user": env.user,
        "host": env.host,
        "pid": env.pid,
        "git_commit": env.git_commit,
        "git_dirty": env.git_dirty,
        "python_version": env.python_version,
        "packages": dict(env.packages),
    }


def env_from_wire(data: object, field: str = "env") -> RunEnv | None:
    if data is None:
        return None
    d = obj(data, field)
    packages = obj(d.get("packages") or {}, f"{field}.packages")
    for k, v in packages.items():
        _expect(v, str, f"{field}.packages.{k}")
    return RunEnv(
        user=_expect(d.get("user", ""), str, f"{field}.user"),
        host=_expect(d.get("host", ""), str, f"{field}.host"),
        pid=_opt(d.get("pid"), int, f"{field}.pid"),
        git_commit=_opt(d.get("git_commit"), str, f"{field}.git_commit"),
        git_dirty=_opt(d.get("git_dirty"), bool, f"{field}.git_dirty"),
        python_version=_expect(d.get("python_version", ""), str, f"{field}.python_version"),
        packages=packages,
    )


def io_to_wire(item: RunIO) -> dict[str, Any]:
    return {"ref": item.ref, "kind": item.kind, "direction": item.direction, "digest": item.digest}


def io_from_wire(data: object, field: str = "items") -> list[RunIO]:
    out = []
    for item in _expect(data, list, field):
        d = obj(item, field)
        kind, direction = d.get("kind", "dataset"), d.get("direction", "input")
        out.append(RunIO(d.get("ref", ""), kind, direction, d.get("digest")))
    return out


def files_to_wire(files: Sequence[ArtifactFile]) -> list[dict[str, Any]]:
    return [{"path": f.path, "digest": f.digest, "size": f.size} for f in files]


def files_from_wire(data: object, field: str = "files") -> list[ArtifactFile]:
    return [
        ArtifactFile(d.get("path", ""), d.get("digest", ""), d.get("size", -1))
        for d in (obj(x, field) for x in _expect(data, list, field))
    ]


def run_to_wire(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "project": run.project,
        "name": run.name,
        "status": str(run.status),
        "start_ms": run.start_ms,
        "end_ms": run.end_ms,
        "heartbeat_ms": run.heartbeat_ms,
        "parent_id": run.parent_id,
        "note": run.note,
        "env": env_to_wire(run.env),
        "params": dict(run.params),
        "metrics": {k: encode_float(v) for k, v in run.metrics.items()},
        "tags": dict(run.tags),
        "io": [io_to_wire(i) for i in run.io],
        "deleted": run.deleted,
    }


def run_from_wire(d: Mapping[str, Any]) -> Run:
    env = env_from_wire(d["env"]) or RunEnv()
    return Run(
        id=d["id"],
        project=d["project"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_ms=d["start_ms"],
        end_ms=d["end_ms"],
        heartbeat_ms=d["heartbeat_ms"],
        parent_id=d["parent_id"],
        note=d["note"],
        env=env,
        params=d["params"],
        metrics={k: decode_float(v, "metrics") for k, v in d["metrics"].items()},
        tags=d["tags"],
        io=tuple(io_from_wire(d["io"])),
        deleted=d["deleted"],
    )


def page_to_wire(page: Page[Run]) -> dict[str, Any]:
    return {"items": [run_to_wire(r) for r in page.items], "next_token": page.next_token}


def page_from_wire(d: Mapping[str, Any]) -> Page[Run]:
    return Page(tuple(run_from_wire(r) for r in d["items"]), d["next_token"])
