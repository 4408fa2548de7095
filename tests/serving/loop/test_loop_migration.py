"""Migration 0007 creates exactly the serving tables declared in keel.serving._tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import keel.serving._tables  # noqa: F401 - declares the tables on the shared metadata
from keel.db import connect, metadata

SERVING = {"serving_deployments", "serving_deployment_history", "serving_feedback"}


def test_migration_matches_the_declared_tables(db_url: str) -> None:
    engine = connect(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    def table_of(entry: object) -> str | None:
        item = entry[0] if isinstance(entry, list) else entry
        for part in item[1:]:  # type: ignore[index]
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            if table is not None and table.name in SERVING:
                return str(table.name)
            if name in SERVING:
                return str(name)
            if isinstance(part, str) and part in SERVING:
                return part
        return None

    ours = [d for d in diff if table_of(d) is not None]
    assert ours == []
    tables = set(metadata.tables)
    assert tables >= SERVING


def test_downgrade_removes_the_serving_tables_and_upgrade_restores_them(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from keel.db._migrate import _alembic_config

    engine = connect(db_url)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0006")
    assert not SERVING & set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
    assert SERVING <= set(inspect(engine).get_table_names())
