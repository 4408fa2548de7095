"""``SqlDeploymentStore``: deployments and their history on SQLite and PostgreSQL."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keel import _time
from keel.db import SqlStore
from keel.errors import AlreadyExists, Conflict, NotFound
from keel.serving._deployments import (
    Deployment,
    DeploymentChange,
    DeploymentSettings,
    DeploymentStore,
    Mode,
    validate,
)
from keel.serving._tables import serving_deployment_history, serving_deployments


def _deployment(row: Any) -> Deployment:
    return Deployment(
        name=row.name,
        model=row.model,
        champion=row.champion,
        challenger=row.challenger,
        mode=Mode(row.mode),
        percent=float(row.percent),
        sticky_key=row.sticky_key,
        settings=DeploymentSettings.from_dict(json.loads(row.settings)),
        revision=row.revision,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        updated_by=row.updated_by,
    )


def _columns(config: Mapping[str, Any]) -> dict[str, Any]:
    return {**config, "settings": json.dumps(config["settings"], sort_keys=True)}


class SqlDeploymentStore(SqlStore, DeploymentStore):
    def _get(self, conn: Connection, name: str, *, lock: bool = False) -> Deployment:
        query = select(serving_deployments).where(serving_deployments.c.name == name)
        if lock:
            # Row lock on PostgreSQL (SQLite's write transaction already excludes writers), so
            # concurrent changes queue up rather than fail.
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        return _deployment(row)

    def create(self, deployment: Deployment, *, actor: str) -> Deployment:
        checked = validate(deployment)
        config = checked.config_dict()

        def work(conn: Connection) -> Deployment:
            now = _time.now_ms()
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            # DO NOTHING rather than a SELECT first: two concurrent creates of one name get
            # AlreadyExists for the loser, not a primary-key error. RETURNING tells whether the
            # row was ours (psycopg reports no rowcount for INSERT ... ON CONFLICT).
            created = conn.execute(
                insert(serving_deployments)
                .values(
                    name=checked.name, revision=1, created_ms=now, updated_ms=now,
                    updated_by=actor, **_columns(config),
                )
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(serving_deployments.c.name)
            ).first()  # fmt: skip
            if created is None:
                raise AlreadyExists(f"deployment {checked.name!r} already exists")
            conn.execute(
                serving_deployment_history.insert().values(
                    name=checked.name, revision=1, actor=actor, action="create",
                    changes=json.dumps({k: [None, v] for k, v in config.items()}),
                    config=json.dumps(config), created_ms=now,
                )
            )  # fmt: skip
            return self._get(conn, checked.name)

        return self._write(work)

    def get(self, name: str) -> Deployment:
        return self._read(lambda conn: self._get(conn, name))

    def list(self) -> list[Deployment]:
        query = select(serving_deployments).order_by(serving_deployments.c.name)
        return self._read(lambda conn: [_deployment(r) for r in conn.execute(query)])

    def update(
        self, name: str, changes: Mapping[str, Any], *, actor: str, expected_revision: int | None
    ) -> Deployment:
        def work(conn: Connection) -> Deployment:
            current = self._get(conn, name, lock=True)
            if expected_revision is not None and current.revision != expected_revision:
                raise Conflict(
                    f"deployment {name!r} is at revision {current.revision}, not "
                    f"{expected_revision}; reload it and retry"
                )
            old = current.config_dict()
            new = {**old, **changes}
            if "settings" in changes and not isinstance(changes["settings"], Mapping):
                new["settings"] = changes["settings"].to_dict()
            candidate = validate(
                Deployment(
                    name=name,
                    model=new["model"],
                    champion=new["champion"],
                    challenger=new["challenger"],
                    mode=new["mode"],
                    percent=new["percent"],
                    sticky_key=new["sticky_key"],
                    settings=DeploymentSettings.from_dict(new["settings"]),
                )
            )
            config = candidate.config_dict()
            diff = {k: [old[k], v] for k, v in config.items() if old[k] != v}
            if not diff:
                return current
            now = _time.now_ms()
            revision = current.revision + 1
            # Belt and braces with the row lock: the revision in the WHERE clause makes a lost
            # update impossible even if the lock were not taken.
            updated = conn.execute(
                serving_deployments.update()
                .where(
                    serving_deployments.c.name == name,
                    serving_deployments.c.revision == current.revision,
                )
                .values(revision=revision, updated_ms=now, updated_by=actor, **_columns(config))
            ).rowcount
            if updated != 1:
                raise Conflict(f"deployment {name!r} changed concurrently; retry")
            conn.execute(
                serving_deployment_history.insert().values(
                    name=name, revision=revision, actor=actor, action="set",
                    changes=json.dumps(diff), config=json.dumps(config), created_ms=now,
                )
            )  # fmt: skip
            return self._get(conn, name)

        return self._write(work)

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        query = (
            select(serving_deployment_history)
            .where(serving_deployment_history.c.name == name)
            .order_by(serving_deployment_history.c.revision)
        )

        def work(conn: Connection) -> list[DeploymentChange]:
            rows = conn.execute(query).all()
            if not rows:
                raise NotFound(f"no deployment named {name!r}")
            return [
                DeploymentChange(
                    name=r.name,
                    revision=r.revision,
                    actor=r.actor,
                    action=r.action,
                    changes={k: (v[0], v[1]) for k, v in json.loads(r.changes).items()},
                    config=json.loads(r.config),
                    created_ms=r.created_ms,
                )
                for r in rows
            ]

        return self._read(work)
