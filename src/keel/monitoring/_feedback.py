"""Feedback: the true label of a past prediction, arriving minutes or weeks later, stored in the
metadata database keyed by (deployment, request id).

Rules (documented in ``docs/serving-loop.md``):

* The latest label wins, by the label's own time (``at``, default its arrival): a correction
  replaces the earlier label, and a late-arriving *older* label does not overwrite a newer one
  (it is counted as ``stale``). Equal times: the later arrival wins.
* An unknown request id is accepted. The predictions live in Parquet and may not be flushed yet
  when the label comes; the reader's join simply leaves such labels out.
* A batch is all-or-nothing: one bad row rejects the whole batch, naming the row and field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from keel import _time
from keel.db import SqlStore
from keel.errors import InvalidInput, LimitExceeded, NotFound
from keel.monitoring._predlog import check_name
from keel.monitoring._tables import serving_feedback

MAX_REQUEST_ID = 128
MAX_LABEL_CHARS = 1000
MAX_BATCH = 10_000  # rows in one HTTP batch; files go through in chunks of this size
_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit

Label = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Feedback:
    """The stored label of one request; ``updates`` counts the labels applied to it."""

    deployment: str
    request_id: str
    label: Label
    label_ms: int
    received_ms: int
    updates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "request_id": self.request_id,
            "label": self.label,
            "label_ms": self.label_ms,
            "received_ms": self.received_ms,
            "updates": self.updates,
        }


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """What a batch did: rows ``received``, labels ``applied``, rows ignored as ``stale``."""

    received: int
    applied: int
    stale: int

    def to_dict(self) -> dict[str, int]:
        return {"received": self.received, "applied": self.applied, "stale": self.stale}


def to_ms(value: datetime | int | float | str | None, field: str) -> int | None:
    """A time as epoch ms: an aware datetime (naive means UTC), epoch ms, or ISO-8601 text."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"not a time: {value!r}", field=field)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"not a time: {value!r}", field=field)
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"not an ISO-8601 time: {value!r}", field=field) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    raise InvalidInput(f"not a time: {value!r}", field=field)


def check_row(request_id: Any, label: Any, field_prefix: str = "") -> tuple[str, Label]:
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise InvalidInput(
            f"must be 1..{MAX_REQUEST_ID} characters", field=f"{field_prefix}request_id"
        )
    ok = (
        isinstance(label, bool | int)
        or (isinstance(label, float) and math.isfinite(label))
        or (isinstance(label, str) and len(label) <= MAX_LABEL_CHARS)
    )
    if not ok:
        raise InvalidInput(
            f"must be a number, a boolean or text of at most {MAX_LABEL_CHARS} characters; "
            f"got {label!r}",
            field=f"{field_prefix}label",
        )
    return request_id, label


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> Any:
    """INSERT that, if another writer inserted the same request meanwhile, keeps whichever
    label is later (instead of failing the batch on the primary key)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(serving_feedback).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=["deployment", "request_id"],
        set_={
            "label": stmt.excluded.label,
            "label_ms": stmt.excluded.label_ms,
            "received_ms": stmt.excluded.received_ms,
            "updates": serving_feedback.c.updates + 1,
        },
        where=serving_feedback.c.label_ms <= stmt.excluded.label_ms,
    )


def _feedback(row: Any) -> Feedback:
    return Feedback(
        row.deployment,
        row.request_id,
        json.loads(row.label),
        row.label_ms,
        row.received_ms,
        row.updates,
    )


class SqlFeedbackStore(SqlStore):
    """Feedback on SQLite or PostgreSQL."""

    def add(
        self,
        deployment: str,
        request_id: str,
        label: Label,
        *,
        at: datetime | int | None = None,
    ) -> Feedback:
        """Store one label (see the module rules); returns what is stored afterwards."""
        self.add_many(deployment, [(request_id, label, at)])
        return self.get(deployment, request_id)

    def add_many(
        self,
        deployment: str,
        rows: Iterable[tuple[str, Label, datetime | int | str | None]],
    ) -> FeedbackResult:
        """Store many ``(request_id, label, at)`` rows in one transaction."""
        check_name(deployment, "deployment")
        now = _time.now_ms()
        latest: dict[str, tuple[int, Label]] = {}
        received = 0
        for i, (request_id, label, at) in enumerate(rows):
            rid, value = check_row(request_id, label, f"rows[{i}].")
            at_ms = to_ms(at, f"rows[{i}].timestamp")
            at_ms = now if at_ms is None else at_ms
            received += 1
            seen = latest.get(rid)
            if seen is None or at_ms >= seen[0]:
                latest[rid] = (at_ms, value)

        def work(conn: Connection) -> int:
            applied = 0
            ids = list(latest)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                stored = {
                    r.request_id: r.label_ms
                    for r in conn.execute(
                        select(
                            serving_feedback.c.request_id,
                            serving_feedback.c.label_ms,
                        ).where(
                            serving_feedback.c.deployment == deployment,
                            serving_feedback.c.request_id.in_(chunk),
                        )
                    )
                }  # fmt: skip
                inserts = []
                for rid in chunk:
                    at_ms, value = latest[rid]
                    row = {"label": json.dumps(value), "label_ms": at_ms, "received_ms": now}
                    if rid not in stored:
                        inserts.append({"deployment": deployment, "request_id": rid,
                                        "updates": 1, **row})  # fmt: skip
                    elif at_ms >= stored[rid]:
                        # The time test sits in the WHERE clause, so a concurrent writer's
                        # newer label (committed since our SELECT) is not overwritten.
                        changed = conn.execute(
                            serving_feedback.update()
                            .where(
                                serving_feedback.c.deployment == deployment,
                                serving_feedback.c.request_id == rid,
                                serving_feedback.c.label_ms <= at_ms,
                            )
                            .values(updates=serving_feedback.c.updates + 1, **row)
                            .returning(serving_feedback.c.request_id)
                        ).first()
                        applied += changed is not None
                if inserts:
                    conn.execute(_upsert(conn, inserts))
                    applied += len(inserts)
            return applied

        applied = self._write(work) if latest else 0
        return FeedbackResult(received, applied, received - applied)

    def get(self, deployment: str, request_id: str) -> Feedback:
        """The stored label; ``NotFound`` if none."""
        query = select(serving_feedback).where(
            serving_feedback.c.deployment == deployment,
            serving_feedback.c.request_id == request_id,
        )

        def work(conn: Connection) -> Feedback:
            row = conn.execute(query).one_or_none()
            if row is None:
                raise NotFound(f"no feedback for request {request_id!r} of {deployment!r}")
            return _feedback(row)

        return self._read(work)

    def list(
        self,
        deployment: str,
        *,
        request_ids: Sequence[str] | None = None,
        since_ms: int | None = None,
    ) -> list[Feedback]:
        """The labels of ``deployment`` (only those of ``request_ids`` / received since
        ``since_ms`` if given), by request id."""
        base = select(serving_feedback).where(serving_feedback.c.deployment == deployment)
        if since_ms is not None:
            base = base.where(serving_feedback.c.received_ms >= since_ms)
        base = base.order_by(serving_feedback.c.request_id)

        def work(conn: Connection) -> list[Feedback]:
            if request_ids is None:
                return [_feedback(r) for r in conn.execute(base)]
            found: list[Feedback] = []
            ids = sorted(set(request_ids))
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                query = base.where(serving_feedback.c.request_id.in_(chunk))
                found.extend(_feedback(r) for r in conn.execute(query))
            return found

        return self._read(work)


def read_feedback_file(path: str | Path) -> list[tuple[str, Label, Any]]:
    """``(request_id, label, timestamp)`` rows of a CSV or Parquet file with columns
    ``request_id,label[,timestamp]``."""
    import pyarrow as pa

    file = Path(path)
    if not file.is_file():
        raise NotFound(f"no feedback file at {file}")
    try:
        if file.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(file)
        else:
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(
                file, convert_options=pacsv.ConvertOptions(column_types={"request_id": pa.string()})
            )
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot read {file.name}: {exc}", field="path") from exc
    missing = {"request_id", "label"} - set(table.column_names)
    if missing:
        raise InvalidInput(
            f"{file.name} lacks column(s) {sorted(missing)}; expected request_id,label[,timestamp]",
            field="path",
        )
    ids = [None if v is None else str(v) for v in table.column("request_id").to_pylist()]
    labels = table.column("label").to_pylist()
    if "timestamp" in table.column_names:
        times = table.column("timestamp").to_pylist()
    else:
        times = [None] * table.num_rows
    return [(i, lab, t) for i, lab, t in zip(ids, labels, times, strict=True)]  # type: ignore[misc]


def parse_body(body: Any) -> tuple[str, list[tuple[str, Label, Any]]]:
    """The deployment and rows of a ``POST /feedback`` body: one label
    ``{"deployment", "request_id", "label"[, "timestamp"]}`` or a batch
    ``{"deployment", "items": [{"request_id", "label"[, "timestamp"]}, ...]}``."""
    if not isinstance(body, Mapping):
        raise InvalidInput("expected a JSON object", field="body")
    deployment = body.get("deployment")
    if not isinstance(deployment, str):
        raise InvalidInput("required", field="deployment")
    check_name(deployment, "deployment")
    if "items" in body:
        items = body["items"]
        if not isinstance(items, list) or not items:
            raise InvalidInput("must be a non-empty list", field="items")
        if len(items) > MAX_BATCH:
            raise LimitExceeded(f"at most {MAX_BATCH} items per request", field="items")
        rows = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidInput("expected an object", field=f"items[{i}]")
            rows.append((item.get("request_id"), item.get("label"), item.get("timestamp")))
        return deployment, rows  # type: ignore[return-value]
    return deployment, [(body.get("request_id"), body.get("label"), body.get("timestamp"))]  # type: ignore[list-item]


def handle_feedback(store: SqlFeedbackStore, body: Any) -> dict[str, Any]:
    """The ``POST /feedback`` handler's work, for any web framework: parse, store, answer."""
    deployment, rows = parse_body(body)
    result = store.add_many(deployment, rows)
    return {"deployment": deployment, **result.to_dict()}


def open_feedback_store(uri: str | None = None) -> SqlFeedbackStore:
    """The feedback store at ``uri`` (default: the ``tracking_uri`` setting)."""
    from keel.config import get_settings, normalize_tracking_uri

    normal = normalize_tracking_uri(uri) if uri is not None else get_settings().tracking_uri
    return SqlFeedbackStore(normal)


def feedback(
    deployment: str,
    request_id: str,
    label: Label,
    *,
    at: datetime | int | None = None,
    uri: str | None = None,
) -> Feedback:
    """Record the true ``label`` of request ``request_id`` served by ``deployment``."""
    store = open_feedback_store(uri)
    try:
        return store.add(deployment, request_id, label, at=at)
    finally:
        store.close()


def upload_feedback(deployment: str, path: str | Path, *, uri: str | None = None) -> FeedbackResult:
    """Record every label of a CSV/Parquet file (``request_id,label[,timestamp]``) at once."""
    rows = read_feedback_file(path)
    store = open_feedback_store(uri)
    try:
        return store.add_many(deployment, rows)
    finally:
        store.close()
