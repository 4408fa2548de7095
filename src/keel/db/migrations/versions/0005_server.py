"""server: idempotency keys for retried create and batch calls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_idempotency",
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_server_idempotency")),
    )
    with op.batch_alter_table("server_idempotency", schema=None) as batch_op:
        batch_op.create_index("ix_server_idempotency_expires_ms", ["expires_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("server_idempotency", schema=None) as batch_op:
        batch_op.drop_index("ix_server_idempotency_expires_ms")
    op.drop_table("server_idempotency")
