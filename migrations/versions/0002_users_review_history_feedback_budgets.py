"""Issue 3: users and roles, fragment edit history, seed 002 feedback, budgets, regenerate scope.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 13:42:48.474987
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('oidc_subject', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('analyst','reviewer','manager','admin')", name='ck_users_role'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('oidc_subject'),
    sa.UniqueConstraint('username')
    )
    op.create_table('budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('daily_limit_usd', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('per_fragment_limit_usd', sa.Numeric(precision=12, scale=6), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('ai_user_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('fragment_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('chunk_id', sa.Integer(), nullable=True),
    sa.Column('model_name', sa.String(length=200), nullable=False),
    sa.Column('category_key', sa.String(length=100), nullable=False),
    sa.Column('feedback_type', sa.String(length=20), nullable=False),
    sa.Column('quality_rating', sa.SmallInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('prompt_summary', sa.String(length=200), nullable=True),
    sa.Column('output_summary', sa.String(length=200), nullable=True),
    sa.Column('session_id', sa.String(length=100), nullable=True),
    sa.Column('regenerated_batch_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("feedback_type IN ('like','dislike','regenerate','skip','rating')", name='ck_feedback_type'),
    sa.CheckConstraint('fragment_id IS NOT NULL OR batch_id IS NOT NULL', name='ck_feedback_target'),
    sa.CheckConstraint('quality_rating IS NULL OR quality_rating BETWEEN 1 AND 5', name='ck_feedback_rating'),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['chunk_id'], ['source_chunks.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['regenerated_batch_id'], ['processing_batches.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ai_user_feedback_created_at'), 'ai_user_feedback', ['created_at'], unique=False)
    op.create_index(op.f('ix_ai_user_feedback_model_name'), 'ai_user_feedback', ['model_name'], unique=False)
    op.create_index(op.f('ix_ai_user_feedback_user_id'), 'ai_user_feedback', ['user_id'], unique=False)
    op.create_table('fragment_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fragment_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('edited_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_fragment_edits_fragment_id'), 'fragment_edits', ['fragment_id'], unique=False)
    op.add_column('fragments', sa.Column('rejected_by', sa.String(length=200), nullable=True))
    op.add_column('fragments', sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('processing_batches', sa.Column('parent_batch_id', sa.Integer(), nullable=True))
    op.add_column('processing_batches', sa.Column('chunk_scope', postgresql.ARRAY(sa.Integer()), nullable=True))
    op.create_foreign_key('fk_batches_parent', 'processing_batches', 'processing_batches', ['parent_batch_id'], ['id'], ondelete='SET NULL')
    # Verdict history: who verified/rejected is on the fragment; edits keep old values.
    op.execute("CREATE INDEX ix_fragments_review ON fragments (verified, rejected)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_fragments_review")
    op.drop_constraint('fk_batches_parent', 'processing_batches', type_='foreignkey')
    op.drop_column('processing_batches', 'chunk_scope')
    op.drop_column('processing_batches', 'parent_batch_id')
    op.drop_column('fragments', 'rejected_at')
    op.drop_column('fragments', 'rejected_by')
    op.drop_index(op.f('ix_fragment_edits_fragment_id'), table_name='fragment_edits')
    op.drop_table('fragment_edits')
    op.drop_index(op.f('ix_ai_user_feedback_user_id'), table_name='ai_user_feedback')
    op.drop_index(op.f('ix_ai_user_feedback_model_name'), table_name='ai_user_feedback')
    op.drop_index(op.f('ix_ai_user_feedback_created_at'), table_name='ai_user_feedback')
    op.drop_table('ai_user_feedback')
    op.drop_table('budgets')
    op.drop_table('users')
