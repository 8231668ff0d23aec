"""Core schema of seeds 000/001: sources, batches, fragments, tags, relationships, performance, queue.

Also the per-category fragment-code sequences and trigger, and the four views of the seeds.

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 12:56:17.954951
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import pgvector.sqlalchemy
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table('processing_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_code', sa.String(length=64), nullable=False),
    sa.Column('model_provider', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=200), nullable=False),
    sa.Column('temperature', sa.Numeric(precision=3, scale=2), nullable=False),
    sa.Column('processor_name', sa.String(length=200), nullable=True),
    sa.Column('prompt_version', sa.String(length=32), nullable=False),
    sa.Column('batch_status', sa.String(length=16), nullable=False),
    sa.Column('total_sources', sa.Integer(), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=False),
    sa.Column('chunks_done', sa.Integer(), nullable=False),
    sa.Column('total_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('total_output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('estimated_cost_usd', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('price_snapshot', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('malformed_responses', sa.Integer(), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processing_duration_seconds', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('processing_duration_minutes', sa.Numeric(precision=12, scale=3), sa.Computed('processing_duration_seconds / 60.0', persisted=True), nullable=True),
    sa.CheckConstraint("batch_status IN ('pending','processing','completed','failed')", name='ck_batches_status'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_code')
    )
    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_code', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('person', sa.String(length=200), nullable=True),
    sa.Column('source_type', sa.String(length=32), nullable=False),
    sa.Column('quality', sa.String(length=16), nullable=False),
    sa.Column('extraction_priority', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('source_date', sa.Date(), nullable=True),
    sa.Column('content_format', sa.String(length=16), nullable=False),
    sa.Column('original_filename', sa.String(length=500), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('char_count', sa.Integer(), nullable=False),
    sa.Column('word_count', sa.Integer(), nullable=False),
    sa.Column('cues', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("extraction_priority IN ('CRITICAL','VERY_HIGH','HIGH','MEDIUM','LOW')", name='ck_sources_priority'),
    sa.CheckConstraint("quality IN ('primary','secondary','tertiary')", name='ck_sources_quality'),
    sa.CheckConstraint("source_type IN ('interview','podcast','speech','letter','book','article','social_media')", name='ck_sources_type'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_code')
    )
    op.create_index(op.f('ix_sources_content_sha256'), 'sources', ['content_sha256'], unique=False)
    op.create_table('tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('model_performance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_provider', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=200), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('source_type', sa.String(length=32), nullable=False),
    sa.Column('fragments_extracted', sa.Integer(), nullable=False),
    sa.Column('extraction_quality_avg', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('relevance_score_avg', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('confidence_avg', sa.Numeric(precision=5, scale=3), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('cost_per_fragment', sa.Numeric(precision=12, scale=6), nullable=True),
    sa.Column('tokens_per_fragment', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('time_per_fragment_seconds', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('located_share', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('malformed_share', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('baseline_model', sa.String(length=200), nullable=True),
    sa.Column('quality_delta', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('cost_delta', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('evaluation_date', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('processing_queue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('processing_type', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('effective_priority', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('queue_status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), nullable=False),
    sa.Column('max_attempts', sa.SmallInteger(), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assigned_to', sa.String(length=200), nullable=True),
    sa.Column('rq_job_id', sa.String(length=64), nullable=True),
    sa.Column('rq_queue', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("queue_status IN ('waiting','processing','completed','failed','cancelled')", name='ck_queue_status'),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rq_job_id')
    )
    op.create_index('ix_queue_waiting', 'processing_queue', ['effective_priority', 'created_at'], unique=False, postgresql_where="queue_status = 'waiting'")
    op.create_table('source_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('chunk_index', sa.Integer(), nullable=False),
    sa.Column('char_start', sa.Integer(), nullable=False),
    sa.Column('char_end', sa.Integer(), nullable=False),
    sa.Column('location_label', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_id', 'chunk_index', name='uq_source_chunks_index')
    )
    op.create_table('source_processing',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('processing_status', sa.String(length=16), nullable=False),
    sa.Column('fragments_extracted', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_id', 'batch_id', name='uq_source_processing')
    )
    op.create_table('extraction_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('chunk_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('raw_response', sa.Text(), nullable=True),
    sa.Column('parsed', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('ok','malformed','provider_error')", name='ck_calls_status'),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['chunk_id'], ['source_chunks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_extraction_calls_batch_chunk', 'extraction_calls', ['batch_id', 'chunk_id'], unique=False)
    op.create_table('fragments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fragment_code', sa.String(length=16), server_default=sa.FetchedValue(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('chunk_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('fragment_type', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('location_in_source', sa.String(length=200), nullable=True),
    sa.Column('char_start', sa.Integer(), nullable=True),
    sa.Column('char_end', sa.Integer(), nullable=True),
    sa.Column('location_score', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('insight', sa.Text(), nullable=True),
    sa.Column('relevance', sa.SmallInteger(), nullable=False),
    sa.Column('confidence', sa.Numeric(precision=4, scale=3), nullable=False),
    sa.Column('verified', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('verified_by', sa.String(length=200), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejected', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('embedding', pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
    sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("to_tsvector('english', coalesce(content,'') || ' ' || coalesce(insight,'') || ' ' || coalesce(context,''))", persisted=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("category IN ('Biographical','Cognitive','Communicative','Behavioral','Values and Beliefs','Social','Emotional','Meta-cognitive')", name='ck_fragments_category'),
    sa.CheckConstraint("fragment_type IN ('direct_quote','paraphrase','inference')", name='ck_fragments_type'),
    sa.CheckConstraint('confidence BETWEEN 0 AND 1', name='ck_fragments_confidence'),
    sa.CheckConstraint('relevance BETWEEN 1 AND 10', name='ck_fragments_relevance'),
    sa.ForeignKeyConstraint(['batch_id'], ['processing_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['chunk_id'], ['source_chunks.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fragment_code')
    )
    op.create_index('idx_fragment_embedding', 'fragments', ['embedding'], unique=False, postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_cosine_ops'})
    op.create_index('idx_fragment_search', 'fragments', ['search_vector'], unique=False, postgresql_using='gin')
    op.create_index('ix_fragments_batch', 'fragments', ['batch_id'], unique=False)
    op.create_index('ix_fragments_category', 'fragments', ['category'], unique=False)
    op.create_index('ix_fragments_source_batch', 'fragments', ['source_id', 'batch_id'], unique=False)
    op.create_table('fragment_relationships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fragment_id', sa.Integer(), nullable=False),
    sa.Column('related_fragment_id', sa.Integer(), nullable=False),
    sa.Column('relationship_type', sa.String(length=16), nullable=False),
    sa.Column('strength', sa.Numeric(precision=4, scale=3), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("relationship_type IN ('supports','contradicts','elaborates','duplicates')", name='ck_relationships_type'),
    sa.CheckConstraint('fragment_id <> related_fragment_id', name='ck_relationships_distinct'),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['related_fragment_id'], ['fragments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fragment_id', 'related_fragment_id', 'relationship_type', name='uq_relationship')
    )
    op.create_table('fragment_tags',
    sa.Column('fragment_id', sa.Integer(), nullable=False),
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('tagged_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fragment_id', 'tag_id')
    )
    for statement in FRAGMENT_CODE_SQL + VIEWS_SQL:
        op.execute(statement)


def downgrade() -> None:
    for view in ("v_queue_status", "v_fragment_coverage", "v_model_comparison", "v_source_processing_summary"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.execute("DROP TRIGGER IF EXISTS trg_fragment_code ON fragments")
    op.execute("DROP FUNCTION IF EXISTS set_fragment_code()")
    op.execute("DROP FUNCTION IF EXISTS get_next_fragment_code(text)")
    for prefix in CATEGORY_PREFIXES.values():
        op.execute(f"DROP SEQUENCE IF EXISTS fragment_code_seq_{prefix.lower()}")
    op.drop_table('fragment_tags')
    op.drop_table('fragment_relationships')
    op.drop_index('ix_fragments_source_batch', table_name='fragments')
    op.drop_index('ix_fragments_category', table_name='fragments')
    op.drop_index('ix_fragments_batch', table_name='fragments')
    op.drop_index('idx_fragment_search', table_name='fragments', postgresql_using='gin')
    op.drop_index('idx_fragment_embedding', table_name='fragments', postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_cosine_ops'})
    op.drop_table('fragments')
    op.drop_index('ix_extraction_calls_batch_chunk', table_name='extraction_calls')
    op.drop_table('extraction_calls')
    op.drop_table('source_processing')
    op.drop_table('source_chunks')
    op.drop_index('ix_queue_waiting', table_name='processing_queue', postgresql_where="queue_status = 'waiting'")
    op.drop_table('processing_queue')
    op.drop_table('model_performance')
    op.drop_table('tags')
    op.drop_index(op.f('ix_sources_content_sha256'), table_name='sources')
    op.drop_table('sources')
    op.drop_table('processing_batches')


# Frozen copy of mmos_core.core.domain.CATEGORY_CODES: a migration must not change when the code does.
CATEGORY_PREFIXES = {
    "Biographical": "BIO",
    "Cognitive": "COG",
    "Communicative": "COM",
    "Behavioral": "BEH",
    "Values and Beliefs": "VAL",
    "Social": "SOC",
    "Emotional": "EMO",
    "Meta-cognitive": "MET",
}

_CASES = "\n".join(f"        WHEN '{cat}' THEN '{pre}'" for cat, pre in CATEGORY_PREFIXES.items())

FRAGMENT_CODE_SQL = [
    *(f"CREATE SEQUENCE IF NOT EXISTS fragment_code_seq_{p.lower()}" for p in CATEGORY_PREFIXES.values()),
    f"""
CREATE OR REPLACE FUNCTION get_next_fragment_code(cat text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    prefix text;
BEGIN
    prefix := CASE cat
{_CASES}
    END;
    IF prefix IS NULL THEN
        RAISE EXCEPTION 'unknown fragment category: %', cat;
    END IF;
    RETURN prefix || '-' || lpad(nextval('fragment_code_seq_' || lower(prefix))::text, 6, '0');
END $$;
""",
    """
CREATE OR REPLACE FUNCTION set_fragment_code() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.fragment_code IS NULL OR NEW.fragment_code = '' THEN
        NEW.fragment_code := get_next_fragment_code(NEW.category);
    END IF;
    RETURN NEW;
END $$;
""",
    """
CREATE TRIGGER trg_fragment_code BEFORE INSERT ON fragments
FOR EACH ROW EXECUTE FUNCTION set_fragment_code();
""",
]

VIEWS_SQL = [
    # Seed 001: one row per source with its processing history.
    """
CREATE OR REPLACE VIEW v_source_processing_summary AS
SELECT
    s.id AS source_id,
    s.source_code,
    s.title,
    s.source_type,
    s.quality,
    s.extraction_priority,
    COUNT(DISTINCT sp.batch_id) AS batches,
    COUNT(DISTINCT sp.batch_id) FILTER (WHERE pb.batch_status = 'completed') AS batches_completed,
    COUNT(DISTINCT sp.batch_id) FILTER (WHERE pb.batch_status = 'failed') AS batches_failed,
    (SELECT COUNT(*) FROM fragments f WHERE f.source_id = s.id) AS fragments,
    COALESCE(SUM(pb.estimated_cost_usd), 0) AS total_cost_usd,
    MAX(pb.completed_at) AS last_processed_at
FROM sources s
LEFT JOIN source_processing sp ON sp.source_id = s.id
LEFT JOIN processing_batches pb ON pb.id = sp.batch_id
GROUP BY s.id
""",
    # Seeds 000/001: per model and source type; `quality` is the seeds' AVG(confidence)*10
    # (self-reported; measured quality arrives with issue 4).
    """
CREATE OR REPLACE VIEW v_model_comparison AS
WITH per_batch AS (
    SELECT
        pb.id AS batch_id,
        pb.model_provider,
        pb.model_name,
        s.source_type,
        pb.estimated_cost_usd,
        pb.total_input_tokens,
        pb.total_output_tokens,
        pb.processing_duration_seconds,
        COUNT(f.id) AS fragments,
        AVG(f.relevance) AS avg_relevance,
        AVG(f.confidence) AS avg_confidence
    FROM processing_batches pb
    JOIN source_processing sp ON sp.batch_id = pb.id
    JOIN sources s ON s.id = sp.source_id
    LEFT JOIN fragments f ON f.batch_id = pb.id AND f.source_id = s.id
    WHERE pb.batch_status = 'completed'
    GROUP BY pb.id, s.source_type
)
SELECT
    model_provider,
    model_name,
    source_type,
    COUNT(*) AS batches,
    SUM(fragments) AS fragments,
    ROUND(AVG(avg_relevance), 2) AS avg_relevance,
    ROUND(AVG(avg_confidence), 3) AS avg_confidence,
    ROUND(AVG(avg_confidence) * 10, 2) AS quality,
    SUM(total_input_tokens) AS input_tokens,
    SUM(total_output_tokens) AS output_tokens,
    SUM(estimated_cost_usd) AS cost_usd,
    SUM(estimated_cost_usd) / NULLIF(SUM(fragments), 0) AS cost_per_fragment,
    SUM(processing_duration_seconds) / NULLIF(SUM(fragments), 0) AS seconds_per_fragment
FROM per_batch
GROUP BY model_provider, model_name, source_type
""",
    # Seed 000 coverage analysis with its gap rule (CRITICAL GAP < 10, Needs attention < 25).
    """
CREATE OR REPLACE VIEW v_fragment_coverage AS
WITH expected_categories AS (
    SELECT unnest(ARRAY['Biographical', 'Cognitive', 'Communicative', 'Behavioral',
                        'Values and Beliefs', 'Social', 'Emotional', 'Meta-cognitive']) AS category
), counts AS (
    SELECT
        category,
        COUNT(*) AS fragment_count,
        COUNT(DISTINCT source_id) AS source_diversity,
        AVG(relevance) AS avg_relevance,
        SUM(CASE WHEN verified THEN 1 ELSE 0 END) AS verified_count
    FROM fragments
    WHERE NOT rejected
    GROUP BY category
)
SELECT
    ec.category,
    COALESCE(c.fragment_count, 0) AS fragment_count,
    COALESCE(c.source_diversity, 0) AS source_diversity,
    ROUND(c.avg_relevance, 2) AS avg_relevance,
    COALESCE(c.verified_count, 0) AS verified_count,
    ROUND(COALESCE(c.verified_count, 0)::numeric / NULLIF(c.fragment_count, 0) * 100, 2) AS verification_rate,
    CASE
        WHEN COALESCE(c.fragment_count, 0) < 10 THEN 'CRITICAL GAP'
        WHEN COALESCE(c.fragment_count, 0) < 25 THEN 'Needs attention'
        ELSE 'Adequate'
    END AS status
FROM expected_categories ec
LEFT JOIN counts c ON c.category = ec.category
""",
    # Seed 000 section 5A, as written (waiting rows, effective priority by source quality).
    """
CREATE OR REPLACE VIEW v_queue_status AS
SELECT
    pq.id AS queue_id,
    pq.priority,
    s.source_code,
    s.title,
    s.source_type,
    s.quality,
    pq.processing_type,
    pq.queue_status,
    pq.attempts,
    pq.max_attempts,
    pq.scheduled_for,
    pq.assigned_to,
    pq.created_at,
    CASE
        WHEN s.quality = 'primary' THEN pq.priority * 2
        WHEN s.quality = 'secondary' THEN pq.priority * 1.5
        ELSE pq.priority
    END AS effective_priority
FROM processing_queue pq
JOIN sources s ON pq.source_id = s.id
WHERE pq.queue_status = 'waiting'
ORDER BY effective_priority DESC, pq.created_at ASC
""",
]
