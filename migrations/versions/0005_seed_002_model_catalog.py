"""Issue 4 / seed 002: AI model catalog, task categories, model-task mappings, user preferences, performance aggregates, ai_logs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 15:45:00

Tables only: the catalog rows come from `mmos catalog sync` (litellm's price map + local models),
which workers also run at start when `ai_models` is empty (`model_catalog.sync.ensure_catalog`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ai_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=255), nullable=False),
    sa.Column('model_name', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=50), nullable=True),
    sa.Column('capabilities', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('supports_streaming', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('supports_json_mode', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('supports_function_calling', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('supports_vision', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('context_window', sa.Integer(), nullable=True),
    sa.Column('average_speed_ms', sa.Integer(), nullable=True),
    sa.Column('cost_bucket', sa.String(length=16), nullable=False),
    sa.Column('input_cost_per_1m', sa.Numeric(precision=14, scale=6), nullable=True),
    sa.Column('output_cost_per_1m', sa.Numeric(precision=14, scale=6), nullable=True),
    sa.Column('price_source', sa.String(length=200), nullable=True),
    sa.Column('overall_quality_score', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('reliability_score', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('is_local', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('is_recommended', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('priority_rank', sa.Integer(), server_default='0', nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('use_cases', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('limitations', sa.Text(), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deprecated_at', sa.Date(), nullable=True),
    sa.CheckConstraint("cost_bucket IN ('free','low','medium','high','unknown')", name='ck_ai_models_cost_bucket'),
    sa.CheckConstraint("status IN ('active','deprecated','external')", name='ck_ai_models_status'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id')
    )
    op.create_index('idx_ai_models_active', 'ai_models', ['is_active'], unique=False)
    op.create_index('idx_ai_models_capabilities', 'ai_models', ['capabilities'], unique=False, postgresql_using='gin')
    op.create_index('idx_ai_models_cost_bucket', 'ai_models', ['cost_bucket'], unique=False)
    op.create_index('idx_ai_models_provider', 'ai_models', ['provider'], unique=False)
    op.create_index('idx_ai_models_status', 'ai_models', ['status'], unique=False)
    op.create_table('ai_task_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_key', sa.String(length=100), nullable=False),
    sa.Column('category_name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('required_capabilities', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('preferred_capabilities', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('default_priority', sa.String(length=20), server_default='balanced', nullable=False),
    sa.Column('default_complexity', sa.String(length=20), server_default='moderate', nullable=False),
    sa.Column('typical_max_tokens', sa.Integer(), nullable=True),
    sa.Column('typical_temperature', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('parent_category', sa.String(length=100), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("default_complexity IN ('simple','moderate','complex')", name='ck_task_categories_complexity'),
    sa.CheckConstraint("default_priority IN ('speed','balanced','quality')", name='ck_task_categories_priority'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('category_key')
    )
    op.create_index('idx_task_categories_active', 'ai_task_categories', ['is_active'], unique=False)
    op.create_table('ai_model_performance_aggregates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('category_key', sa.String(length=100), nullable=False),
    sa.Column('period_type', sa.String(length=20), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('total_requests', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_tokens', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('total_cost_usd', sa.Numeric(precision=14, scale=6), server_default='0', nullable=False),
    sa.Column('average_speed_ms', sa.Integer(), nullable=True),
    sa.Column('success_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('error_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('total_feedback', sa.Integer(), server_default='0', nullable=False),
    sa.Column('like_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('dislike_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('regenerate_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rating_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('average_quality_rating', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('like_ratio', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('satisfaction_score', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('recommendation_score', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('posterior_high', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("period_type IN ('daily','weekly','monthly','all_time')", name='ck_perf_agg_period_type'),
    sa.CheckConstraint('period_end >= period_start', name='ck_perf_agg_period_order'),
    sa.ForeignKeyConstraint(['category_key'], ['ai_task_categories.category_key'], onupdate='CASCADE', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['ai_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'category_key', 'period_type', 'period_start', name='uq_perf_agg_period')
    )
    op.create_index('idx_perf_agg_category', 'ai_model_performance_aggregates', ['category_key'], unique=False)
    op.create_index('idx_perf_agg_model', 'ai_model_performance_aggregates', ['model_id'], unique=False)
    op.create_index('idx_perf_agg_period', 'ai_model_performance_aggregates', ['period_type', 'period_start'], unique=False)
    op.create_index('idx_perf_agg_score', 'ai_model_performance_aggregates', [sa.literal_column('recommendation_score DESC')], unique=False)
    op.create_table('ai_model_task_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('category_key', sa.String(length=100), nullable=False),
    sa.Column('base_suitability', sa.Numeric(precision=3, scale=2), server_default='0.5', nullable=False),
    sa.Column('suitability_score', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('is_recommended', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('priority_rank', sa.Integer(), server_default='0', nullable=False),
    sa.Column('average_quality', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('average_speed_ms', sa.Integer(), nullable=True),
    sa.Column('success_rate', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('min_complexity', sa.String(length=20), nullable=True),
    sa.Column('max_complexity', sa.String(length=20), nullable=True),
    sa.Column('recommended_for_priority', sa.String(length=20), nullable=True),
    sa.Column('total_uses', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_likes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_dislikes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_regenerates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('base_suitability BETWEEN 0 AND 1', name='ck_model_task_base_suitability'),
    sa.CheckConstraint('suitability_score BETWEEN 0 AND 1', name='ck_model_task_suitability'),
    sa.ForeignKeyConstraint(['category_key'], ['ai_task_categories.category_key'], onupdate='CASCADE', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['ai_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'category_key', name='uq_model_task_mapping')
    )
    op.create_index('idx_model_task_category', 'ai_model_task_mappings', ['category_key'], unique=False)
    op.create_index('idx_model_task_model', 'ai_model_task_mappings', ['model_id'], unique=False)
    op.create_index('idx_model_task_recommended', 'ai_model_task_mappings', ['is_recommended'], unique=False)
    op.create_index('idx_model_task_score', 'ai_model_task_mappings', [sa.literal_column('suitability_score DESC')], unique=False)
    op.create_table('ai_user_preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('category_key', sa.String(length=100), nullable=False),
    sa.Column('preference_score', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('is_pinned', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('total_interactions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('likes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('dislikes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('regenerates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('skips', sa.Integer(), server_default='0', nullable=False),
    sa.Column('average_quality_rating', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('total_ratings', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_used_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('preference_score BETWEEN 0 AND 1', name='ck_user_prefs_score'),
    sa.ForeignKeyConstraint(['category_key'], ['ai_task_categories.category_key'], onupdate='CASCADE', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['ai_models.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'model_id', 'category_key', name='uq_user_preference')
    )
    op.create_index('idx_user_prefs_category', 'ai_user_preferences', ['category_key'], unique=False)
    op.create_index('idx_user_prefs_model', 'ai_user_preferences', ['model_id'], unique=False)
    op.create_index('idx_user_prefs_score', 'ai_user_preferences', [sa.literal_column('preference_score DESC')], unique=False)
    op.create_index('idx_user_prefs_user', 'ai_user_preferences', ['user_id'], unique=False)
    op.create_index('uq_user_prefs_one_pinned', 'ai_user_preferences', ['user_id', 'category_key'], unique=True, postgresql_where='is_pinned')
    op.create_table('ai_logs',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('model_name', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=True),
    sa.Column('category_key', sa.String(length=100), nullable=True),
    sa.Column('task_priority', sa.String(length=20), nullable=True),
    sa.Column('task_complexity', sa.String(length=20), nullable=True),
    sa.Column('selected_by', sa.String(length=20), server_default='auto', nullable=False),
    sa.Column('confidence_score', sa.Numeric(precision=3, scale=2), nullable=True),
    sa.Column('input_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('output_tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), server_default='0', nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.SmallInteger(), server_default='1', nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('chunk_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("selected_by IN ('auto','user_override','fallback')", name='ck_ai_logs_selected_by'),
    sa.CheckConstraint("status IN ('ok','malformed','provider_error','error')", name='ck_ai_logs_status'),
    sa.CheckConstraint("task_complexity IN ('simple','moderate','complex')", name='ck_ai_logs_complexity'),
    sa.CheckConstraint("task_priority IN ('speed','balanced','quality')", name='ck_ai_logs_priority'),
    sa.CheckConstraint('confidence_score BETWEEN 0 AND 1', name='ck_ai_logs_confidence'),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['chunk_id'], ['source_chunks.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['model_id'], ['ai_models.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_ai_logs_batch', 'ai_logs', ['batch_id'], unique=False)
    op.create_index('idx_ai_logs_category', 'ai_logs', ['category_key'], unique=False)
    op.create_index('idx_ai_logs_created', 'ai_logs', ['created_at'], unique=False)
    op.create_index('idx_ai_logs_model_created', 'ai_logs', ['model_name', 'created_at'], unique=False)
    op.create_index('idx_ai_logs_priority', 'ai_logs', ['task_priority'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_ai_logs_priority', table_name='ai_logs')
    op.drop_index('idx_ai_logs_model_created', table_name='ai_logs')
    op.drop_index('idx_ai_logs_created', table_name='ai_logs')
    op.drop_index('idx_ai_logs_category', table_name='ai_logs')
    op.drop_index('idx_ai_logs_batch', table_name='ai_logs')
    op.drop_table('ai_logs')
    op.drop_index('uq_user_prefs_one_pinned', table_name='ai_user_preferences', postgresql_where='is_pinned')
    op.drop_index('idx_user_prefs_user', table_name='ai_user_preferences')
    op.drop_index('idx_user_prefs_score', table_name='ai_user_preferences')
    op.drop_index('idx_user_prefs_model', table_name='ai_user_preferences')
    op.drop_index('idx_user_prefs_category', table_name='ai_user_preferences')
    op.drop_table('ai_user_preferences')
    op.drop_index('idx_model_task_score', table_name='ai_model_task_mappings')
    op.drop_index('idx_model_task_recommended', table_name='ai_model_task_mappings')
    op.drop_index('idx_model_task_model', table_name='ai_model_task_mappings')
    op.drop_index('idx_model_task_category', table_name='ai_model_task_mappings')
    op.drop_table('ai_model_task_mappings')
    op.drop_index('idx_perf_agg_score', table_name='ai_model_performance_aggregates')
    op.drop_index('idx_perf_agg_period', table_name='ai_model_performance_aggregates')
    op.drop_index('idx_perf_agg_model', table_name='ai_model_performance_aggregates')
    op.drop_index('idx_perf_agg_category', table_name='ai_model_performance_aggregates')
    op.drop_table('ai_model_performance_aggregates')
    op.drop_index('idx_task_categories_active', table_name='ai_task_categories')
    op.drop_table('ai_task_categories')
    op.drop_index('idx_ai_models_status', table_name='ai_models')
    op.drop_index('idx_ai_models_provider', table_name='ai_models')
    op.drop_index('idx_ai_models_cost_bucket', table_name='ai_models')
    op.drop_index('idx_ai_models_capabilities', table_name='ai_models', postgresql_using='gin')
    op.drop_index('idx_ai_models_active', table_name='ai_models')
    op.drop_table('ai_models')
