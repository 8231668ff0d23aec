"""The conversations design tables (migration 0004): conversations, messages, embeddings, quality, contradictions, loops, citations.

Differences from the seed, on purpose:

- Integer keys like the rest of the schema (the seed's `user_id` is `users.id`).
- Severity and intervention status are `String` + CHECK constraints, like every other enumerated
  column of the workbench, instead of PostgreSQL ENUM types (which Alembic cannot alter in place).
- Embeddings are 384-d (our all-MiniLM-L6-v2 ONNX embedder), not 1536-d. `message_embeddings` carries
  the message's `conversation_id` and `sequence_number` so the k-nearest query ("earlier messages of
  this conversation, nearest first") filters on the embedding row itself next to the HNSW index.
- `conversation_quality.message_id` says after which message a point was recorded (one point per
  message: re-analysing a message replaces its point), and `requires_intervention` is stored per point.
- Contradictions and loops record who acknowledged / resolved them and when; contradictions keep
  `same_agent`; loops keep the `similarity` of the repetition.
- `message_citations.verified` is nullable: NULL = unverifiable (nothing to check against), never a
  silent True. `matched_label` names the known source or fragment that matched.

Every score column is 0..100 (CHECK); confidences are 0..1.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mmos_core.core.domain import ConversationStatus, InterventionStatus
from mmos_core.models.base import EMBEDDING_DIM, Base

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
#: Loop intervention workflow: proposed by the detector (pending) → acknowledged → resolved, or dismissed.
INTERVENTION_STATUSES = tuple(s.value for s in InterventionStatus)
#: idle: imported, nothing running; queued / analyzing: an analysis job waits or runs; running: a debate
#: is producing messages; completed: the last job finished; failed: it stopped with `error_message`.
CONVERSATION_STATUSES = tuple(s.value for s in ConversationStatus)
SOURCE_FORMATS = ("openai", "who_and_when", "pasted", "debate")
MESSAGE_ROLES = ("user", "assistant", "system", "tool")
CITATION_TYPES = ("url", "doi", "quote", "reference")


def _now() -> Any:
    return func.now()


def _score(column: str, table: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IS NULL OR ({column} >= 0 AND {column} <= 100)", name=f"ck_{table}_{column}")


class Conversation(Base):
    """The conversations design `conversations`: one multi-agent conversation (imported log, pasted text or a local debate).

    `metadata` holds what came with the conversation: for who_and_when logs
    `{"failure_labels": {"mistake_agent", "mistake_step", "mistake_reason", "mistake_type"?, "labels"?},
    "question", "ground_truth", "source_file", ...}`; for debates `{"debate": {"topic", "rounds",
    "agents": [{"name", "model"}]}}`. `current_health_score` mirrors the newest quality point.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL", name="fk_conversations_user"))
    title: Mapped[str] = mapped_column(String(500))
    topic: Mapped[str | None] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.idle.value, server_default=ConversationStatus.idle.value)
    error_message: Mapped[str | None] = mapped_column(Text)
    current_health_score: Mapped[float | None] = mapped_column(Float)
    has_contradictions: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    has_loops: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    requires_intervention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.sequence_number", passive_deletes=True
    )

    __table_args__ = (
        _score("current_health_score", "conversations"),
        CheckConstraint(f"status IN {CONVERSATION_STATUSES!r}", name="ck_conversations_status"),
        CheckConstraint(f"source_format IN {SOURCE_FORMATS!r}", name="ck_conversations_source_format"),
        Index("idx_conversations_user_created", "user_id", "created_at"),
        Index("idx_conversations_intervention", "requires_intervention", postgresql_where="requires_intervention"),
    )


class Message(Base):
    """The conversations design `messages`: one turn, in `sequence_number` order (0-based, unique per conversation).

    `round_number` / `turn_index`: the debate round (1-based) and the speaker's position in it, or what
    the imported log said (null when it said nothing). `tokens_used` / `response_time_ms`: measured for
    debate turns, kept from the log when present, never estimated. `analyzed_at` is set when the
    detectors have run on this message (null = pending).
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_messages_conversation")
    )
    agent_name: Mapped[str | None] = mapped_column(String(200))
    agent_model: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    sequence_number: Mapped[int] = mapped_column(Integer)
    round_number: Mapped[int | None] = mapped_column(Integer)
    turn_index: Mapped[int | None] = mapped_column(Integer)
    health_score: Mapped[float | None] = mapped_column(Float)
    coherence_score: Mapped[float | None] = mapped_column(Float)
    relevance_score: Mapped[float | None] = mapped_column(Float)
    has_citations: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # True: every citation verified; False: at least one checked and not found; null: none or unverifiable.
    citations_verified: Mapped[bool | None] = mapped_column(Boolean)
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    response_time_ms: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    analyzed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    __table_args__ = (
        UniqueConstraint("conversation_id", "sequence_number", name="uq_messages_conversation_sequence"),
        CheckConstraint(f"role IN {MESSAGE_ROLES!r}", name="ck_messages_role"),
        CheckConstraint("sequence_number >= 0", name="ck_messages_sequence"),
        CheckConstraint("tokens_used IS NULL OR tokens_used >= 0", name="ck_messages_tokens"),
        CheckConstraint("response_time_ms IS NULL OR response_time_ms >= 0", name="ck_messages_response_time"),
        _score("health_score", "messages"),
        _score("coherence_score", "messages"),
        _score("relevance_score", "messages"),
        Index("idx_messages_pending", "conversation_id", "sequence_number", postgresql_where="analyzed_at IS NULL"),
    )


class MessageEmbedding(Base):
    """The conversations design `message_embeddings`: the 384-d unit vector of a message (HNSW cosine index).

    `embedded_text` is null when the whole `messages.content` was embedded (the embedder truncates
    at 256 word pieces). `embedding_version` is the model folder's manifest hash prefix or "unknown".
    """

    __tablename__ = "message_embeddings"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE", name="fk_message_embeddings_message"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_message_embeddings_conversation")
    )
    sequence_number: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIM))
    embedding_model: Mapped[str] = mapped_column(String(200))
    embedding_version: Mapped[str] = mapped_column(String(64))
    embedded_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        UniqueConstraint("message_id", "embedding_model", name="uq_message_embeddings_message_model"),
        Index(
            "idx_embeddings_vector_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("idx_embeddings_conversation_sequence", "conversation_id", "sequence_number"),
    )


class ConversationQuality(Base):
    """The conversations design `conversation_quality`: one health point per analysed message (the time series).

    All scores 0..100, higher = healthier (formulas: docs/conversations.md). `analysis_metadata`:
    {"reasons": [...], "candidates": k examined, "timings_ms": {...}}.
    """

    __tablename__ = "conversation_quality"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_conversation_quality_conversation")
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE", name="fk_conversation_quality_message")
    )
    health_score: Mapped[float] = mapped_column(Float)
    coherence_score: Mapped[float] = mapped_column(Float)
    contradiction_score: Mapped[float] = mapped_column(Float)
    loop_score: Mapped[float] = mapped_column(Float)
    citation_score: Mapped[float] = mapped_column(Float)
    message_count: Mapped[int] = mapped_column(Integer)
    contradiction_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    loop_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requires_intervention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    analysis_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        UniqueConstraint("message_id", name="uq_conversation_quality_message"),
        _score("health_score", "conversation_quality"),
        _score("coherence_score", "conversation_quality"),
        _score("contradiction_score", "conversation_quality"),
        _score("loop_score", "conversation_quality"),
        _score("citation_score", "conversation_quality"),
        Index("idx_quality_conversation_created", "conversation_id", "created_at"),
    )


class Contradiction(Base):
    """The conversations design `contradictions`: two statements of two messages that conflict (message_1 is the earlier).

    One row per message pair (the strongest statement pair). Re-detection updates the scores and keeps
    `acknowledged` / `resolved` and who set them.
    """

    __tablename__ = "contradictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_contradictions_conversation")
    )
    message_1_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE", name="fk_contradictions_message_1"))
    message_2_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE", name="fk_contradictions_message_2"))
    severity: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    semantic_similarity: Mapped[float | None] = mapped_column(Float)
    same_agent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    statement_1: Mapped[str] = mapped_column(Text)
    statement_2: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str | None] = mapped_column(Text)
    resolution_suggestion: Mapped[str | None] = mapped_column(Text)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_contradictions_acknowledged_by")
    )
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL", name="fk_contradictions_resolved_by"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    detection_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        UniqueConstraint("message_1_id", "message_2_id", name="uq_contradictions_messages"),
        CheckConstraint(f"severity IN {SEVERITIES!r}", name="ck_contradictions_severity"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_contradictions_confidence"),
        CheckConstraint(
            "semantic_similarity IS NULL OR (semantic_similarity >= -1 AND semantic_similarity <= 1)",
            name="ck_contradictions_similarity",
        ),
        CheckConstraint("message_1_id <> message_2_id", name="ck_contradictions_distinct"),
        Index("idx_contradictions_message_2", "message_2_id"),
        Index("idx_contradictions_resolved", "conversation_id", "resolved", "detected_at"),
    )


class ConversationLoop(Base):
    """The conversations design `conversation_loops`: a repeated pattern, one row per (conversation, pattern hash).

    A loop that goes on updates `repetition_count` and `last_occurrence_message_id`; the workflow
    status (`intervention_status`) and who moved it are kept.
    """

    __tablename__ = "conversation_loops"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE", name="fk_conversation_loops_conversation")
    )
    pattern_hash: Mapped[str] = mapped_column(String(64))
    pattern_description: Mapped[str | None] = mapped_column(Text)
    loop_size: Mapped[int] = mapped_column(Integer)
    repetition_count: Mapped[int] = mapped_column(Integer)
    similarity: Mapped[float | None] = mapped_column(Float)
    first_occurrence_message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE", name="fk_conversation_loops_first_message")
    )
    last_occurrence_message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE", name="fk_conversation_loops_last_message")
    )
    intervention_status: Mapped[str] = mapped_column(String(16), default=InterventionStatus.pending.value, server_default=InterventionStatus.pending.value)
    intervention_message: Mapped[str | None] = mapped_column(Text)
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_conversation_loops_acknowledged_by")
    )
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_conversation_loops_resolved_by")
    )
    detection_metadata: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("conversation_id", "pattern_hash", name="uq_conversation_loops_pattern"),
        CheckConstraint(f"intervention_status IN {INTERVENTION_STATUSES!r}", name="ck_conversation_loops_status"),
        CheckConstraint("loop_size >= 1", name="ck_conversation_loops_size"),
        CheckConstraint("repetition_count >= 2", name="ck_conversation_loops_repetitions"),
        CheckConstraint("similarity IS NULL OR (similarity >= 0 AND similarity <= 1)", name="ck_conversation_loops_similarity"),
        Index("idx_loops_intervention", "conversation_id", "intervention_status"),
        Index("idx_loops_last_message", "last_occurrence_message_id"),
    )


class MessageCitation(Base):
    """The conversations design `message_citations`: a URL, DOI, quote or reference found in a message, and its check.

    `start_position` / `end_position`: character span `[start, end)` in `messages.content`.
    `verified`: True = found in a known source or fragment (`matched_label` says which); False = checked
    and not found; NULL = unverifiable (nothing to check against). `source_quality_score` (0..100) is the
    matched source's quality tier: primary 100, secondary 70, tertiary 40 (null when nothing matched).
    """

    __tablename__ = "message_citations"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE", name="fk_message_citations_message"))
    citation_text: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text)
    source_title: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(16))
    start_position: Mapped[int] = mapped_column(Integer)
    end_position: Mapped[int] = mapped_column(Integer)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    verification_method: Mapped[str] = mapped_column(String(32))
    verification_confidence: Mapped[float] = mapped_column(Float)
    matched_label: Mapped[str | None] = mapped_column(Text)
    source_quality_score: Mapped[float | None] = mapped_column(Float)
    relevance_score: Mapped[float | None] = mapped_column(Float)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"source_type IN {CITATION_TYPES!r}", name="ck_message_citations_type"),
        CheckConstraint("start_position >= 0 AND end_position >= start_position", name="ck_message_citations_span"),
        CheckConstraint(
            "verification_confidence >= 0 AND verification_confidence <= 1", name="ck_message_citations_confidence"
        ),
        _score("source_quality_score", "message_citations"),
        _score("relevance_score", "message_citations"),
        Index("idx_citations_message", "message_id"),
        Index("idx_citations_verified", "verified"),
    )
