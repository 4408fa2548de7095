"""model releases: evaluations, gate decisions, approvals, model card fields

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NAME = sa.String(length=250)


def upgrade() -> None:
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dataset", _NAME, nullable=False),
        sa.Column("dataset_digest", sa.String(length=80), nullable=True),
        sa.Column("target", _NAME, nullable=False),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_evaluations")),
    )
    op.create_index("ix_model_evaluations_name_version", "model_evaluations", ["name", "version"])
    op.create_table(
        "model_decisions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", _NAME, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("actor", _NAME, nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("dataset", _NAME, nullable=True),
        sa.Column("evaluation_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("gates", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_decisions")),
    )
    op.create_index("ix_model_decisions_name_version", "model_decisions", ["name", "version"])
    op.create_table(
        "model_approvals",
        sa.Column("name", _NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user", _NAME, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "user", name=op.f("pk_model_approvals")),
    )
    op.create_table(
        "model_card_fields",
        sa.Column("name", _NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "field", name=op.f("pk_model_card_fields")),
    )


def downgrade() -> None:
    op.drop_table("model_card_fields")
    op.drop_table("model_approvals")
    op.drop_index("ix_model_decisions_name_version", table_name="model_decisions")
    op.drop_table("model_decisions")
    op.drop_index("ix_model_evaluations_name_version", table_name="model_evaluations")
    op.drop_table("model_evaluations")
