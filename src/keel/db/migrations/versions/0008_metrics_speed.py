"""metrics speed: no per-row foreign-key check on PostgreSQL's metrics table

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 20:50:00

On PostgreSQL a foreign key is checked by a trigger per inserted row, which doubles the cost of
COPYing a batch of metric points. Every batch already reads the run under a share lock in the
same transaction (``_sql_log.run_status``), and a hard delete removes the run's metrics after
the run row (``_sql_runs.delete_run``), so the constraint adds no protection there. SQLite keeps
it: it does not check it per row at this cost, and dropping it would rebuild the table.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_metrics_run_id_runs", "metrics", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs)")
        op.create_foreign_key(
            "fk_metrics_run_id_runs", "metrics", "runs", ["run_id"], ["id"], ondelete="CASCADE"
        )
