"""server limits: request-rate counters shared by every server process

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 22:30:00
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
