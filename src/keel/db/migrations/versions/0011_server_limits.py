"""server limits: request-rate counters shared by every server process, the uploaders of
content objects (read scoping), and digest indexes for the object read check

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_rate_windows",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "minute", name=op.f("pk_server_rate_windows")),
    )
    with op.batch_alter_table("server_rate_windows", schema=None) as batch_op:
        batch_op.create_index("ix_server_rate_windows_minute", ["minute"], unique=False)
    op.create_table(
        "server_object_uploads",
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "user_id", name=op.f("pk_server_object_uploads")),
    )
    # "Who references this digest" is asked on every object read; the primary keys of these
    # two tables start with the version id, so without these indexes it is a full scan.
    with op.batch_alter_table("model_files", schema=None) as batch_op:
        batch_op.create_index("ix_model_files_digest", ["digest"], unique=False)
    with op.batch_alter_table("dataset_objects", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_objects_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_objects_digest")
    with op.batch_alter_table("model_files", schema=None) as batch_op:
        batch_op.drop_index("ix_model_files_digest")
    op.drop_table("server_object_uploads")
    with op.batch_alter_table("server_rate_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_server_rate_windows_minute")
    op.drop_table("server_rate_windows")
