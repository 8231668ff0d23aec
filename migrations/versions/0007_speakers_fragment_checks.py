"""Speaker turns per source, per-fragment checks, judge verdicts, per-reviewer verdicts with reasons.

Quality rule q-v2 (docs/quality.md) reads these; rows scored under q-v1 keep their rule name.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REJECT_REASONS = "('misquote','wrong_speaker','unsupported_insight','wrong_category','trivial')"

_PERFORMANCE_COLUMNS = [
    sa.Column("direct_quotes", sa.Integer(), nullable=True),
    sa.Column("quotes_exact", sa.Integer(), nullable=True),
    sa.Column("quotes_by_person", sa.Integer(), nullable=True),
    sa.Column("judged_fragments", sa.Integer(), nullable=True),
    sa.Column("support_rate", sa.Numeric(5, 4), nullable=True),
]


def upgrade() -> None:
    op.add_column("sources", sa.Column("speaker_turns", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("sources", sa.Column("person_labels", postgresql.ARRAY(sa.String(length=120)), nullable=True))
    op.add_column("sources", sa.Column("turns_note", sa.Text(), nullable=True))

    op.add_column("fragments", sa.Column("reject_reason", sa.String(length=32), nullable=True))
    op.create_check_constraint("ck_fragments_reject_reason", "fragments", f"reject_reason IN {REJECT_REASONS}")

    op.create_table(
        "fragment_checks",
        sa.Column("fragment_id", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.String(length=16), nullable=False),
        sa.Column("verbatim", sa.String(length=12), nullable=False),
        sa.Column("verbatim_similarity", sa.Numeric(5, 4), nullable=True),
        sa.Column("span_start", sa.Integer(), nullable=True),
        sa.Column("span_end", sa.Integer(), nullable=True),
        sa.Column("diff", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("attribution", sa.String(length=140), nullable=False),
        sa.Column("support_baseline", sa.Numeric(5, 4), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("verbatim IN ('exact','near','not_found','n/a')", name="ck_fragment_checks_verbatim"),
        sa.ForeignKeyConstraint(["fragment_id"], ["fragments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fragment_id"),
    )

    op.create_table(
        "judge_verdicts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("fragment_id", sa.Integer(), nullable=False),
        sa.Column("judge_model", sa.String(length=200), nullable=False),
        sa.Column("rubric_version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("support", sa.String(length=8), nullable=True),
        sa.Column("support_score", sa.Numeric(3, 2), nullable=True),
        sa.Column("judge_category", sa.String(length=32), nullable=True),
        sa.Column("category_agrees", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(12, 8), nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("raw_answer", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('ok','malformed','provider_error')", name="ck_judge_verdicts_status"),
        sa.CheckConstraint("support IN ('yes','partly','no')", name="ck_judge_verdicts_support"),
        sa.ForeignKeyConstraint(["fragment_id"], ["fragments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fragment_id", "judge_model", "rubric_version", name="uq_judge_verdicts_fragment_judge"),
    )

    op.create_table(
        "review_verdicts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("fragment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("verdict IN ('verified','rejected')", name="ck_review_verdicts_verdict"),
        sa.CheckConstraint(f"reason IN {REJECT_REASONS}", name="ck_review_verdicts_reason"),
        sa.ForeignKeyConstraint(["fragment_id"], ["fragments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fragment_id", "user_id", name="uq_review_verdicts_fragment_user"),
    )
    op.create_index("ix_review_verdicts_user_id", "review_verdicts", ["user_id"])

    for column in _PERFORMANCE_COLUMNS:
        op.add_column("model_performance", column.copy())


def downgrade() -> None:
    for column in reversed(_PERFORMANCE_COLUMNS):
        op.drop_column("model_performance", column.name)
    op.drop_index("ix_review_verdicts_user_id", table_name="review_verdicts")
    op.drop_table("review_verdicts")
    op.drop_table("judge_verdicts")
    op.drop_table("fragment_checks")
    op.drop_constraint("ck_fragments_reject_reason", "fragments", type_="check")
    op.drop_column("fragments", "reject_reason")
    op.drop_column("sources", "turns_note")
    op.drop_column("sources", "person_labels")
    op.drop_column("sources", "speaker_turns")
