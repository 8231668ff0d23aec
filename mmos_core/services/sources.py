"""Source intake: store a parsed source with its chunks; list sources with their processing summary."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.domain import ExtractionPriority, QualityTier, SourceType
from mmos_core.models import Source, SourceChunk
from mmos_core.services.speakers import detect_turns, validate_person_labels
from mmos_core.text.chunking import chunk_text
from mmos_core.text.intake import ParsedSource, document_metadata


class DuplicateSourceError(ValueError):
    """The same text is already stored; the message names the existing source code."""


@dataclass(frozen=True)
class SourceRow:
    """One line of `v_source_processing_summary`."""

    source_id: int
    source_code: str
    title: str
    source_type: str
    quality: str
    extraction_priority: str
    batches: int
    batches_completed: int
    batches_failed: int
    fragments: int
    total_cost_usd: float
    last_processed_at: dt.datetime | None


def _next_source_code(session: Session, source_type: SourceType) -> str:
    prefix = f"SRC_{source_type.value.upper()}_"
    count = session.scalar(select(func.count()).select_from(Source).where(Source.source_code.like(f"{prefix}%")))
    n = int(count or 0) + 1
    while session.scalar(select(Source.id).where(Source.source_code == f"{prefix}{n:03d}")) is not None:
        n += 1
    return f"{prefix}{n:03d}"


def create_source(
    *,
    session: Session,
    parsed: ParsedSource,
    title: str,
    source_type: SourceType | str,
    quality: QualityTier | str,
    extraction_priority: ExtractionPriority | str,
    person: str | None = None,
    url: str | None = None,
    source_date: dt.date | None = None,
    original_filename: str | None = None,
    created_by: str | None = None,
    settings: Settings | None = None,
    person_labels: Sequence[str] | None = None,
) -> Source:
    """Store a source with its speaker turns and chunks (offsets into the stored text). Does not commit.

    Args:
        person_labels: the speaker label(s) whose words are the person's; None: the default of
            `services.speakers.detect_turns` (the label matching `person`, else the documented fallbacks).
    Raises:
        ValueError: empty title, an unknown type / tier / priority, or a person label that is not a speaker.
        DuplicateSourceError: a source with byte-identical text exists, or (documents) one made from
            the same original file (`metadata_["original_sha256"]`, docs/intake.md).
    """
    settings = settings or get_settings()
    title = title.strip()
    if not title:
        raise ValueError("A source needs a title.")
    source_type = SourceType(source_type)
    quality = QualityTier(quality)
    extraction_priority = ExtractionPriority(extraction_priority)
    if parsed.original_sha256:
        # the same PDF / DOCX / EPUB again, even when cut to another length (docs/intake.md)
        same_file = session.scalar(
            select(Source.source_code).where(Source.metadata_["original_sha256"].astext == parsed.original_sha256).limit(1)
        )
        if same_file:
            raise DuplicateSourceError(f"This file was already added as {same_file} (same original file, SHA-256 {parsed.original_sha256[:12]}…).")
    digest = hashlib.sha256(parsed.text.encode("utf-8")).hexdigest()
    existing = session.scalar(select(Source.source_code).where(Source.content_sha256 == digest))
    if existing:
        raise DuplicateSourceError(f"This text is already stored as {existing}.")

    found = detect_turns(parsed.text, person=person, cues=parsed.cues)
    source = Source(
        source_code=_next_source_code(session, source_type),
        title=title,
        person=(person or "").strip() or None,
        source_type=source_type.value,
        quality=quality.value,
        extraction_priority=extraction_priority.value,
        url=(url or "").strip() or None,
        source_date=source_date,
        content_format=parsed.content_format,
        original_filename=original_filename,
        content=parsed.text,
        content_sha256=digest,
        char_count=len(parsed.text),
        word_count=parsed.word_count,
        cues=[[c.char_start, c.char_end, c.start, c.end, c.speaker] for c in parsed.cues] if parsed.cues else None,
        speaker_turns=found.turns,
        person_labels=found.person_labels,
        turns_note=found.note,
        metadata_=document_metadata(parsed),  # documents: format, original_sha256, pages, headings
        created_by=created_by,
    )
    session.add(source)
    session.flush()
    if person_labels:
        source.person_labels = validate_person_labels(source, person_labels)
    for chunk in chunk_text(
        parsed.text,
        cues=parsed.cues,
        pages=parsed.pages or None,  # a PDF's chunk labels name pages: "p. 12, ¶48" (docs/intake.md)
        target_chars=settings.chunk_target_chars,
        max_chars=settings.chunk_max_chars,
    ):
        session.add(
            SourceChunk(
                source_id=source.id,
                chunk_index=chunk.index,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                location_label=chunk.location_label,
            )
        )
    session.flush()
    return source


def list_sources(*, session: Session) -> list[SourceRow]:
    """All sources, newest first, with batch/fragment counts and spend (from `v_source_processing_summary`)."""
    rows = session.execute(text("SELECT * FROM v_source_processing_summary ORDER BY source_id DESC")).mappings()
    return [
        SourceRow(
            source_id=r["source_id"],
            source_code=r["source_code"],
            title=r["title"],
            source_type=r["source_type"],
            quality=r["quality"],
            extraction_priority=r["extraction_priority"],
            batches=r["batches"],
            batches_completed=r["batches_completed"],
            batches_failed=r["batches_failed"],
            fragments=r["fragments"],
            total_cost_usd=float(r["total_cost_usd"]),
            last_processed_at=r["last_processed_at"],
        )
        for r in rows
    ]
