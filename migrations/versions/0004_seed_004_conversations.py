"""Issue 6 / seed 004: conversations, messages, message embeddings, quality time series, contradictions, loops, citations.

Integer keys like the rest of the schema; severity / intervention status / roles are strings with CHECK
constraints (not PostgreSQL ENUMs); 384-d embeddings (our all-MiniLM-L6-v2) with an HNSW cosine index;
every score column 0..100 by CHECK; deleting a conversation (or a message) cascades to everything
derived from it. See mmos_core/models/conversations.py for the columns' meaning.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 15:45:00
"""

from __future__ import annotations

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('topic', sa.Text(), nullable=True),
    sa.Column('source_format', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='idle', nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('current_health_score', sa.Float(), nullable=True),
    sa.Column('has_contradictions', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('has_loops', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('requires_intervention', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source_format IN ('openai', 'who_and_when', 'pasted', 'debate')", name='ck_conversations_source_format'),
    sa.CheckConstraint("status IN ('idle', 'queued', 'analyzing', 'running', 'completed', 'failed')", name='ck_conversations_status'),
    sa.CheckConstraint('current_health_score IS NULL OR (current_health_score >= 0 AND current_health_score <= 100)', name='ck_conversations_current_health_score'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_conversations_user', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_conversations_intervention', 'conversations', ['requires_intervention'], unique=False, postgresql_where='requires_intervention')
    op.create_index('idx_conversations_user_created', 'conversations', ['user_id', 'created_at'], unique=False)
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('agent_name', sa.String(length=200), nullable=True),
    sa.Column('agent_model', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('sequence_number', sa.Integer(), nullable=False),
    sa.Column('round_number', sa.Integer(), nullable=True),
    sa.Column('turn_index', sa.Integer(), nullable=True),
    sa.Column('health_score', sa.Float(), nullable=True),
    sa.Column('coherence_score', sa.Float(), nullable=True),
    sa.Column('relevance_score', sa.Float(), nullable=True),
    sa.Column('has_citations', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('citations_verified', sa.Boolean(), nullable=True),
    sa.Column('tokens_used', sa.Integer(), nullable=True),
    sa.Column('response_time_ms', sa.Integer(), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('analyzed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name='ck_messages_role'),
    sa.CheckConstraint('coherence_score IS NULL OR (coherence_score >= 0 AND coherence_score <= 100)', name='ck_messages_coherence_score'),
    sa.CheckConstraint('health_score IS NULL OR (health_score >= 0 AND health_score <= 100)', name='ck_messages_health_score'),
    sa.CheckConstraint('relevance_score IS NULL OR (relevance_score >= 0 AND relevance_score <= 100)', name='ck_messages_relevance_score'),
    sa.CheckConstraint('response_time_ms IS NULL OR response_time_ms >= 0', name='ck_messages_response_time'),
    sa.CheckConstraint('sequence_number >= 0', name='ck_messages_sequence'),
    sa.CheckConstraint('tokens_used IS NULL OR tokens_used >= 0', name='ck_messages_tokens'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name='fk_messages_conversation', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'sequence_number', name='uq_messages_conversation_sequence')
    )
    op.create_index('idx_messages_pending', 'messages', ['conversation_id', 'sequence_number'], unique=False, postgresql_where='analyzed_at IS NULL')
    op.create_table('contradictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('message_1_id', sa.Integer(), nullable=False),
    sa.Column('message_2_id', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('semantic_similarity', sa.Float(), nullable=True),
    sa.Column('same_agent', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('statement_1', sa.Text(), nullable=False),
    sa.Column('statement_2', sa.Text(), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('resolution_suggestion', sa.Text(), nullable=True),
    sa.Column('acknowledged', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detection_metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')", name='ck_contradictions_severity'),
    sa.CheckConstraint('confidence >= 0 AND confidence <= 1', name='ck_contradictions_confidence'),
    sa.CheckConstraint('message_1_id <> message_2_id', name='ck_contradictions_distinct'),
    sa.CheckConstraint('semantic_similarity IS NULL OR (semantic_similarity >= -1 AND semantic_similarity <= 1)', name='ck_contradictions_similarity'),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name='fk_contradictions_acknowledged_by', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name='fk_contradictions_conversation', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_1_id'], ['messages.id'], name='fk_contradictions_message_1', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_2_id'], ['messages.id'], name='fk_contradictions_message_2', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name='fk_contradictions_resolved_by', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_1_id', 'message_2_id', name='uq_contradictions_messages')
    )
    op.create_index('idx_contradictions_message_2', 'contradictions', ['message_2_id'], unique=False)
    op.create_index('idx_contradictions_resolved', 'contradictions', ['conversation_id', 'resolved', 'detected_at'], unique=False)
    op.create_table('conversation_loops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('pattern_hash', sa.String(length=64), nullable=False),
    sa.Column('pattern_description', sa.Text(), nullable=True),
    sa.Column('loop_size', sa.Integer(), nullable=False),
    sa.Column('repetition_count', sa.Integer(), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=True),
    sa.Column('first_occurrence_message_id', sa.Integer(), nullable=False),
    sa.Column('last_occurrence_message_id', sa.Integer(), nullable=False),
    sa.Column('intervention_status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('intervention_message', sa.Text(), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('detection_metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("intervention_status IN ('pending', 'acknowledged', 'resolved', 'dismissed')", name='ck_conversation_loops_status'),
    sa.CheckConstraint('loop_size >= 1', name='ck_conversation_loops_size'),
    sa.CheckConstraint('repetition_count >= 2', name='ck_conversation_loops_repetitions'),
    sa.CheckConstraint('similarity IS NULL OR (similarity >= 0 AND similarity <= 1)', name='ck_conversation_loops_similarity'),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name='fk_conversation_loops_acknowledged_by', ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name='fk_conversation_loops_conversation', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['first_occurrence_message_id'], ['messages.id'], name='fk_conversation_loops_first_message', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['last_occurrence_message_id'], ['messages.id'], name='fk_conversation_loops_last_message', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name='fk_conversation_loops_resolved_by', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'pattern_hash', name='uq_conversation_loops_pattern')
    )
    op.create_index('idx_loops_intervention', 'conversation_loops', ['conversation_id', 'intervention_status'], unique=False)
    op.create_index('idx_loops_last_message', 'conversation_loops', ['last_occurrence_message_id'], unique=False)
    op.create_table('conversation_quality',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('health_score', sa.Float(), nullable=False),
    sa.Column('coherence_score', sa.Float(), nullable=False),
    sa.Column('contradiction_score', sa.Float(), nullable=False),
    sa.Column('loop_score', sa.Float(), nullable=False),
    sa.Column('citation_score', sa.Float(), nullable=False),
    sa.Column('message_count', sa.Integer(), nullable=False),
    sa.Column('contradiction_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('loop_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requires_intervention', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('analysis_metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('citation_score IS NULL OR (citation_score >= 0 AND citation_score <= 100)', name='ck_conversation_quality_citation_score'),
    sa.CheckConstraint('coherence_score IS NULL OR (coherence_score >= 0 AND coherence_score <= 100)', name='ck_conversation_quality_coherence_score'),
    sa.CheckConstraint('contradiction_score IS NULL OR (contradiction_score >= 0 AND contradiction_score <= 100)', name='ck_conversation_quality_contradiction_score'),
    sa.CheckConstraint('health_score IS NULL OR (health_score >= 0 AND health_score <= 100)', name='ck_conversation_quality_health_score'),
    sa.CheckConstraint('loop_score IS NULL OR (loop_score >= 0 AND loop_score <= 100)', name='ck_conversation_quality_loop_score'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name='fk_conversation_quality_conversation', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name='fk_conversation_quality_message', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', name='uq_conversation_quality_message')
    )
    op.create_index('idx_quality_conversation_created', 'conversation_quality', ['conversation_id', 'created_at'], unique=False)
    op.create_table('message_citations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('citation_text', sa.Text(), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('source_title', sa.Text(), nullable=True),
    sa.Column('source_type', sa.String(length=16), nullable=False),
    sa.Column('start_position', sa.Integer(), nullable=False),
    sa.Column('end_position', sa.Integer(), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=True),
    sa.Column('verification_method', sa.String(length=32), nullable=False),
    sa.Column('verification_confidence', sa.Float(), nullable=False),
    sa.Column('matched_label', sa.Text(), nullable=True),
    sa.Column('source_quality_score', sa.Float(), nullable=True),
    sa.Column('relevance_score', sa.Float(), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("source_type IN ('url', 'doi', 'quote', 'reference')", name='ck_message_citations_type'),
    sa.CheckConstraint('relevance_score IS NULL OR (relevance_score >= 0 AND relevance_score <= 100)', name='ck_message_citations_relevance_score'),
    sa.CheckConstraint('source_quality_score IS NULL OR (source_quality_score >= 0 AND source_quality_score <= 100)', name='ck_message_citations_source_quality_score'),
    sa.CheckConstraint('start_position >= 0 AND end_position >= start_position', name='ck_message_citations_span'),
    sa.CheckConstraint('verification_confidence >= 0 AND verification_confidence <= 1', name='ck_message_citations_confidence'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name='fk_message_citations_message', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_citations_message', 'message_citations', ['message_id'], unique=False)
    op.create_index('idx_citations_verified', 'message_citations', ['verified'], unique=False)
    op.create_table('message_embeddings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('sequence_number', sa.Integer(), nullable=False),
    sa.Column('embedding', pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=False),
    sa.Column('embedding_model', sa.String(length=200), nullable=False),
    sa.Column('embedding_version', sa.String(length=64), nullable=False),
    sa.Column('embedded_text', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name='fk_message_embeddings_conversation', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name='fk_message_embeddings_message', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'embedding_model', name='uq_message_embeddings_message_model')
    )
    op.create_index('idx_embeddings_conversation_sequence', 'message_embeddings', ['conversation_id', 'sequence_number'], unique=False)
    op.create_index('idx_embeddings_vector_hnsw', 'message_embeddings', ['embedding'], unique=False, postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_cosine_ops'})


def downgrade() -> None:
    op.drop_index('idx_embeddings_vector_hnsw', table_name='message_embeddings', postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_cosine_ops'})
    op.drop_index('idx_embeddings_conversation_sequence', table_name='message_embeddings')
    op.drop_table('message_embeddings')
    op.drop_index('idx_citations_verified', table_name='message_citations')
    op.drop_index('idx_citations_message', table_name='message_citations')
    op.drop_table('message_citations')
    op.drop_index('idx_quality_conversation_created', table_name='conversation_quality')
    op.drop_table('conversation_quality')
    op.drop_index('idx_loops_last_message', table_name='conversation_loops')
    op.drop_index('idx_loops_intervention', table_name='conversation_loops')
    op.drop_table('conversation_loops')
    op.drop_index('idx_contradictions_resolved', table_name='contradictions')
    op.drop_index('idx_contradictions_message_2', table_name='contradictions')
    op.drop_table('contradictions')
    op.drop_index('idx_messages_pending', table_name='messages', postgresql_where='analyzed_at IS NULL')
    op.drop_table('messages')
    op.drop_index('idx_conversations_user_created', table_name='conversations')
    op.drop_index('idx_conversations_intervention', table_name='conversations', postgresql_where='requires_intervention')
    op.drop_table('conversations')
