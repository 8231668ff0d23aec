"""Conversation health: the health point after each analysed message (coherence, open
contradictions, active loops and citation checks as they stood then), persisting it with the
conversation's current flags, and the health time series the page draws (docs/conversations.md,
"Health").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mmos_core.analysis.detectors import CitationCheck, ContradictionFinding, HealthPoint, LoopFinding, health_point
from mmos_core.models.conversations import (
    Contradiction,
    Conversation,
    ConversationLoop,
    ConversationQuality,
    Message,
    MessageCitation,
)

#: Coherence scores (of the latest analysed messages) that feed one health point.
HEALTH_COHERENCE_WINDOW = 10


def clamp_score(x: float) -> float:
    """`x` limited to the 0..100 range every stored score has (CHECK constraints)."""
    return float(min(100.0, max(0.0, x)))


def health_series(*, session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The health time series: one dict per analysed message, in message order:
    {"sequence", "message_id", "agent", "health", "coherence", "contradiction", "loop", "citation",
    "requires_intervention", "reasons", "created_at"} (scores 0..100)."""
    rows = session.execute(
        select(ConversationQuality, Message.sequence_number, Message.agent_name)
        .join(Message, Message.id == ConversationQuality.message_id)
        .where(ConversationQuality.conversation_id == conversation_id)
        .order_by(Message.sequence_number)
    ).all()
    return [
        {
            "sequence": seq,
            "message_id": q.message_id,
            "agent": agent,
            "health": q.health_score,
            "coherence": q.coherence_score,
            "contradiction": q.contradiction_score,
            "loop": q.loop_score,
            "citation": q.citation_score,
            "requires_intervention": q.requires_intervention,
            "reasons": list((q.analysis_metadata or {}).get("reasons", [])),
            "created_at": q.created_at,
        }
        for q, seq, agent in rows
    ]


def _loops_as_of(session: Session, conv_id: int, seq: int) -> list[LoopFinding]:
    """Active (pending / acknowledged) loops as they stood after message `seq`."""
    out = []
    for lp in session.scalars(
        select(ConversationLoop).where(
            ConversationLoop.conversation_id == conv_id,
            ConversationLoop.intervention_status.in_(("pending", "acknowledged")),
        )
    ):
        seen = [o for o in (lp.detection_metadata or {}).get("occurrences", []) if o[0] <= seq]
        if not seen:
            continue
        _, count, last_id = max(seen)
        out.append(
            LoopFinding(
                pattern_hash=lp.pattern_hash,
                pattern_size=lp.loop_size,
                repetition_count=count,
                first_message_id=lp.first_occurrence_message_id,
                last_message_id=last_id,
                similarity=lp.similarity or 0.0,
                intervention_message=lp.intervention_message or "",
            )
        )
    return out


def health_point_at(session: Session, conv_id: int, seq: int) -> tuple[HealthPoint, int]:
    """The health point after message `seq`: coherence of the latest analysed messages, contradictions
    still open, loops still active, and every citation check so far (all up to `seq`)."""
    coh = list(
        session.scalars(
            select(Message.coherence_score)
            .where(Message.conversation_id == conv_id, Message.sequence_number <= seq, Message.coherence_score.is_not(None))
            .order_by(Message.sequence_number.desc())
            .limit(HEALTH_COHERENCE_WINDOW)
        )
    )[::-1]
    # only the columns the score uses: a long conversation can hold thousands of open findings
    contra_rows = session.execute(
        select(
            Contradiction.message_1_id, Contradiction.message_2_id, Contradiction.confidence, Contradiction.severity,
            Contradiction.semantic_similarity, Contradiction.same_agent,
        )
        .join(Message, Message.id == Contradiction.message_2_id)
        .where(Contradiction.conversation_id == conv_id, Contradiction.resolved.is_(False), Message.sequence_number <= seq)
    ).all()
    contradictions = [
        ContradictionFinding(
            message_a_id=m1, message_b_id=m2, statement_a="", statement_b="", probability=conf, severity=sev,
            semantic_similarity=sim or 0.0, same_agent=same, explanation="", resolution_suggestion="",
        )
        for m1, m2, conf, sev, sim, same in contra_rows
    ]
    loops = _loops_as_of(session, conv_id, seq)
    cite_rows = session.execute(
        select(MessageCitation.verified, MessageCitation.verification_method, MessageCitation.verification_confidence, MessageCitation.matched_label)
        .join(Message, Message.id == MessageCitation.message_id)
        .where(Message.conversation_id == conv_id, Message.sequence_number <= seq)
    ).all()
    checks = [CitationCheck(verified=v, method=m, confidence=c, matched_label=lbl) for v, m, c, lbl in cite_rows]
    point = health_point(
        coherence_scores=coh,
        open_contradictions=contradictions,
        loops=loops,
        citation_checks=checks,
        message_count=seq + 1,
    )
    return point, len(contradictions)


def persist_point(
    session: Session, conv_id: int, msg: Message, point: HealthPoint, *, open_c: int, candidates: int,
    timings: dict[str, float],
) -> None:
    """Store `point` as the message's `conversation_quality` row (replacing any earlier one) and, when it is
    the latest analysed message, copy its health and flags onto the conversation."""
    session.execute(delete(ConversationQuality).where(ConversationQuality.message_id == msg.id))
    loops = len(_loops_as_of(session, conv_id, msg.sequence_number))
    session.add(
        ConversationQuality(
            conversation_id=conv_id,
            message_id=msg.id,
            health_score=clamp_score(point.health_score),
            coherence_score=clamp_score(point.coherence_score),
            contradiction_score=clamp_score(point.contradiction_score),
            loop_score=clamp_score(point.loop_score),
            citation_score=clamp_score(point.citation_score),
            message_count=msg.sequence_number + 1,
            contradiction_count=int(open_c),
            loop_count=int(loops),
            requires_intervention=bool(point.requires_intervention),
            analysis_metadata={
                "reasons": list(point.reasons),
                "candidates": candidates,
                "timings_ms": {k: round(v, 2) for k, v in timings.items()},
            },
        )
    )
    latest = session.scalar(
        select(func.max(Message.sequence_number)).where(Message.conversation_id == conv_id, Message.analyzed_at.is_not(None))
    )
    if latest is None or msg.sequence_number >= latest:
        session.execute(
            update(Conversation)
            .where(Conversation.id == conv_id)
            .values(
                current_health_score=clamp_score(point.health_score),
                requires_intervention=bool(point.requires_intervention),
                has_contradictions=bool(open_c),
                has_loops=bool(loops),
            )
        )
