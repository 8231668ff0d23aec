"""Issue 4: measured quality columns on model_performance and atomic budget reservations.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


_QUALITY_COLUMNS = [
    sa.Column("checked_fragments", sa.Integer(), nullable=True),
    sa.Column("grounded_fragments", sa.Integer(), nullable=True),
    sa.Column("grounding_rate", sa.Numeric(5, 4), nullable=True),
    sa.Column("reference_kind", sa.String(length=16), nullable=True),
    sa.Column("reference_size", sa.Integer(), nullable=True),
    sa.Column("agreement_precision", sa.Numeric(5, 4), nullable=True),
    sa.Column("agreement_recall", sa.Numeric(5, 4), nullable=True),
    sa.Column("agreement_f1", sa.Numeric(5, 4), nullable=True),
    sa.Column("human_judgements", sa.Integer(), nullable=True),
    sa.Column("human_score", sa.Numeric(5, 4), nullable=True),
    sa.Column("quality_score", sa.Numeric(4, 2), nullable=True),
    sa.Column("quality_ci_low", sa.Numeric(4, 2), nullable=True),
    sa.Column("quality_ci_high", sa.Numeric(4, 2), nullable=True),
    sa.Column("quality_rule", sa.String(length=16), nullable=True),
]


def upgrade() -> None:
    for column in _QUALITY_COLUMNS:
        op.add_column("model_performance", column.copy())
    op.alter_column("model_performance", "quality_delta", type_=sa.Numeric(6, 2), existing_nullable=True)
    op.alter_column("model_performance", "cost_delta", type_=sa.Numeric(12, 6), existing_nullable=True)

    op.add_column(
        "processing_batches",
        sa.Column("selected_by", sa.String(length=16), server_default="user_override", nullable=False),
    )
    op.add_column("processing_batches", sa.Column("selection_confidence", sa.Numeric(4, 3), nullable=True))
    op.create_check_constraint(
        "ck_batches_selected_by", "processing_batches", "selected_by IN ('auto','user_override','fallback')"
    )

    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("chunk_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("reserved_usd", sa.Numeric(12, 6), nullable=False),
        sa.Column("settled_usd", sa.Numeric(12, 6), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('held','settled','released')", name="ck_reservations_status"),
        sa.CheckConstraint("reserved_usd >= 0", name="ck_reservations_amount"),
        sa.ForeignKeyConstraint(["batch_id"], ["processing_batches.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_budget_reservations_day_status", "budget_reservations", ["day", "status"])

    op.create_table(
        "optimization_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("models", postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column("quality_threshold", sa.Numeric(4, 2), nullable=False),
        sa.Column("budget_per_fragment", sa.Numeric(12, 6), nullable=True),
        sa.Column("sample_chunk_ids", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chosen_model", sa.String(length=200), nullable=True),
        sa.Column("batch_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("decisions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("strategy IN ('progressive','aggressive','conservative')", name="ck_optruns_strategy"),
        sa.CheckConstraint("status IN ('sampling','full','completed','failed')", name="ck_optruns_status"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_optimization_runs_source_id", "optimization_runs", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_optimization_runs_source_id", table_name="optimization_runs")
    op.drop_table("optimization_runs")
    op.drop_index("ix_budget_reservations_day_status", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_constraint("ck_batches_selected_by", "processing_batches", type_="check")
    op.drop_column("processing_batches", "selection_confidence")
    op.drop_column("processing_batches", "selected_by")
    op.alter_column("model_performance", "cost_delta", type_=sa.Numeric(10, 2), existing_nullable=True)
    op.alter_column("model_performance", "quality_delta", type_=sa.Numeric(10, 2), existing_nullable=True)
    for column in reversed(_QUALITY_COLUMNS):
        op.drop_column("model_performance", column.name)
