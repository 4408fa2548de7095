"""data tables: dataset versions, their objects and tags, contracts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "data_counters",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "name", name=op.f("pk_data_counters")),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=True),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=True),
        sa.Column("produced_by", sa.String(length=250), nullable=True),
        sa.Column("source_digest", sa.String(length=80), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("name", "version", name="uq_dataset_versions_name_version"),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_versions_digest", ["digest"], unique=False)
    op.create_table(
        "dataset_objects",
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_objects_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "digest", name=op.f("pk_dataset_objects")),
    )
    op.create_table(
        "dataset_tags",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("tag", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "tag", name=op.f("pk_dataset_tags")),
    )
    op.create_table(
        "contracts",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_contracts")),
    )


def downgrade() -> None:
    op.drop_table("contracts")
    op.drop_table("dataset_tags")
    op.drop_table("dataset_objects")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_digest")
    op.drop_table("dataset_versions")
    op.drop_table("data_counters")
