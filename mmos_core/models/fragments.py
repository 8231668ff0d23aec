"""Fragments and what reviewers add to them: tags, relationships, edits with history, feedback."""

from __future__ import annotations

import datetime as dt

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.models.base import EMBEDDING_DIM, Base, now


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
    # why it was rejected (`RejectReason`): lets the calibration report check each automatic check
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('english', coalesce(content,'') || ' ' || coalesce(insight,'') || ' ' || coalesce(context,''))",
            persisted=True,
        ),
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())


class FragmentTag(Base):
    """Tag ↔ fragment link."""

    __tablename__ = "fragment_tags"

    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    tagged_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())


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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint(
            "relationship_type IN ('supports','contradicts','elaborates','duplicates')",
            name="ck_relationships_type",
        ),
        CheckConstraint("fragment_id <> related_fragment_id", name="ck_relationships_distinct"),
        UniqueConstraint("fragment_id", "related_fragment_id", "relationship_type", name="uq_relationship"),
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
    edited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())


class UserFeedback(Base):
    """The catalog design `ai_user_feedback`: like / dislike / regenerate / skip and 1-5 stars on a fragment or a batch."""

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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now(), index=True)

    __table_args__ = (
        CheckConstraint(
            "feedback_type IN ('like','dislike','regenerate','skip','rating')", name="ck_feedback_type"
        ),
        CheckConstraint("quality_rating IS NULL OR quality_rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        CheckConstraint("fragment_id IS NOT NULL OR batch_id IS NOT NULL", name="ck_feedback_target"),
    )
