"""Issue 5 / seed 003: ONNX model registry and inference audit trail.

Adds the tables `onnx_models` (at most one default: partial unique index), `beam_tensors`,
`asi_inferences`, `sacred_interventions`, `context_metrics`, `training_samples`, the hourly
per-model materialized view `asi_performance_summary` (unique index on (hour, onnx_model_id), so it
can be refreshed CONCURRENTLY) and seed 003's `refresh_asi_performance_summary()` function.
Integer keys instead of the seed's UUIDs, like the rest of the schema.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 14:23:53.449126
"""

from __future__ import annotations

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('onnx_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('model_path', sa.Text(), nullable=False),
    sa.Column('tokenizer_path', sa.Text(), nullable=False),
    sa.Column('embedding_dim', sa.Integer(), server_default='384', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='disabled', nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('quantization', sa.String(length=8), server_default='fp32', nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('performance_metrics', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("quantization IN ('fp32','int8')", name='ck_onnx_models_quantization'),
    sa.CheckConstraint("status IN ('ready','loading','error','disabled')", name='ck_onnx_models_status'),
    sa.CheckConstraint('embedding_dim > 0', name='ck_onnx_models_dim'),
    sa.PrimaryKeyConstraint('id', name='onnx_models_pkey'),
    sa.UniqueConstraint('name', name='uq_onnx_models_name')
    )
    # At most one default model.
    op.create_index('uq_onnx_models_single_default', 'onnx_models', ['is_default'], unique=True, postgresql_where='is_default')

    op.create_table('beam_tensors',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('digits', postgresql.ARRAY(sa.REAL()), nullable=False),
    sa.Column('confidence', sa.REAL(), nullable=False),
    sa.Column('elp_channels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('flux_position', sa.SmallInteger(), nullable=False),
    sa.Column('is_sacred', sa.Boolean(), sa.Computed('flux_position IN (3, 6, 9)', persisted=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("elp_channels ?& array['ethos','logos','pathos']", name='ck_beam_tensors_elp_keys'),
    sa.CheckConstraint('cardinality(digits) = 9', name='ck_beam_tensors_digits'),
    sa.CheckConstraint('confidence >= 0 AND confidence <= 1', name='ck_beam_tensors_confidence'),
    sa.CheckConstraint('flux_position BETWEEN 0 AND 9', name='ck_beam_tensors_flux'),
    sa.PrimaryKeyConstraint('id', name='beam_tensors_pkey')
    )
    op.create_index('ix_beam_tensors_confidence', 'beam_tensors', [sa.literal_column('confidence DESC')], unique=False)
    op.create_index('ix_beam_tensors_flux', 'beam_tensors', ['flux_position'], unique=False)
    op.create_index('ix_beam_tensors_sacred', 'beam_tensors', ['is_sacred'], unique=False, postgresql_where='is_sacred')

    op.create_table('asi_inferences',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('input_text', sa.Text(), nullable=False),
    sa.Column('beam_tensor_id', sa.BigInteger(), nullable=True),
    sa.Column('onnx_model_id', sa.Integer(), nullable=True),
    sa.Column('fragment_id', sa.Integer(), nullable=True),
    sa.Column('semantic_embedding', pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
    sa.Column('flux_position', sa.SmallInteger(), nullable=False),
    sa.Column('is_sacred', sa.Boolean(), sa.Computed('flux_position IN (3, 6, 9)', persisted=True), nullable=False),
    sa.Column('archetype', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.REAL(), nullable=False),
    sa.Column('hallucination_detected', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('vortex_intervention', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('lake_worthy', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('processing_time_ms', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('fragment_grounding','message_analysis','search_query')", name='ck_asi_inferences_kind'),
    sa.CheckConstraint('confidence >= 0 AND confidence <= 1', name='ck_asi_inferences_confidence'),
    sa.CheckConstraint('flux_position BETWEEN 0 AND 9', name='ck_asi_inferences_flux'),
    sa.CheckConstraint('processing_time_ms >= 0', name='ck_asi_inferences_time'),
    sa.ForeignKeyConstraint(['beam_tensor_id'], ['beam_tensors.id'], name='fk_asi_inferences_beam_tensor', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], name='fk_asi_inferences_fragment', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['onnx_model_id'], ['onnx_models.id'], name='fk_asi_inferences_model', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name='asi_inferences_pkey')
    )
    op.create_index('idx_asi_inferences_signal_created', 'asi_inferences', [sa.literal_column('confidence DESC'), sa.literal_column('created_at DESC')], unique=False)
    op.create_index('ix_asi_inferences_created', 'asi_inferences', ['created_at'], unique=False)
    op.create_index('ix_asi_inferences_fragment', 'asi_inferences', ['fragment_id'], unique=False)
    op.create_index('ix_asi_inferences_model_created', 'asi_inferences', ['onnx_model_id', 'created_at'], unique=False)

    op.create_table('sacred_interventions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inference_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('signal_before', sa.REAL(), nullable=False),
    sa.Column('signal_after', sa.REAL(), nullable=False),
    sa.Column('confidence_boost', sa.REAL(), nullable=False),
    sa.Column('intervention_type', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("intervention_type IN ('magnification','reset','stabilization')", name='ck_sacred_interventions_type'),
    sa.CheckConstraint('position IN (3, 6, 9)', name='ck_sacred_interventions_position'),
    sa.ForeignKeyConstraint(['inference_id'], ['asi_inferences.id'], name='fk_sacred_interventions_inference', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name='sacred_interventions_pkey')
    )
    op.create_index(op.f('ix_sacred_interventions_inference_id'), 'sacred_interventions', ['inference_id'], unique=False)

    op.create_table('context_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inference_id', sa.BigInteger(), nullable=False),
    sa.Column('token_count', sa.Integer(), nullable=False),
    sa.Column('context_window_size', sa.Integer(), server_default='4096', nullable=False),
    sa.Column('retention_rate', sa.REAL(), nullable=False),
    sa.Column('sacred_checkpoints', postgresql.ARRAY(sa.Integer()), server_default='{}', nullable=False),
    sa.Column('vortex_cycle_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('context_window_size > 0', name='ck_context_metrics_window'),
    sa.CheckConstraint('retention_rate >= 0 AND retention_rate <= 1', name='ck_context_metrics_retention'),
    sa.CheckConstraint('sacred_checkpoints <@ ARRAY[3, 6, 9]', name='ck_context_metrics_checkpoints'),
    sa.CheckConstraint('token_count >= 0', name='ck_context_metrics_tokens'),
    sa.CheckConstraint('vortex_cycle_count >= 0', name='ck_context_metrics_cycles'),
    sa.ForeignKeyConstraint(['inference_id'], ['asi_inferences.id'], name='fk_context_metrics_inference', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name='context_metrics_pkey')
    )
    op.create_index(op.f('ix_context_metrics_inference_id'), 'context_metrics', ['inference_id'], unique=False)

    op.create_table('training_samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('input_text', sa.Text(), nullable=False),
    sa.Column('label_kind', sa.String(length=16), server_default='category', nullable=False),
    sa.Column('expected_category', sa.String(length=64), nullable=True),
    sa.Column('predicted_category', sa.String(length=64), nullable=True),
    sa.Column('fragment_id', sa.Integer(), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('expected_position', sa.SmallInteger(), nullable=True),
    sa.Column('expected_elp', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('actual_position', sa.SmallInteger(), nullable=True),
    sa.Column('actual_elp', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('loss', sa.REAL(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("label_kind IN ('category','archetype')", name='ck_training_samples_kind'),
    sa.CheckConstraint('actual_position BETWEEN 0 AND 9', name='ck_training_samples_actual_pos'),
    sa.CheckConstraint('expected_position BETWEEN 0 AND 9', name='ck_training_samples_expected_pos'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_training_samples_user', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], name='fk_training_samples_fragment', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['model_id'], ['onnx_models.id'], name='fk_training_samples_model', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name='training_samples_pkey')
    )
    op.create_index(op.f('ix_training_samples_fragment_id'), 'training_samples', ['fragment_id'], unique=False)

    for statement in SUMMARY_SQL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS refresh_asi_performance_summary()")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS asi_performance_summary")
    op.drop_index(op.f('ix_training_samples_fragment_id'), table_name='training_samples')
    op.drop_table('training_samples')
    op.drop_index(op.f('ix_context_metrics_inference_id'), table_name='context_metrics')
    op.drop_table('context_metrics')
    op.drop_index(op.f('ix_sacred_interventions_inference_id'), table_name='sacred_interventions')
    op.drop_table('sacred_interventions')
    op.drop_index('ix_asi_inferences_model_created', table_name='asi_inferences')
    op.drop_index('ix_asi_inferences_fragment', table_name='asi_inferences')
    op.drop_index('ix_asi_inferences_created', table_name='asi_inferences')
    op.drop_index('idx_asi_inferences_signal_created', table_name='asi_inferences')
    op.drop_table('asi_inferences')
    op.drop_index('ix_beam_tensors_sacred', table_name='beam_tensors', postgresql_where='is_sacred')
    op.drop_index('ix_beam_tensors_flux', table_name='beam_tensors')
    op.drop_index('ix_beam_tensors_confidence', table_name='beam_tensors')
    op.drop_table('beam_tensors')
    op.drop_index('uq_onnx_models_single_default', table_name='onnx_models', postgresql_where='is_default')
    op.drop_table('onnx_models')


SUMMARY_SQL = [
    # Seed 003 section 7, per model and with latency percentiles. Hours are UTC hours (the
    # three-argument date_trunc does not depend on the session's TimeZone).
    """
CREATE MATERIALIZED VIEW asi_performance_summary AS
SELECT
    date_trunc('hour', i.created_at, 'UTC') AS hour,
    i.onnx_model_id,
    m.name AS model_name,
    COUNT(*) AS total_inferences,
    COUNT(*) FILTER (WHERE i.kind = 'fragment_grounding') AS grounding_count,
    COUNT(*) FILTER (WHERE i.kind = 'message_analysis') AS message_count,
    COUNT(*) FILTER (WHERE i.kind = 'search_query') AS search_count,
    AVG(i.confidence)::double precision AS avg_confidence,
    COUNT(*) FILTER (WHERE i.hallucination_detected) AS hallucination_count,
    (COUNT(*) FILTER (WHERE i.hallucination_detected))::double precision / COUNT(*) AS hallucination_rate,
    COUNT(*) FILTER (WHERE i.vortex_intervention) AS intervention_count,
    COUNT(*) FILTER (WHERE i.lake_worthy) AS lake_worthy_count,
    AVG(i.processing_time_ms) AS avg_processing_time_ms,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY i.processing_time_ms) AS p50_processing_time_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY i.processing_time_ms) AS p95_processing_time_ms
FROM asi_inferences i
LEFT JOIN onnx_models m ON m.id = i.onnx_model_id
GROUP BY 1, 2, 3
""",
    # REFRESH ... CONCURRENTLY needs a unique index on plain columns covering every row.
    "CREATE UNIQUE INDEX uq_asi_performance_summary_hour_model ON asi_performance_summary (hour, onnx_model_id)",
    """
CREATE OR REPLACE FUNCTION refresh_asi_performance_summary() RETURNS void
LANGUAGE sql AS $$ REFRESH MATERIALIZED VIEW CONCURRENTLY asi_performance_summary $$
""",
]
