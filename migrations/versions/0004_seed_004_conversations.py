"""Issue 6 / seed 004: conversations, messages, message embeddings, quality time series, contradictions, loops, citations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
