"""serving: deployments and their history, prediction feedback

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 20:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NAME = sa.String(length=250)
_DEPLOYMENT = sa.String(length=128)


def upgrade() -> None:
    op.create_table(
        "serving_deployments",
        sa.Column("name", _DEPLOYMENT, nullable=False),
        sa.Column("model", _NAME, nullable=False),
        sa.Column("champion", sa.Integer(), nullable=False),
        sa.Column("challenger", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("sticky_key", _NAME, nullable=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", _NAME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_serving_deployments")),
    )
    op.create_table(
        "serving_deployment_history",
        sa.Column("name", _DEPLOYMENT, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("actor", _NAME, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "revision", name=op.f("pk_serving_deployment_history")),
    )
    op.create_table(
        "serving_feedback",
        sa.Column("deployment", _DEPLOYMENT, nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("label_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "request_id", name=op.f("pk_serving_feedback")),
    )
    op.create_index(
        "ix_serving_feedback_deployment_label_ms", "serving_feedback", ["deployment", "label_ms"]
    )


def downgrade() -> None:
    op.drop_index("ix_serving_feedback_deployment_label_ms", table_name="serving_feedback")
    op.drop_table("serving_feedback")
    op.drop_table("serving_deployment_history")
    op.drop_table("serving_deployments")
