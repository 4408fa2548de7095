"""monitoring: monitors, their schedules and stored monitoring results

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_DEPLOYMENT = sa.String(length=128)
_ID = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "monitor_results",
        sa.Column("id", _ID, nullable=False),
        sa.Column("deployment", _DEPLOYMENT, nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("quantities", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
    )
    op.create_index(
        "ix_monitor_results_deployment_created_ms",
        "monitor_results",
        ["deployment", "created_ms"],
    )
    op.create_table(
        "monitor_schedules",
        sa.Column("deployment", _DEPLOYMENT, nullable=False),
        sa.Column("every_ms", sa.BigInteger(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("next_due_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_run_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_result_id", _ID, nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_monitor_schedules")),
    )
    op.create_index("ix_monitor_schedules_next_due_ms", "monitor_schedules", ["next_due_ms"])


def downgrade() -> None:
    op.drop_index("ix_monitor_schedules_next_due_ms", table_name="monitor_schedules")
    op.drop_table("monitor_schedules")
    op.drop_index("ix_monitor_results_deployment_created_ms", table_name="monitor_results")
    op.drop_table("monitor_results")
