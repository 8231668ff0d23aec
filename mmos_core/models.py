"""Typed SQLAlchemy 2.0 models of seeds 000/001 (sources, batches, fragments, queue, performance).

The schema itself is created only by Alembic (`migrations/versions/`); these classes describe it
for queries. Column names follow seed 000 so its SQL runs as written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    REAL,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

EMBEDDING_DIM = 384


class Base(DeclarativeBase):
    """Declarative base of every workbench table."""

    type_annotation_map = {dict[str, Any]: JSONB}


def _now() -> Any:
    return func.now()


class Source(Base):
    """A source document (interview, podcast, book …) with its full normalised text."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    person: Mapped[str | None] = mapped_column(String(200))
    source_type: Mapped[str] = mapped_column(String(32))
    quality: Mapped[str] = mapped_column(String(16))
    extraction_priority: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    source_date: Mapped[dt.date | None]
    content_format: Mapped[str] = mapped_column(String(16))  # text, markdown, srt, vtt, pasted
    original_filename: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    char_count: Mapped[int] = mapped_column(Integer)
    word_count: Mapped[int] = mapped_column(Integer)
    # Transcript cues: list of [char_start, char_end, "HH:MM:SS.mmm", "HH:MM:SS.mmm", speaker|null].
    cues: Mapped[list[Any] | None] = mapped_column(JSONB)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    chunks: Mapped[list[SourceChunk]] = relationship(back_populates="source", order_by="SourceChunk.chunk_index")

    __table_args__ = (
        CheckConstraint(
            "source_type IN ('interview','podcast','speech','letter','book','article','social_media')",
            name="ck_sources_type",
        ),
        CheckConstraint("quality IN ('primary','secondary','tertiary')", name="ck_sources_quality"),
        CheckConstraint(
            "extraction_priority IN ('CRITICAL','VERY_HIGH','HIGH','MEDIUM','LOW')", name="ck_sources_priority"
        ),
    )


class SourceChunk(Base):
    """A span of a source's text sent to the model in one call; text is `content[char_start:char_end]`."""

    __tablename__ = "source_chunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    chunk_index: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    location_label: Mapped[str] = mapped_column(String(200))

    source: Mapped[Source] = relationship(back_populates="chunks")

    __table_args__ = (UniqueConstraint("source_id", "chunk_index", name="uq_source_chunks_index"),)


class ProcessingBatch(Base):
    """One run of one model over one or more sources (seed 000 `processing_batches`)."""

    __tablename__ = "processing_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_code: Mapped[str] = mapped_column(String(64), unique=True)
    model_provider: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    temperature: Mapped[float] = mapped_column(Numeric(3, 2), default=0)
    processor_name: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(32))
    batch_status: Mapped[str] = mapped_column(String(16), default="pending")
    total_sources: Mapped[int] = mapped_column(Integer, default=1)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    total_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=0)
    # Prices used for cost_usd, frozen when the batch was created: {"input_cost_per_token", ...}.
    price_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    malformed_responses: Mapped[int] = mapped_column(Integer, default=0)
    # Regenerate: a batch re-running some chunks of an earlier batch (null = every chunk of the source).
    parent_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("processing_batches.id", ondelete="SET NULL", name="fk_batches_parent")
    )
    chunk_scope: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    # Who chose the model (seed 002 vocabulary): a person ('user_override'), the optimizer ('auto'),
    # or the fallback after a provider failure ('fallback'); confidence of an automatic choice, 0-1.
    selected_by: Mapped[str] = mapped_column(String(16), default="user_override", server_default="user_override")
    selection_confidence: Mapped[float | None] = mapped_column(Numeric(4, 3))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    processing_duration_seconds: Mapped[float | None] = mapped_column(Numeric(12, 3))
    processing_duration_minutes: Mapped[float | None] = mapped_column(
        Numeric(12, 3), Computed("processing_duration_seconds / 60.0", persisted=True)
    )

    __table_args__ = (
        CheckConstraint(
            "batch_status IN ('pending','processing','completed','failed')", name="ck_batches_status"
        ),
        CheckConstraint("selected_by IN ('auto','user_override','fallback')", name="ck_batches_selected_by"),
    )


class SourceProcessing(Base):
    """Link between a source and a batch that processed it (seed 000 `source_processing`)."""

    __tablename__ = "source_processing"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    processing_status: Mapped[str] = mapped_column(String(16), default="pending")
    fragments_extracted: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("source_id", "batch_id", name="uq_source_processing"),)


class ExtractionCall(Base):
    """One LLM call on one chunk: usage, cost, outcome and the raw answer (staged until the batch completes).

    Fragments are written only when the whole batch completes; until then the parsed answers live
    here, so a job killed half-way leaves no fragments and its retry resumes from the last call.
    """

    __tablename__ = "extraction_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    chunk_id: Mapped[int] = mapped_column(ForeignKey("source_chunks.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(SmallInteger, default=1)
    status: Mapped[str] = mapped_column(String(16))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    raw_response: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("status IN ('ok','malformed','provider_error')", name="ck_calls_status"),
        Index("ix_extraction_calls_batch_chunk", "batch_id", "chunk_id"),
    )


class Fragment(Base):
    """A quote, paraphrase or inference about the person, traced to its source, chunk and batch."""

    __tablename__ = "fragments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Filled by the trg_fragment_code trigger via get_next_fragment_code(category): e.g. COG-000123.
    fragment_code: Mapped[str] = mapped_column(String(16), unique=True, server_default=FetchedValue())
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    chunk_id: Mapped[int | None] = mapped_column(ForeignKey("source_chunks.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(32))
    fragment_type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    location_in_source: Mapped[str | None] = mapped_column(String(200))
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    # 0-100 similarity of the located span to the content (100 = verbatim); null when not found.
    location_score: Mapped[float | None] = mapped_column(Numeric(5, 2))
    context: Mapped[str | None] = mapped_column(Text)
    insight: Mapped[str | None] = mapped_column(Text)
    relevance: Mapped[int] = mapped_column(SmallInteger)
    confidence: Mapped[float] = mapped_column(Numeric(4, 3))
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    verified_by: Mapped[str | None] = mapped_column(String(200))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rejected: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    rejected_by: Mapped[str | None] = mapped_column(String(200))
    rejected_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('english', coalesce(content,'') || ' ' || coalesce(insight,'') || ' ' || coalesce(context,''))",
            persisted=True,
        ),
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint(
            "category IN ('Biographical','Cognitive','Communicative','Behavioral','Values and Beliefs',"
            "'Social','Emotional','Meta-cognitive')",
            name="ck_fragments_category",
        ),
        CheckConstraint(
            "fragment_type IN ('direct_quote','paraphrase','inference')", name="ck_fragments_type"
        ),
        CheckConstraint("relevance BETWEEN 1 AND 10", name="ck_fragments_relevance"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="ck_fragments_confidence"),
        Index("idx_fragment_search", "search_vector", postgresql_using="gin"),
        Index(
            "idx_fragment_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("ix_fragments_source_batch", "source_id", "batch_id"),
        Index("ix_fragments_batch", "batch_id"),
        Index("ix_fragments_category", "category"),
        Index("ix_fragments_review", "verified", "rejected"),
    )


class Tag(Base):
    """A reviewer-defined label for fragments."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class FragmentTag(Base):
    """Tag ↔ fragment link."""

    __tablename__ = "fragment_tags"

    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    tagged_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class FragmentRelationship(Base):
    """Directed relation between two fragments (supports, contradicts, elaborates, duplicates)."""

    __tablename__ = "fragment_relationships"

    id: Mapped[int] = mapped_column(primary_key=True)
    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"))
    related_fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"))
    relationship_type: Mapped[str] = mapped_column(String(16))
    strength: Mapped[float | None] = mapped_column(Numeric(4, 3))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint(
            "relationship_type IN ('supports','contradicts','elaborates','duplicates')",
            name="ck_relationships_type",
        ),
        CheckConstraint("fragment_id <> related_fragment_id", name="ck_relationships_distinct"),
        UniqueConstraint("fragment_id", "related_fragment_id", "relationship_type", name="uq_relationship"),
    )


class ModelPerformance(Base):
    """Per-batch, per-source performance row written when a batch completes (seed 000 section 4)."""

    __tablename__ = "model_performance"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_provider: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(32))
    fragments_extracted: Mapped[int] = mapped_column(Integer)
    # Seed 000's self-reported quality: AVG(confidence × 10). Kept for the seed's queries; issue 4
    # replaces it with measured quality.
    extraction_quality_avg: Mapped[float | None] = mapped_column(Numeric(5, 2))
    relevance_score_avg: Mapped[float | None] = mapped_column(Numeric(5, 2))
    confidence_avg: Mapped[float | None] = mapped_column(Numeric(5, 3))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    cost_per_fragment: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    tokens_per_fragment: Mapped[float | None] = mapped_column(Numeric(12, 2))
    time_per_fragment_seconds: Mapped[float | None] = mapped_column(Numeric(12, 3))
    located_share: Mapped[float | None] = mapped_column(Numeric(5, 4))
    malformed_share: Mapped[float | None] = mapped_column(Numeric(5, 4))
    # Measured quality (issue 4, migration 0006; formulas in mmos_core/quality.py and docs/quality.md).
    checked_fragments: Mapped[int | None] = mapped_column(Integer)
    grounded_fragments: Mapped[int | None] = mapped_column(Integer)
    grounding_rate: Mapped[float | None] = mapped_column(Numeric(5, 4))
    reference_kind: Mapped[str | None] = mapped_column(String(16))  # 'verified' | 'baseline_batch'
    reference_size: Mapped[int | None] = mapped_column(Integer)
    agreement_precision: Mapped[float | None] = mapped_column(Numeric(5, 4))
    agreement_recall: Mapped[float | None] = mapped_column(Numeric(5, 4))
    agreement_f1: Mapped[float | None] = mapped_column(Numeric(5, 4))
    human_judgements: Mapped[int | None] = mapped_column(Integer)
    human_score: Mapped[float | None] = mapped_column(Numeric(5, 4))
    quality_score: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_ci_low: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_ci_high: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_rule: Mapped[str | None] = mapped_column(String(16))
    baseline_model: Mapped[str | None] = mapped_column(String(200))
    # quality_score − the baseline model's quality_score on the same source (points on 0-10)
    quality_delta: Mapped[float | None] = mapped_column(Numeric(6, 2))
    # cost_per_fragment − the baseline model's cost_per_fragment on the same source (USD per fragment)
    cost_delta: Mapped[float | None] = mapped_column(Numeric(12, 6))
    evaluation_date: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ProcessingQueue(Base):
    """Mirror of each RQ extraction job with seed 000's priority, attempts and retry schedule."""

    __tablename__ = "processing_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    processing_type: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(SmallInteger, default=5)
    effective_priority: Mapped[float] = mapped_column(Numeric(5, 2))
    queue_status: Mapped[str] = mapped_column(String(16), default="waiting")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger, default=3)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    rq_job_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    rq_queue: Mapped[str] = mapped_column(String(16), default="default")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(
            "queue_status IN ('waiting','processing','completed','failed','cancelled')", name="ck_queue_status"
        ),
        Index(
            "ix_queue_waiting",
            "effective_priority",
            "created_at",
            postgresql_where="queue_status = 'waiting'",
        ),
    )


# --- Issue 3: users, review history, feedback, budgets (migration 0002) -------------------------


class User(Base):
    """A person signing in: local account (argon2 hash) or OIDC identity; one role each."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # argon2id PHC string; never shown on a page or logged. Null for OIDC-only accounts.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("role IN ('analyst','reviewer','manager','admin')", name="ck_users_role"),
    )


class FragmentEdit(Base):
    """One changed field of a fragment: who, when, old and new value (the edit history)."""

    __tablename__ = "fragment_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    edited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class UserFeedback(Base):
    """Seed 002 `ai_user_feedback`: like / dislike / regenerate / skip and 1-5 stars on a fragment or a batch."""

    __tablename__ = "ai_user_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    fragment_id: Mapped[int | None] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    chunk_id: Mapped[int | None] = mapped_column(ForeignKey("source_chunks.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    category_key: Mapped[str] = mapped_column(String(100), default="fragment_extraction")
    feedback_type: Mapped[str] = mapped_column(String(20))
    quality_rating: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    prompt_summary: Mapped[str | None] = mapped_column(String(200))
    output_summary: Mapped[str | None] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(100))
    regenerated_batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), index=True)

    __table_args__ = (
        CheckConstraint(
            "feedback_type IN ('like','dislike','regenerate','skip','rating')", name="ck_feedback_type"
        ),
        CheckConstraint("quality_rating IS NULL OR quality_rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        CheckConstraint("fragment_id IS NOT NULL OR batch_id IS NOT NULL", name="ck_feedback_target"),
    )


class Budget(Base):
    """Spending limits set by managers: daily cap (USD) and per-fragment limit (USD)."""

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    daily_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    per_fragment_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())


# --- Issue 5: seed 003 (ONNX model registry, inference audit trail; migration 0003) -------------
#
# Seed 003 uses UUID keys; this schema keeps integer keys like every other table (nothing here is
# created outside PostgreSQL, so a UUID buys nothing): `bigint` for the high-volume tables
# (asi_inferences, beam_tensors), `integer` for the rest. Column names follow the seed.
#
# Seed conventions with no measurable meaning (9-position beam `digits`, `flux_position`, sacred
# positions 3/6/9, `vortex_intervention`, vortex cycles, the 15 % `confidence_boost`) are stored as
# the seed states them, filled by a deterministic documented rule, and never feed back into a
# measured value (`confidence`, `hallucination_detected`, quality scores).

SACRED_POSITIONS = (3, 6, 9)


class OnnxModel(Base):
    """Seed 003 `onnx_models`: a registered ONNX embedding model (fp32 or int8) and its load status.

    At most one row has `is_default` (partial unique index `uq_onnx_models_single_default`).
    `status`: ready (files present / loaded), loading, error (`error_message` says why), disabled.
    """

    __tablename__ = "onnx_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    model_path: Mapped[str] = mapped_column(Text)
    tokenizer_path: Mapped[str] = mapped_column(Text)
    embedding_dim: Mapped[int] = mapped_column(Integer, default=EMBEDDING_DIM, server_default=str(EMBEDDING_DIM))
    status: Mapped[str] = mapped_column(String(16), default="disabled", server_default="disabled")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    quantization: Mapped[str] = mapped_column(String(8), default="fp32", server_default="fp32")
    # SHA-256 of model_path when registered (null when the file was missing).
    sha256: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # e.g. {"load_time_ms": 412.3, "loads": 3, "onnxruntime": "1.22.0"}
    performance_metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("name", name="uq_onnx_models_name"),
        CheckConstraint("status IN ('ready','loading','error','disabled')", name="ck_onnx_models_status"),
        CheckConstraint("quantization IN ('fp32','int8')", name="ck_onnx_models_quantization"),
        CheckConstraint("embedding_dim > 0", name="ck_onnx_models_dim"),
        Index("uq_onnx_models_single_default", "is_default", unique=True, postgresql_where="is_default"),
    )


class BeamTensor(Base):
    """Seed 003 `beam_tensors`: the seed's 9-position tensor with ELP channels and flux position (convention)."""

    __tablename__ = "beam_tensors"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digits: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    confidence: Mapped[float] = mapped_column(REAL)
    # {"ethos": x, "logos": y, "pathos": z}: similarity to the documented prototype of each appeal.
    elp_channels: Mapped[dict[str, Any]] = mapped_column(JSONB)
    flux_position: Mapped[int] = mapped_column(SmallInteger)
    is_sacred: Mapped[bool] = mapped_column(Boolean, Computed("flux_position IN (3, 6, 9)", persisted=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("cardinality(digits) = 9", name="ck_beam_tensors_digits"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_beam_tensors_confidence"),
        CheckConstraint("flux_position BETWEEN 0 AND 9", name="ck_beam_tensors_flux"),
        CheckConstraint(
            "elp_channels ?& array['ethos','logos','pathos']", name="ck_beam_tensors_elp_keys"
        ),
        Index("ix_beam_tensors_sacred", "is_sacred", postgresql_where="is_sacred"),
        Index("ix_beam_tensors_flux", "flux_position"),
    )


class AsiInference(Base):
    """Seed 003 `asi_inferences`: audit trail of every analysis inference (grounding, message, search).

    Measured: `confidence` (0-1 support/grounding score), `hallucination_detected` (ungrounded),
    `archetype` (nearest documented prototype), `processing_time_ms` (wall time, sub-ms resolution).
    Seed convention: `flux_position`, `is_sacred` (generated: position 3, 6 or 9), `vortex_intervention`.
    `lake_worthy`: seed 003's lake entry rule (confidence >= 0.6, no hallucination, sacred or > 0.8).
    """

    __tablename__ = "asi_inferences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    input_text: Mapped[str] = mapped_column(Text)
    beam_tensor_id: Mapped[int | None] = mapped_column(
        ForeignKey("beam_tensors.id", ondelete="SET NULL", name="fk_asi_inferences_beam_tensor")
    )
    onnx_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("onnx_models.id", ondelete="SET NULL", name="fk_asi_inferences_model")
    )
    # The fragment a `fragment_grounding` inference scored (null for messages and search queries).
    fragment_id: Mapped[int | None] = mapped_column(
        ForeignKey("fragments.id", ondelete="SET NULL", name="fk_asi_inferences_fragment")
    )
    semantic_embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    flux_position: Mapped[int] = mapped_column(SmallInteger)
    is_sacred: Mapped[bool] = mapped_column(Boolean, Computed("flux_position IN (3, 6, 9)", persisted=True))
    archetype: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(REAL)
    hallucination_detected: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    vortex_intervention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    lake_worthy: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    processing_time_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint(
            "kind IN ('fragment_grounding','message_analysis','search_query')", name="ck_asi_inferences_kind"
        ),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_asi_inferences_confidence"),
        CheckConstraint("flux_position BETWEEN 0 AND 9", name="ck_asi_inferences_flux"),
        CheckConstraint("processing_time_ms >= 0", name="ck_asi_inferences_time"),
        Index("ix_asi_inferences_created", "created_at"),
        Index("ix_asi_inferences_model_created", "onnx_model_id", "created_at"),
        Index("ix_asi_inferences_fragment", "fragment_id"),
    )


class SacredIntervention(Base):
    """Seed 003 `sacred_interventions` (convention): the seed's 3-6-9 'boost', recorded, never applied.

    `signal_before` is the measured confidence; `signal_after` = min(1, before + boost) as the seed
    states; neither changes `asi_inferences.confidence`.
    """

    __tablename__ = "sacred_interventions"

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[int] = mapped_column(
        ForeignKey("asi_inferences.id", ondelete="CASCADE", name="fk_sacred_interventions_inference"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    signal_before: Mapped[float] = mapped_column(REAL)
    signal_after: Mapped[float] = mapped_column(REAL)
    confidence_boost: Mapped[float] = mapped_column(REAL)
    intervention_type: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("position IN (3, 6, 9)", name="ck_sacred_interventions_position"),
        CheckConstraint(
            "intervention_type IN ('magnification','reset','stabilization')", name="ck_sacred_interventions_type"
        ),
    )


class ContextMetric(Base):
    """Seed 003 `context_metrics`: tokens seen vs the context window (measured), sacred checkpoints and
    vortex cycles (convention)."""

    __tablename__ = "context_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[int] = mapped_column(
        ForeignKey("asi_inferences.id", ondelete="CASCADE", name="fk_context_metrics_inference"), index=True
    )
    token_count: Mapped[int] = mapped_column(Integer)
    context_window_size: Mapped[int] = mapped_column(Integer, default=4096, server_default="4096")
    # Share of the input's tokens inside the window: min(token_count, window) / token_count (1 when empty).
    retention_rate: Mapped[float] = mapped_column(REAL)
    sacred_checkpoints: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=list, server_default="{}"
    )
    vortex_cycle_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("token_count >= 0", name="ck_context_metrics_tokens"),
        CheckConstraint("context_window_size > 0", name="ck_context_metrics_window"),
        CheckConstraint("retention_rate >= 0 AND retention_rate <= 1", name="ck_context_metrics_retention"),
        CheckConstraint("sacred_checkpoints <@ ARRAY[3, 6, 9]", name="ck_context_metrics_checkpoints"),
        CheckConstraint("vortex_cycle_count >= 0", name="ck_context_metrics_cycles"),
    )


class TrainingSample(Base):
    """Seed 003 `training_samples`: a labelled example, e.g. a reviewer's category correction.

    `expected_category` is the reviewer's label, `predicted_category` the zero-shot prediction at the
    time, so accuracy = share of rows where they agree. The seed's position/ELP columns stay
    (nullable: a category correction has no expected flux position).
    """

    __tablename__ = "training_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    input_text: Mapped[str] = mapped_column(Text)
    label_kind: Mapped[str] = mapped_column(String(16), default="category", server_default="category")
    expected_category: Mapped[str | None] = mapped_column(String(64))
    predicted_category: Mapped[str | None] = mapped_column(String(64))
    fragment_id: Mapped[int | None] = mapped_column(
        ForeignKey("fragments.id", ondelete="SET NULL", name="fk_training_samples_fragment"), index=True
    )
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("onnx_models.id", ondelete="SET NULL", name="fk_training_samples_model")
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_training_samples_user")
    )
    expected_position: Mapped[int | None] = mapped_column(SmallInteger)
    expected_elp: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    actual_position: Mapped[int | None] = mapped_column(SmallInteger)
    actual_elp: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    loss: Mapped[float | None] = mapped_column(REAL)
    epoch: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("label_kind IN ('category','archetype')", name="ck_training_samples_kind"),
        CheckConstraint("expected_position BETWEEN 0 AND 9", name="ck_training_samples_expected_pos"),
        CheckConstraint("actual_position BETWEEN 0 AND 9", name="ck_training_samples_actual_pos"),
    )


Index("ix_beam_tensors_confidence", BeamTensor.confidence.desc())
# Seed 003 "Query by signal: indexed DESC" (its idx_asi_inferences_signal_created).
Index("idx_asi_inferences_signal_created", AsiInference.confidence.desc(), AsiInference.created_at.desc())

# `asi_performance_summary` is a MATERIALIZED VIEW (migration 0003), not a table: read it with SQL,
# refresh it with `services.model_registry.refresh_performance_summary`.


# --- Issue 4: budgets that hold, optimizer runs (migration 0006) ---------------------------------


class BudgetReservation(Base):
    """Worst-case cost of one LLM call, held against the day's budget before the call is made.

    `held` counts against the daily cap until the call's cost is recorded (`settled`, in the same
    transaction as its `extraction_calls` row) or the call failed (`released`). A held row older than
    `settings.budget_reservation_ttl_s` (its worker died) stops counting.
    """

    __tablename__ = "budget_reservations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="SET NULL"))
    chunk_id: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(200))
    reserved_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    settled_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    status: Mapped[str] = mapped_column(String(10), default="held")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('held','settled','released')", name="ck_reservations_status"),
        CheckConstraint("reserved_usd >= 0", name="ck_reservations_amount"),
        Index("ix_budget_reservations_day_status", "day", "status"),
    )


class OptimizationRun(Base):
    """One `process_batch` strategy run over one source (seed 001): the models tried in order, the
    sample chunks, each decision with the measured quality behind it, and the batches it queued."""

    __tablename__ = "optimization_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    models: Mapped[list[str]] = mapped_column(ARRAY(String(200)))
    quality_threshold: Mapped[float] = mapped_column(Numeric(4, 2))
    budget_per_fragment: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    sample_chunk_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    step: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="sampling")
    chosen_model: Mapped[str | None] = mapped_column(String(200))
    batch_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("strategy IN ('progressive','aggressive','conservative')", name="ck_optruns_strategy"),
        CheckConstraint("status IN ('sampling','full','completed','failed')", name="ck_optruns_status"),
    )
