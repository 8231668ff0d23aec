"""Citations in messages: checking each extracted citation against the workbench's sources and
fragments, persisting the checks, and reading them back per message (docs/conversations.md,
"Citations").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from mmos_core.analysis.detectors import Citation, CitationCheck, verify_citation
from mmos_core.models import Fragment, Source
from mmos_core.models.conversations import Message, MessageCitation

#: Quality tier of a matched source → `message_citations.source_quality_score` (0..100).
SOURCE_QUALITY_SCORE = {"primary": 100.0, "secondary": 70.0, "tertiary": 40.0}


def persist_citations(session: Session, msg: Message, cites: Sequence[tuple[Citation, CitationCheck]]) -> None:
    """Replace the message's `message_citations` rows with these checked citations."""
    session.execute(delete(MessageCitation).where(MessageCitation.message_id == msg.id))
    now = dt.datetime.now(dt.UTC)
    for c, check in cites:
        quality = check_quality(check)
        session.add(
            MessageCitation(
                message_id=msg.id,
                citation_text=c.text,
                source_url=c.url,
                source_title=c.title,
                source_type=c.citation_type,
                start_position=c.start,
                end_position=c.end,
                verified=check.verified,
                verification_method=check.method[:32],
                verification_confidence=float(min(1.0, max(0.0, check.confidence))),
                matched_label=check.matched_label,
                source_quality_score=quality,
                verified_at=now if check.verified is not None else None,
            )
        )


def check_quality(check: CitationCheck) -> float | None:
    """Source quality (0..100) of a verified citation from the tier tag `_known_texts` puts in labels."""
    label = check.matched_label or ""
    if check.verified and label.startswith("[") and "]" in label:
        return SOURCE_QUALITY_SCORE.get(label[1 : label.index("]")])
    return None


def check_citation(session: Session, c: Citation) -> CitationCheck:
    """Check one extracted citation against the known texts it may come from (`_known_texts`)."""
    return verify_citation(c, _known_texts(session, c))


def _known_texts(session: Session, c: Citation, window: int = 1500) -> list[tuple[str, str]]:
    """Known texts a citation may be checked against: sources whose URL or title matches, sources whose
    text contains the quoted words (a window around the match), and fragments found by full-text
    search. Labels look like "[primary] source SRC-1: Title" so the tier survives into the check."""
    out: list[tuple[str, str]] = []
    needle = (c.text or "").strip().strip("\"“”'‘’").strip()[:500]
    conds = []
    if c.url:
        conds.append(Source.url == c.url)
    if c.title and len(c.title) >= 4:
        conds.append(Source.title.ilike(f"%{c.title[:200]}%"))
    if len(needle) >= 12:
        conds.append(func.strpos(func.lower(Source.content), needle.lower()) > 0)
    if conds:
        pos = func.strpos(func.lower(Source.content), needle.lower()) if needle else None
        cols = [Source.source_code, Source.title, Source.url, Source.quality]
        if pos is not None:
            cols.append(pos.label("pos"))
        for row in session.execute(select(*cols).where(or_(*conds)).limit(5)).all():
            code, title, url, quality = row[:4]
            found = int(row[4]) if pos is not None else 0
            snippet = ""
            if found > 0:
                snippet = session.scalar(
                    select(func.substr(Source.content, max(1, found - window), len(needle) + 2 * window)).where(
                        Source.source_code == code
                    )
                ) or ""
            out.append((f"[{quality}] source {code}: {title}", "\n".join(x for x in (title, url or "", snippet) if x)))
    if len(needle) >= 12:
        tsq = func.plainto_tsquery("english", needle)
        rows = session.execute(
            select(Fragment.fragment_code, Fragment.content, Source.quality)
            .join(Source, Source.id == Fragment.source_id)
            .where(Fragment.search_vector.op("@@")(tsq))
            .order_by(func.ts_rank(Fragment.search_vector, tsq).desc())
            .limit(10)
        ).all()
        out.extend((f"[{quality}] fragment {code}", content) for code, content, quality in rows)
    return out


def citations_by_message(*, session: Session, conversation_id: int) -> dict[int, list[MessageCitation]]:
    """message id → its citations (span order), for the messages of a conversation that have any."""
    rows = session.scalars(
        select(MessageCitation)
        .join(Message, Message.id == MessageCitation.message_id)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.sequence_number, MessageCitation.start_position)
    ).all()
    out: dict[int, list[MessageCitation]] = {}
    for c in rows:
        out.setdefault(c.message_id, []).append(c)
    return out


def citation_status(citations: Sequence[MessageCitation]) -> str:
    """One line per message: "2 verified, 1 not found, 1 unverifiable" ("" when it cites nothing)."""
    verified = sum(1 for c in citations if c.verified is True)
    missing = sum(1 for c in citations if c.verified is False)
    unknown = sum(1 for c in citations if c.verified is None)
    parts = [f"{n} {what}" for n, what in ((verified, "verified"), (missing, "not found"), (unknown, "unverifiable")) if n]
    return ", ".join(parts)
