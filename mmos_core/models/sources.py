"""Sources and their chunks: the text an analyst added, cut with character offsets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mmos_core.models.base import Base, now


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
    # speaker turns found at intake: [[speaker, char_start, char_end, kind], ...] (text/speakers.py)
    speaker_turns: Mapped[list[Any] | None] = mapped_column(JSONB)
    # the speaker label(s) whose words are the person's (None: the whole source is the person's)
    person_labels: Mapped[list[str] | None] = mapped_column(ARRAY(String(120)))
    turns_note: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

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
