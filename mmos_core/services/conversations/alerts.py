"""Contradiction and loop alerts: listing a conversation's findings for the page, and acknowledging or
resolving them (which refreshes the conversation's `has_contradictions` / `has_loops` flags); see
docs/conversations.md, "Storage" and "The Conversations page".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mmos_core.core.domain import InterventionStatus
from mmos_core.models.conversations import Contradiction, Conversation, ConversationLoop, Message
from mmos_core.services.conversations.store import ConversationNotFound


@dataclass(frozen=True)
class ContradictionAlert:
    """A contradiction with both statements and who said them, for the side-by-side view."""

    id: int
    severity: str
    confidence: float
    semantic_similarity: float | None
    same_agent: bool
    statement_1: str
    statement_2: str
    message_1_id: int
    message_2_id: int
    sequence_1: int
    sequence_2: int
    agent_1: str | None
    agent_2: str | None
    explanation: str | None
    resolution_suggestion: str | None
    acknowledged: bool
    resolved: bool
    detected_at: dt.datetime


def contradiction_alerts(*, session: Session, conversation_id: int, include_resolved: bool = False) -> list[ContradictionAlert]:
    """Contradictions of a conversation, newest message first (unresolved only unless asked)."""
    m1 = select(Message.id, Message.sequence_number, Message.agent_name).subquery()
    m2 = select(Message.id, Message.sequence_number, Message.agent_name).subquery()
    q = (
        select(Contradiction, m1.c.sequence_number, m1.c.agent_name, m2.c.sequence_number, m2.c.agent_name)
        .join(m1, m1.c.id == Contradiction.message_1_id)
        .join(m2, m2.c.id == Contradiction.message_2_id)
        .where(Contradiction.conversation_id == conversation_id)
        .order_by(m2.c.sequence_number.desc(), Contradiction.confidence.desc())
    )
    if not include_resolved:
        q = q.where(Contradiction.resolved.is_(False))
    return [
        ContradictionAlert(
            id=c.id,
            severity=c.severity,
            confidence=c.confidence,
            semantic_similarity=c.semantic_similarity,
            same_agent=c.same_agent,
            statement_1=c.statement_1,
            statement_2=c.statement_2,
            message_1_id=c.message_1_id,
            message_2_id=c.message_2_id,
            sequence_1=s1,
            sequence_2=s2,
            agent_1=a1,
            agent_2=a2,
            explanation=c.explanation,
            resolution_suggestion=c.resolution_suggestion,
            acknowledged=c.acknowledged,
            resolved=c.resolved,
            detected_at=c.detected_at,
        )
        for c, s1, a1, s2, a2 in session.execute(q).all()
    ]


@dataclass(frozen=True)
class LoopAlert:
    """A detected loop with the sequence numbers of its first and last message."""

    id: int
    pattern_hash: str
    pattern_description: str | None
    loop_size: int
    repetition_count: int
    similarity: float | None
    first_sequence: int
    last_sequence: int
    intervention_status: str
    intervention_message: str | None
    detected_at: dt.datetime


def loop_alerts(*, session: Session, conversation_id: int, include_closed: bool = False) -> list[LoopAlert]:
    """Loops of a conversation (pending / acknowledged unless `include_closed`), latest first."""
    first = select(Message.id, Message.sequence_number).subquery()
    last = select(Message.id, Message.sequence_number).subquery()
    q = (
        select(ConversationLoop, first.c.sequence_number, last.c.sequence_number)
        .join(first, first.c.id == ConversationLoop.first_occurrence_message_id)
        .join(last, last.c.id == ConversationLoop.last_occurrence_message_id)
        .where(ConversationLoop.conversation_id == conversation_id)
        .order_by(last.c.sequence_number.desc())
    )
    if not include_closed:
        q = q.where(ConversationLoop.intervention_status.in_((InterventionStatus.pending.value, InterventionStatus.acknowledged.value)))
    return [
        LoopAlert(
            id=lp.id,
            pattern_hash=lp.pattern_hash,
            pattern_description=lp.pattern_description,
            loop_size=lp.loop_size,
            repetition_count=lp.repetition_count,
            similarity=lp.similarity,
            first_sequence=fs,
            last_sequence=ls,
            intervention_status=lp.intervention_status,
            intervention_message=lp.intervention_message,
            detected_at=lp.detected_at,
        )
        for lp, fs, ls in session.execute(q).all()
    ]


def acknowledge_contradiction(*, session: Session, contradiction_id: int, user_id: int | None) -> Contradiction:
    """Mark a contradiction as seen by `user_id` (it stays open). Raises ConversationNotFound."""
    c = _get(session, Contradiction, contradiction_id)
    if not c.acknowledged:
        c.acknowledged, c.acknowledged_by, c.acknowledged_at = True, user_id, dt.datetime.now(dt.UTC)
    _refresh_flags(session, c.conversation_id)
    return c


def resolve_contradiction(*, session: Session, contradiction_id: int, user_id: int | None) -> Contradiction:
    """Close a contradiction (also acknowledges it). Later health points no longer count it."""
    c = _get(session, Contradiction, contradiction_id)
    now = dt.datetime.now(dt.UTC)
    if not c.acknowledged:
        c.acknowledged, c.acknowledged_by, c.acknowledged_at = True, user_id, now
    c.resolved, c.resolved_by, c.resolved_at = True, user_id, now
    _refresh_flags(session, c.conversation_id)
    return c


def acknowledge_loop(*, session: Session, loop_id: int, user_id: int | None) -> ConversationLoop:
    """pending → acknowledged (who and when are kept). Raises ConversationNotFound."""
    lp = _get(session, ConversationLoop, loop_id)
    if lp.intervention_status == InterventionStatus.pending.value:
        lp.intervention_status, lp.acknowledged_by, lp.acknowledged_at = InterventionStatus.acknowledged.value, user_id, dt.datetime.now(dt.UTC)
    _refresh_flags(session, lp.conversation_id)
    return lp


def resolve_loop(*, session: Session, loop_id: int, user_id: int | None, dismiss: bool = False) -> ConversationLoop:
    """Close a loop as resolved (or dismissed: "not a real loop"). A resolved loop that repeats again
    is reopened by the next analysis; a dismissed one stays dismissed."""
    lp = _get(session, ConversationLoop, loop_id)
    lp.intervention_status = InterventionStatus.dismissed.value if dismiss else InterventionStatus.resolved.value
    lp.resolved_by, lp.resolved_at = user_id, dt.datetime.now(dt.UTC)
    _refresh_flags(session, lp.conversation_id)
    return lp


def _get(session: Session, model: type, id_: int) -> Any:
    row = session.get(model, id_, with_for_update=True)
    if row is None:
        raise ConversationNotFound(f"{model.__name__} {id_} does not exist.")
    return row


def _refresh_flags(session: Session, conversation_id: int) -> None:
    session.flush()
    open_c = session.scalar(
        select(func.count()).where(Contradiction.conversation_id == conversation_id, Contradiction.resolved.is_(False))
    )
    open_l = session.scalar(
        select(func.count()).where(
            ConversationLoop.conversation_id == conversation_id,
            ConversationLoop.intervention_status.in_((InterventionStatus.pending.value, InterventionStatus.acknowledged.value)),
        )
    )
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(has_contradictions=bool(open_c), has_loops=bool(open_l))
    )
