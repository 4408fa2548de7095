"""Who may read a content object (``/api/v1/artifacts/objects/{digest}``), from stored
references only, never from anything the request says.

A caller may read an object when

- it is a global admin (unscoped), or
- it uploaded those exact bytes itself (the server hashed them: it holds them already), or
- a run of a project it can read recorded the object as an artifact file, or
- a model version references it and the caller can read the project of the version's run
  (a version logged outside any run belongs to no project, like a dataset: any role on some
  project reads it), or
- a live dataset version references it and the caller has a role on some project (datasets
  belong to no project; the data routes read them with the same rule).

Everything else answers 404, exactly as for an object that does not exist, so a digest cannot
be probed for existence. ``server_object_uploads`` (migration 0011) keeps the uploaders.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    PrimaryKeyConstraint,
    String,
    Table,
    exists,
    select,
)

from keel._time import now_ms
from keel.db import metadata, transaction

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

object_uploads = Table(
    "server_object_uploads",
    metadata,
    Column("digest", String(80), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("digest", "user_id"),
)


def _insert_ignore(conn: Connection) -> object:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(object_uploads).on_conflict_do_nothing()


class ObjectAccess:
    """The read check of content objects, on the server's metadata database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_upload(self, digest: str, user_id: int) -> None:
        """``user_id`` sent bytes that hashed to ``digest``."""
        row = {"digest": digest, "user_id": user_id, "created_ms": now_ms()}
        transaction(self._engine, lambda conn: conn.execute(_insert_ignore(conn), [row]))  # type: ignore[call-overload]

    def readable(self, digest: str, user_id: int, projects: Collection[str] | None) -> bool:
        """Whether ``user_id``, who can read ``projects`` (None: every project), may read the
        object ``digest``."""
        if projects is None:
            return True
        names = frozenset(projects)
        return bool(
            transaction(
                self._engine, lambda conn: self._check(conn, digest, user_id, names), write=False
            )
        )

    @staticmethod
    def _check(conn: Connection, digest: str, user_id: int, projects: frozenset[str]) -> bool:
        from keel.data._tables import dataset_objects, dataset_versions
        from keel.models._tables import model_files, model_versions
        from keel.tracking._tables import projects as project_table
        from keel.tracking._tables import run_artifacts, runs

        uploaded = select(object_uploads.c.digest).where(
            object_uploads.c.digest == digest, object_uploads.c.user_id == user_id
        )
        if conn.execute(uploaded.limit(1)).first() is not None:
            return True
        if not projects:
            return False  # no role anywhere: nothing below can admit
        in_projects = project_table.c.name.in_(sorted(projects))
        by_run = (
            select(run_artifacts.c.digest)
            .join(runs, runs.c.id == run_artifacts.c.run_id)
            .join(project_table, project_table.c.id == runs.c.project_id)
            .where(run_artifacts.c.digest == digest, in_projects)
        )
        if conn.execute(by_run.limit(1)).first() is not None:
            return True
        version_runs = conn.execute(
            select(model_versions.c.run_id)
            .join(model_files, model_files.c.version_id == model_versions.c.id)
            .where(model_files.c.digest == digest)
        ).scalars()
        run_ids = set()
        for run_id in version_runs:
            if run_id is None:
                return True  # a version of no project
            run_ids.add(run_id)
        if run_ids:
            by_version = (
                select(runs.c.id)
                .join(project_table, project_table.c.id == runs.c.project_id)
                .where(runs.c.id.in_(sorted(run_ids)), in_projects)
            )
            if conn.execute(by_version.limit(1)).first() is not None:
                return True
        live = dataset_versions.c.deleted.is_(False)
        in_dataset = exists(
            select(dataset_objects.c.digest)
            .join(dataset_versions, dataset_versions.c.id == dataset_objects.c.version_id)
            .where(dataset_objects.c.digest == digest, live)
        ) | exists(select(dataset_versions.c.id).where(dataset_versions.c.digest == digest, live))
        return bool(conn.execute(select(in_dataset)).scalar())
