"""Extraction work: batches (one source × one model), the source link, each LLM call, the queue rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.core.domain import BatchStatus, QueueStatus, SourceProcessingStatus
from mmos_core.models.base import Base, now


class ProcessingBatch(Base):
    """One run of one model over one or more sources (the core design `processing_batches`)."""

    __tablename__ = "processing_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_code: Mapped[str] = mapped_column(String(64), unique=True)
    model_provider: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    temperature: Mapped[float] = mapped_column(Numeric(3, 2), default=0)
    processor_name: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(32))
    batch_status: Mapped[str] = mapped_column(String(16), default=BatchStatus.pending.value)
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
    # Who chose the model (the catalog design vocabulary): a person ('user_override'), the optimizer ('auto'),
    # or the fallback after a provider failure ('fallback'); confidence of an automatic choice, 0-1.
    selected_by: Mapped[str] = mapped_column(String(16), default="user_override", server_default="user_override")
    selection_confidence: Mapped[float | None] = mapped_column(Numeric(4, 3))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
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
    """Link between a source and a batch that processed it (the core design `source_processing`)."""

    __tablename__ = "source_processing"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    processing_status: Mapped[str] = mapped_column(String(16), default=SourceProcessingStatus.pending.value)
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("status IN ('ok','malformed','provider_error')", name="ck_calls_status"),
        Index("ix_extraction_calls_batch_chunk", "batch_id", "chunk_id"),
    )


class ProcessingQueue(Base):
    """Mirror of each RQ extraction job with the core design's priority, attempts and retry schedule."""

    __tablename__ = "processing_queue"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    processing_type: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(SmallInteger, default=5)
    effective_priority: Mapped[float] = mapped_column(Numeric(5, 2))
    queue_status: Mapped[str] = mapped_column(String(16), default=QueueStatus.waiting.value)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger, default=3)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    rq_job_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    rq_queue: Mapped[str] = mapped_column(String(16), default="default")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=now(), onupdate=func.now()
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
