"""``SqlDataStore``: the data store contract on SQLite and PostgreSQL.

Every method is one ``keel.db.transaction`` (retried whole on transient failures). Numbers are
handed out by bumping a counter row with an UPDATE, which holds the row lock until commit: two
concurrent adds of one name get consecutive numbers on both dialects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, and_, select, update

from keel import _time
from keel.data import _names
from keel.data._base import DataStore
from keel.data._records import DatasetVersion, NewVersion
from keel.data._tables import contracts, data_counters, dataset_objects, dataset_tags
from keel.data._tables import dataset_versions as dv
from keel.db import SqlStore
from keel.errors import InvalidInput, NotFound

_MAX_CONTRACT = 1_000_000
_DIGEST_PAGE = 10_000


def _next_number(conn: Connection, scope: str, name: str) -> int:
    # The dialect's own insert, imported here: the other dialect's modules cost ~30 ms to load.
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(
        insert(data_counters)
        .values(scope=scope, name=name, value=0)
        .on_conflict_do_nothing(index_elements=["scope", "name"])
    )
    where = and_(data_counters.c.scope == scope, data_counters.c.name == name)
    conn.execute(update(data_counters).where(where).values(value=data_counters.c.value + 1))
    return int(conn.execute(select(data_counters.c.value).where(where)).scalar_one())


def _give_back(conn: Connection, scope: str, name: str) -> None:
    where = and_(data_counters.c.scope == scope, data_counters.c.name == name)
    conn.execute(update(data_counters).where(where).values(value=data_counters.c.value - 1))


def _record(row: Any, tags: tuple[str, ...] = (), *, existed: bool = False) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        version=row.version,
        digest=row.digest,
        kind=row.kind,
        size=row.size,
        rows=row.rows,
        files=row.files,
        schema=tuple((c, t) for c, t in json.loads(row.schema)),
        profile=json.loads(row.profile),
        description=row.description,
        key=tuple(json.loads(row.key)),
        source_uri=row.source_uri,
        produced_by=row.produced_by,
        source_digest=row.source_digest,
        tags=tags,
        created_ms=row.created_ms,
        deleted=bool(row.deleted),
        existed=existed,
    )


def _tags_of(conn: Connection, name: str, version: int) -> tuple[str, ...]:
    q = select(dataset_tags.c.tag).where(
        dataset_tags.c.name == name, dataset_tags.c.version == version
    )
    return tuple(sorted(conn.execute(q).scalars()))


def _latest_row(conn: Connection, name: str) -> Any:
    q = (
        select(dv)
        .where(dv.c.name == name, dv.c.deleted.is_(False))
        .order_by(dv.c.version.desc())
        .limit(1)
    )
    return conn.execute(q).first()


def _resolve_row(conn: Connection, ref: str) -> Any:
    name, selector = _names.parse_ref(ref)
    if selector is None:
        row = _latest_row(conn, name)
    else:
        if isinstance(selector, str):
            number = conn.execute(
                select(dataset_tags.c.version).where(
                    dataset_tags.c.name == name, dataset_tags.c.tag == selector
                )
            ).scalar()
            if number is None:
                raise NotFound(f"dataset {name!r} has no tag {selector!r}")
        else:
            number = selector
        row = conn.execute(
            select(dv).where(dv.c.name == name, dv.c.version == number, dv.c.deleted.is_(False))
        ).first()
    if row is None:
        raise NotFound(f"no dataset version {ref!r}")
    return row


class SqlDataStore(SqlStore, DataStore):
    """Data metadata in a SQL database given by URL (``sqlite:///…``, ``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)

    # -- versions ---------------------------------------------------------------------------

    def create_version(self, new: NewVersion) -> DatasetVersion:
        if not isinstance(new, NewVersion):
            raise InvalidInput("must be a NewVersion", field="new")
        _names.name(new.name)
        tags = tuple(_names.tag(t) for t in new.tags)
        row = {
            "name": new.name,
            "digest": new.digest,
            "kind": new.kind,
            "size": new.size,
            "rows": new.rows,
            "files": new.files,
            "schema": json.dumps([list(c) for c in new.schema]),
            "profile": json.dumps(new.profile, allow_nan=False, default=str),
            "description": new.description,
            "key": json.dumps(list(new.key)),
            "source_uri": new.source_uri,
            "produced_by": new.produced_by,
            "source_digest": new.source_digest,
            "deleted": False,
        }

        def work(conn: Connection) -> DatasetVersion:
            # The counter's row lock serialises adds of this name, so the dedup check below
            # sees every committed version.
            number = _next_number(conn, "dataset", new.name)
            latest = _latest_row(conn, new.name)
            if latest is not None and latest.digest == new.digest:
                _give_back(conn, "dataset", new.name)  # nothing is created
                return _record(latest, _tags_of(conn, new.name, latest.version), existed=True)
            created = _time.now_ms()
            vid = conn.execute(
                dv.insert().values(**row, version=number, created_ms=created).returning(dv.c.id)
            ).scalar_one()
            objects = sorted(set(new.objects) | {new.digest})
            conn.execute(
                dataset_objects.insert(), [{"version_id": vid, "digest": d} for d in objects]
            )
            for t in tags:
                self._point_tag(conn, new.name, t, number)
            stored = conn.execute(select(dv).where(dv.c.id == vid)).one()
            return _record(stored, tuple(sorted(tags)))

        result: DatasetVersion = self._write(work)
        return result

    @staticmethod
    def _point_tag(conn: Connection, name: str, tag: str, version: int) -> None:
        conn.execute(
            dataset_tags.delete().where(dataset_tags.c.name == name, dataset_tags.c.tag == tag)
        )
        conn.execute(dataset_tags.insert().values(name=name, tag=tag, version=version))

    def resolve(self, ref: str) -> DatasetVersion:
        def work(conn: Connection) -> DatasetVersion:
            row = _resolve_row(conn, ref)
            return _record(row, _tags_of(conn, row.name, row.version))

        found: DatasetVersion = self._read(work)
        return found

    def find_by_source(self, name: str, source_digest: str) -> DatasetVersion | None:
        _names.name(name)

        def work(conn: Connection) -> DatasetVersion | None:
            row = _latest_row(conn, name)
            if row is None or row.source_digest != source_digest:
                return None
            return _record(row, _tags_of(conn, name, row.version), existed=True)

        found: DatasetVersion | None = self._read(work)
        return found

    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        if name is not None:
            _names.name(name)

        def work(conn: Connection) -> list[DatasetVersion]:
            q = select(dv).where(dv.c.deleted.is_(False))
            tq = select(dataset_tags)
            if name is not None:
                q = q.where(dv.c.name == name)
                tq = tq.where(dataset_tags.c.name == name)
            tags: dict[tuple[str, int], list[str]] = {}
            for t in conn.execute(tq):
                tags.setdefault((t.name, t.version), []).append(t.tag)
            rows = conn.execute(q.order_by(dv.c.name, dv.c.version)).all()
            return [_record(r, tuple(sorted(tags.get((r.name, r.version), [])))) for r in rows]

        found: list[DatasetVersion] = self._read(work)
        return found

    def set_tag(self, ref: str, tag: str) -> DatasetVersion:
        checked = _names.tag(tag)

        def work(conn: Connection) -> DatasetVersion:
            row = _resolve_row(conn, ref)
            self._point_tag(conn, row.name, checked, row.version)
            return _record(row, _tags_of(conn, row.name, row.version))

        found: DatasetVersion = self._write(work)
        return found

    def delete_version(self, ref: str) -> DatasetVersion:
        def work(conn: Connection) -> DatasetVersion:
            row = _resolve_row(conn, ref)
            conn.execute(update(dv).where(dv.c.id == row.id).values(deleted=True))
            conn.execute(
                dataset_tags.delete().where(
                    dataset_tags.c.name == row.name, dataset_tags.c.version == row.version
                )
            )
            return _record(conn.execute(select(dv).where(dv.c.id == row.id)).one())

        found: DatasetVersion = self._write(work)
        return found

    def referenced_digests(self) -> Iterator[str]:
        q = (
            select(dataset_objects.c.digest)
            .join(dv, dv.c.id == dataset_objects.c.version_id)
            .where(dv.c.deleted.is_(False))
            .distinct()
        )
        digests: list[str] = self._read(lambda conn: list(conn.execute(q).scalars()))
        yield from digests

    # -- contracts --------------------------------------------------------------------------

    def save_contract(self, name: str, text: str) -> int:
        _names.name(name)
        if not isinstance(text, str):
            raise InvalidInput(f"must be a string, got {type(text).__name__}", field="text")
        if len(text) > _MAX_CONTRACT or "\x00" in text:
            raise InvalidInput(f"must be under {_MAX_CONTRACT} characters, no NUL", field="text")

        def work(conn: Connection) -> int:
            number = _next_number(conn, "contract", name)
            conn.execute(
                contracts.insert().values(
                    name=name, version=number, text=text, created_ms=_time.now_ms()
                )
            )
            return number

        saved: int = self._write(work)
        return saved

    def get_contract(self, name: str, version: int | None = None) -> tuple[int, str]:
        _names.name(name)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidInput("must be an integer", field="version")
        q = select(contracts.c.version, contracts.c.text).where(contracts.c.name == name)
        q = (
            q.where(contracts.c.version == version)
            if version is not None
            else q.order_by(contracts.c.version.desc()).limit(1)
        )
        row = self._read(lambda conn: conn.execute(q).first())
        if row is None:
            what = f"version {version} of " if version is not None else ""
            raise NotFound(f"no {what}contract {name!r}")
        return int(row.version), str(row.text)
