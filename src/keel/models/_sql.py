"""``SqlModelRegistry``: the model registry contract on SQLite and PostgreSQL.

Every method is one ``keel.db.transaction`` (retried whole on transient failures). Version
numbers come from bumping ``registered_models.last_version`` with an UPDATE, which holds the
model row's lock until commit, and a unique ``(name, version)`` constraint backs it up: two
concurrent registrations of one model never get the same number, on either dialect.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel import _time
from keel.db import SqlStore
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.models import _names
from keel.models._base import ModelRegistry
from keel.models._records import (
    DatasetInput,
    ModelEnv,
    ModelFile,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Signature,
    VersionStatus,
)
from keel.models._tables import (
    model_aliases,
    model_files,
    model_tags,
    model_version_tags,
    model_versions,
    registered_models,
)

mv = model_versions
rm = registered_models
_MAX_FILES = 10_000


def _json(value: Any, field: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"must be JSON-serialisable: {exc}", field=field) from exc


def _model_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(rm).where(rm.c.name == name)).first()
    if row is None:
        raise NotFound(f"no registered model {name!r}")
    return row


def _model_record(conn: Connection, row: Any) -> RegisteredModel:
    tags = conn.execute(select(model_tags).where(model_tags.c.name == row.name)).all()
    aliases = conn.execute(select(model_aliases).where(model_aliases.c.name == row.name)).all()
    return RegisteredModel(
        name=row.name,
        description=row.description,
        tags={t.key: t.value for t in sorted(tags, key=lambda t: t.key)},
        aliases={a.alias: a.version for a in sorted(aliases, key=lambda a: a.alias)},
        latest_version=row.last_version,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


def _version_records(conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
    """Records for ``rows`` with their files, tags and aliases (three queries in all)."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    files: dict[int, list[ModelFile]] = {}
    tags: dict[int, dict[str, str]] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        q = select(model_files).where(model_files.c.version_id.in_(chunk))
        for f in conn.execute(q.order_by(model_files.c.path)):
            files.setdefault(f.version_id, []).append(ModelFile(f.path, f.digest, f.size))
        tq = select(model_version_tags).where(model_version_tags.c.version_id.in_(chunk))
        for t in conn.execute(tq.order_by(model_version_tags.c.key)):
            tags.setdefault(t.version_id, {})[t.key] = t.value
    names = sorted({r.name for r in rows})
    for a in conn.execute(
        select(model_aliases).where(model_aliases.c.name.in_(names)).order_by(model_aliases.c.alias)
    ):
        aliases.setdefault((a.name, a.version), []).append(a.alias)
    return [
        _version_record(
            r, files.get(r.id, []), tags.get(r.id, {}), aliases.get((r.name, r.version), [])
        )
        for r in rows
    ]


def _version_record(
    row: Any, files: list[ModelFile], tags: Mapping[str, str], aliases: list[str]
) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        status=VersionStatus(row.status),
        flavor=row.flavor,
        files=tuple(files),
        signature=None if row.signature is None else Signature.from_dict(json.loads(row.signature)),
        input_example=row.input_example,
        environment=ModelEnv.from_dict(json.loads(row.environment)),
        size=row.size,
        latency_ms=row.latency_ms,
        options=json.loads(row.options),
        requires_trust=bool(row.requires_trust),
        trusted=bool(row.trusted),
        trust_reason=row.trust_reason,
        run_id=row.run_id,
        source=row.source,
        datasets=tuple(DatasetInput.from_dict(d) for d in json.loads(row.datasets)),
        git_commit=row.git_commit,
        description=row.description,
        tags=dict(tags),
        aliases=tuple(aliases),
        error=row.error,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


def _version_row(conn: Connection, name: str, version: int) -> Any:
    row = conn.execute(select(mv).where(mv.c.name == name, mv.c.version == version)).first()
    if row is None:
        raise NotFound(f"no version {version} of model {name!r}")
    return row


def _one(conn: Connection, row: Any) -> ModelVersion:
    return _version_records(conn, [row])[0]


def _set_tags(
    conn: Connection,
    table: Any,
    key_col: str,
    key: Any,
    *,
    tags: dict[str, str],
    delete: list[str],
) -> None:
    owner = getattr(table.c, key_col)
    for k in [*tags, *delete]:
        conn.execute(table.delete().where(owner == key, table.c.key == k))
    if tags:
        conn.execute(
            table.insert(), [{key_col: key, "key": k, "value": v} for k, v in tags.items()]
        )


def _check_files(files: Sequence[ModelFile]) -> list[ModelFile]:
    from keel.artifacts import check_digest, safe_relpath

    if len(files) > _MAX_FILES:
        raise InvalidInput(f"more than {_MAX_FILES} files", field="files")
    seen: set[str] = set()
    out = []
    for f in files:
        if not isinstance(f, ModelFile):
            raise InvalidInput("must be ModelFile records", field="files")
        path = safe_relpath(f.path, field="files.path")
        if path in seen:
            raise InvalidInput(f"{path!r} is listed twice", field="files.path")
        seen.add(path)
        if isinstance(f.size, bool) or not isinstance(f.size, int) or f.size < 0:
            raise InvalidInput(f"bad size {f.size!r} for {path!r}", field="files.size")
        out.append(ModelFile(path, check_digest(f.digest, field="files.digest"), f.size))
    return out


class SqlModelRegistry(SqlStore, ModelRegistry):
    """Registry metadata in a SQL database given by URL (``sqlite:///…``, ``postgresql://…``)."""

    # -- models -----------------------------------------------------------------------------

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        _names.name(name)
        _names.text(description, "description")
        checked = _names.tags(tags)

        def work(conn: Connection) -> RegisteredModel:
            if conn.execute(select(rm.c.name).where(rm.c.name == name)).first() is not None:
                raise AlreadyExists(f"model {name!r} is already registered")
            now = _time.now_ms()
            conn.execute(
                rm.insert().values(
                    name=name,
                    description=description,
                    last_version=0,
                    created_ms=now,
                    updated_ms=now,
                )
            )
            _set_tags(conn, model_tags, "name", name, tags=checked, delete=[])
            return _model_record(conn, _model_row(conn, name))

        created: RegisteredModel = self._write(work)
        return created

    def get_model(self, name: str) -> RegisteredModel:
        _names.name(name)
        found: RegisteredModel = self._read(lambda c: _model_record(c, _model_row(c, name)))
        return found

    def list_models(self) -> list[RegisteredModel]:
        def work(conn: Connection) -> list[RegisteredModel]:
            return [_model_record(conn, r) for r in conn.execute(select(rm).order_by(rm.c.name))]

        found: list[RegisteredModel] = self._read(work)
        return found

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel:
        _names.name(name)
        if description is not None:
            _names.text(description, "description")
        checked = _names.tags(tags)
        gone = [_names.name(k, "delete_tags") for k in delete_tags]

        def work(conn: Connection) -> RegisteredModel:
            _model_row(conn, name)
            values: dict[str, Any] = {"updated_ms": _time.now_ms()}
            if description is not None:
                values["description"] = description
            conn.execute(update(rm).where(rm.c.name == name).values(**values))
            _set_tags(conn, model_tags, "name", name, tags=checked, delete=gone)
            return _model_record(conn, _model_row(conn, name))

        found: RegisteredModel = self._write(work)
        return found

    # -- versions ---------------------------------------------------------------------------

    def create_version(self, new: NewModelVersion) -> ModelVersion:
        if not isinstance(new, NewModelVersion):
            raise InvalidInput("must be a NewModelVersion", field="new")
        _names.name(new.name)
        _names.name(new.flavor, "flavor")
        _names.text(new.description, "description")
        tags = _names.tags(new.tags)
        values = {
            "name": new.name,
            "status": str(VersionStatus.PENDING),
            "flavor": new.flavor,
            "signature": None
            if new.signature is None
            else _json(new.signature.to_dict(), "signature"),
            "input_example": new.input_example,
            "environment": _json(new.environment.to_dict(), "environment"),
            "size": 0,
            "latency_ms": new.latency_ms,
            "options": _json(dict(new.options), "options"),
            "requires_trust": bool(new.requires_trust),
            "trusted": False,
            "trust_reason": "",
            "run_id": new.run_id,
            "source": new.source,
            "datasets": _json([d.to_dict() for d in new.datasets], "datasets"),
            "git_commit": new.git_commit,
            "description": new.description,
            "error": "",
        }

        def work(conn: Connection) -> ModelVersion:
            now = _time.now_ms()
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            conn.execute(
                insert(rm)
                .values(
                    name=new.name, description="", last_version=0, created_ms=now, updated_ms=now
                )
                .on_conflict_do_nothing(index_elements=["name"])
            )
            # The UPDATE takes the row lock; the number read back is ours until commit.
            conn.execute(
                update(rm)
                .where(rm.c.name == new.name)
                .values(last_version=rm.c.last_version + 1, updated_ms=now)
            )
            number = conn.execute(
                select(rm.c.last_version).where(rm.c.name == new.name)
            ).scalar_one()
            vid = conn.execute(
                mv.insert()
                .values(**values, version=number, created_ms=now, updated_ms=now)
                .returning(mv.c.id)
            ).scalar_one()
            _set_tags(conn, model_version_tags, "version_id", vid, tags=tags, delete=[])
            return _one(conn, conn.execute(select(mv).where(mv.c.id == vid)).one())

        created: ModelVersion = self._write(work)
        return created

    def complete_version(
        self,
        name: str,
        version: int,
        *,
        files: Sequence[ModelFile] = (),
        error: str | None = None,
    ) -> ModelVersion:
        _names.name(name)
        _names.version(version)
        checked = _check_files(files)
        if error is None and not checked:
            raise InvalidInput("a READY version needs at least one file", field="files")
        if error is not None:
            _names.text(error, "error")

        def work(conn: Connection) -> ModelVersion:
            row = _version_row(conn, name, version)
            if row.status != VersionStatus.PENDING:
                raise Conflict(f"model {name!r} version {version} is {row.status}, not pending")
            values: dict[str, Any] = {"updated_ms": _time.now_ms()}
            if error is not None:
                values.update(status=str(VersionStatus.FAILED), error=error)
            else:
                values.update(status=str(VersionStatus.READY), size=sum(f.size for f in checked))
                conn.execute(
                    model_files.insert(),
                    [
                        {"version_id": row.id, "path": f.path, "digest": f.digest, "size": f.size}
                        for f in checked
                    ],
                )
            conn.execute(update(mv).where(mv.c.id == row.id).values(**values))
            return _one(conn, conn.execute(select(mv).where(mv.c.id == row.id)).one())

        done: ModelVersion = self._write(work)
        return done

    def get_version(self, name: str, version: int) -> ModelVersion:
        _names.name(name)
        _names.version(version)
        found: ModelVersion = self._read(lambda c: _one(c, _version_row(c, name, version)))
        return found

    def list_versions(
        self,
        name: str | None = None,
        *,
        run_ids: Iterable[str] | None = None,
        status: VersionStatus | None = None,
    ) -> list[ModelVersion]:
        q = select(mv)
        if name is not None:
            q = q.where(mv.c.name == _names.name(name))
        if run_ids is not None:
            ids = sorted({str(r) for r in run_ids})
            if not ids:
                return []
            q = q.where(mv.c.run_id.in_(ids))
        if status is not None:
            q = q.where(mv.c.status == str(VersionStatus(status)))

        def work(conn: Connection) -> list[ModelVersion]:
            return _version_records(conn, conn.execute(q.order_by(mv.c.name, mv.c.version)).all())

        found: list[ModelVersion] = self._read(work)
        return found

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion:
        _names.name(name)
        _names.version(version)
        if description is not None:
            _names.text(description, "description")
        checked = _names.tags(tags)
        gone = [_names.name(k, "delete_tags") for k in delete_tags]

        def work(conn: Connection) -> ModelVersion:
            row = _version_row(conn, name, version)
            values: dict[str, Any] = {"updated_ms": _time.now_ms()}
            if description is not None:
                values["description"] = description
            conn.execute(update(mv).where(mv.c.id == row.id).values(**values))
            _set_tags(conn, model_version_tags, "version_id", row.id, tags=checked, delete=gone)
            return _one(conn, conn.execute(select(mv).where(mv.c.id == row.id)).one())

        found: ModelVersion = self._write(work)
        return found

    def mark_trusted(
        self, name: str, version: int, *, reason: str, trusted: bool = True
    ) -> ModelVersion:
        _names.name(name)
        _names.version(version)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("say why this model may run its own code", field="reason")
        _names.text(reason, "reason")

        def work(conn: Connection) -> ModelVersion:
            row = _version_row(conn, name, version)
            conn.execute(
                update(mv)
                .where(mv.c.id == row.id)
                .values(trusted=bool(trusted), trust_reason=reason, updated_ms=_time.now_ms())
            )
            return _one(conn, conn.execute(select(mv).where(mv.c.id == row.id)).one())

        found: ModelVersion = self._write(work)
        return found

    def referenced_digests(self) -> Iterator[str]:
        q = select(model_files.c.digest).distinct()
        digests: list[str] = self._read(lambda conn: list(conn.execute(q).scalars()))
        yield from digests

    # -- aliases ----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        _names.name(name)
        checked = _names.alias(alias)
        _names.version(version)

        def work(conn: Connection) -> ModelVersion:
            row = _version_row(conn, name, version)
            if row.status != VersionStatus.READY:
                raise Conflict(
                    f"model {name!r} version {version} is {row.status}; only a ready version "
                    "can carry an alias"
                )
            where = (model_aliases.c.name == name) & (model_aliases.c.alias == checked)
            conn.execute(model_aliases.delete().where(where))
            conn.execute(model_aliases.insert().values(name=name, alias=checked, version=version))
            conn.execute(update(rm).where(rm.c.name == name).values(updated_ms=_time.now_ms()))
            return _one(conn, row)

        found: ModelVersion = self._write(work)
        return found

    def delete_alias(self, name: str, alias: str) -> None:
        _names.name(name)
        checked = _names.alias(alias)

        def work(conn: Connection) -> None:
            where = (model_aliases.c.name == name) & (model_aliases.c.alias == checked)
            if conn.execute(model_aliases.delete().where(where)).rowcount == 0:
                raise NotFound(f"model {name!r} has no alias {checked!r}")

        self._write(work)

    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        _names.name(name)

        def work(conn: Connection) -> ModelVersion:
            if alias == "latest":
                row = conn.execute(
                    select(mv)
                    .where(mv.c.name == name, mv.c.status == str(VersionStatus.READY))
                    .order_by(mv.c.version.desc())
                    .limit(1)
                ).first()
                if row is None:
                    raise NotFound(f"model {name!r} has no ready version")
                return _one(conn, row)
            checked = _names.alias(alias)
            number = conn.execute(
                select(model_aliases.c.version).where(
                    model_aliases.c.name == name, model_aliases.c.alias == checked
                )
            ).scalar()
            if number is None:
                raise NotFound(f"model {name!r} has no alias {checked!r}")
            return _one(conn, _version_row(conn, name, number))

        found: ModelVersion = self._read(work)
        return found
