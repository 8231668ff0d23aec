"""Conversation records: import and create conversations and debates, append messages, set the run
status, delete, and read them back (the picker's summaries, the messages, the page's message table).

Plain functions `f(*, session, ...)` that never commit; callers own the transaction (docs/conversations.md,
"Import" and "Debates on the local models").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mmos_core.core.domain import ConversationStatus, InterventionStatus
from mmos_core.models.conversations import Contradiction, Conversation, ConversationLoop, Message
from mmos_core.services.conversations.citations import citation_status, citations_by_message
from mmos_core.text.conversation_import import ParsedConversation, ParsedMessage


class ConversationNotFound(LookupError):
    """No conversation / message / finding with that id."""


# --- creating -------------------------------------------------------------------------------------


def create_conversation(
    *, session: Session, parsed: ParsedConversation, user_id: int | None = None, status: str = ConversationStatus.idle.value
) -> Conversation:
    """Insert a parsed conversation and all its messages (sequence 0..n-1) in the caller's transaction.

    Returns:
        The flushed `Conversation` (its id is set). Nothing is committed here: the caller's
        transaction makes the import all-or-nothing.
    """
    conv = Conversation(
        title=parsed.title or "Untitled conversation",
        topic=parsed.topic,
        source_format=parsed.source_format,
        status=status,
        user_id=user_id,
        metadata_=dict(parsed.metadata),
    )
    session.add(conv)
    session.flush()
    if parsed.messages:
        session.execute(
            Message.__table__.insert(),
            [_message_row(conv.id, seq, m) for seq, m in enumerate(parsed.messages)],
        )
    return conv


def _message_row(conversation_id: int, sequence: int, m: ParsedMessage) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "sequence_number": sequence,
        "role": m.role,
        "content": m.content,
        "agent_name": m.agent_name,
        "agent_model": m.agent_model,
        "round_number": m.round_number,
        "turn_index": m.turn_index,
        "tokens_used": m.tokens_used,
        "response_time_ms": m.response_time_ms,
        "metadata": m.metadata,
    }


def import_conversations(
    *, session: Session, parsed: Sequence[ParsedConversation], user_id: int | None = None
) -> list[int]:
    """Insert several parsed conversations (status `queued`: the caller enqueues their analysis after
    commit with `enqueue_analysis`). Returns their ids in order."""
    return [create_conversation(session=session, parsed=p, user_id=user_id, status=ConversationStatus.queued.value).id for p in parsed]


@dataclass(frozen=True)
class DebateAgent:
    """One debater: a display name and a model of the catalog (e.g. qwen2.5-coder-1.5b-instruct)."""

    name: str
    model: str


def create_debate(
    *, session: Session, topic: str, agents: Sequence[DebateAgent], rounds: int, user_id: int | None = None
) -> Conversation:
    """A new, empty debate conversation (status `queued`); `enqueue_debate(id)` after commit runs it.

    Raises:
        ValueError: empty topic, fewer than 2 or more than 3 agents, duplicate agent names, rounds
            outside 1..20.
    """
    topic = (topic or "").strip()
    if not topic:
        raise ValueError("Give the debate a topic.")
    if not 2 <= len(agents) <= 3:
        raise ValueError("A debate needs two or three agents.")
    names = [a.name.strip() for a in agents]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError("Each agent needs a distinct name.")
    if not 1 <= rounds <= 20:
        raise ValueError("Rounds must be between 1 and 20.")
    conv = Conversation(
        title=f"Debate: {topic[:200]}",
        topic=topic,
        source_format="debate",
        status=ConversationStatus.queued.value,
        user_id=user_id,
        metadata_={"debate": {"topic": topic, "rounds": rounds, "agents": [{"name": n, "model": a.model} for n, a in zip(names, agents, strict=True)]}},
    )
    session.add(conv)
    session.flush()
    return conv


def add_message(
    *,
    session: Session,
    conversation_id: int,
    role: str,
    content: str,
    agent_name: str | None = None,
    agent_model: str | None = None,
    round_number: int | None = None,
    turn_index: int | None = None,
    tokens_used: int | None = None,
    response_time_ms: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Append a message at the next sequence number (the conversation row is locked meanwhile, so two
    writers cannot take the same number). Returns the flushed message."""
    conv = session.get(Conversation, conversation_id, with_for_update=True)
    if conv is None:
        raise ConversationNotFound(f"Conversation {conversation_id} does not exist.")
    seq = session.scalar(select(func.coalesce(func.max(Message.sequence_number) + 1, 0)).where(Message.conversation_id == conversation_id))
    msg = Message(
        conversation_id=conversation_id,
        sequence_number=int(seq or 0),
        role=role,
        content=content,
        agent_name=agent_name,
        agent_model=agent_model,
        round_number=round_number,
        turn_index=turn_index,
        tokens_used=tokens_used,
        response_time_ms=response_time_ms,
        metadata_=metadata or {},
    )
    session.add(msg)
    session.flush()
    return msg


def set_status(*, session: Session, conversation_id: int, status: str, error: str | None = None) -> None:
    """Set a conversation's run status (idle / queued / analyzing / running / completed / failed)."""
    session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(status=status, error_message=error)
    )


def delete_conversation(*, session: Session, conversation_id: int) -> None:
    """Delete a conversation and (by cascade) its messages, embeddings, points and findings."""
    conv = get_conversation(session=session, conversation_id=conversation_id)
    session.delete(conv)


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationSummary:
    """A row of the conversation picker."""

    id: int
    title: str
    source_format: str
    status: str
    messages: int
    analyzed: int
    health: float | None
    open_contradictions: int
    active_loops: int
    requires_intervention: bool
    created_at: dt.datetime


def get_conversation(*, session: Session, conversation_id: int) -> Conversation:
    """The conversation row. Raises ConversationNotFound."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise ConversationNotFound(f"Conversation {conversation_id} does not exist.")
    return conv


def list_conversations(*, session: Session, limit: int = 500) -> list[ConversationSummary]:
    """Conversations, newest first, with message / analysed counts and open findings."""
    msgs = (
        select(
            Message.conversation_id,
            func.count().label("n"),
            func.count(Message.analyzed_at).label("analyzed"),
        )
        .group_by(Message.conversation_id)
        .subquery()
    )
    contra = (
        select(Contradiction.conversation_id, func.count().label("n"))
        .where(Contradiction.resolved.is_(False))
        .group_by(Contradiction.conversation_id)
        .subquery()
    )
    loops = (
        select(ConversationLoop.conversation_id, func.count().label("n"))
        .where(ConversationLoop.intervention_status.in_((InterventionStatus.pending.value, InterventionStatus.acknowledged.value)))
        .group_by(ConversationLoop.conversation_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Conversation,
            func.coalesce(msgs.c.n, 0),
            func.coalesce(msgs.c.analyzed, 0),
            func.coalesce(contra.c.n, 0),
            func.coalesce(loops.c.n, 0),
        )
        .outerjoin(msgs, msgs.c.conversation_id == Conversation.id)
        .outerjoin(contra, contra.c.conversation_id == Conversation.id)
        .outerjoin(loops, loops.c.conversation_id == Conversation.id)
        .order_by(Conversation.created_at.desc(), Conversation.id.desc())
        .limit(limit)
    ).all()
    return [
        ConversationSummary(
            id=c.id,
            title=c.title,
            source_format=c.source_format,
            status=c.status,
            messages=int(n),
            analyzed=int(a),
            health=c.current_health_score,
            open_contradictions=int(oc),
            active_loops=int(al),
            requires_intervention=c.requires_intervention,
            created_at=c.created_at,
        )
        for c, n, a, oc, al in rows
    ]


def list_messages(*, session: Session, conversation_id: int) -> list[Message]:
    """The conversation's messages in sequence order."""
    return list(
        session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.sequence_number))
    )


def failure_labels(conv: Conversation) -> dict[str, Any] | None:
    """The imported log's own failure labels (Who&When: mistake_agent, mistake_step, mistake_reason,
    mistake_type?) or None when the conversation came without them."""
    labels = (conv.metadata_ or {}).get("failure_labels")
    return dict(labels) if labels else None


def message_rows(*, session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The messages as the page's table shows them: sequence, agent, role, model, round, turn, tokens,
    response ms, health, coherence, citation status, whether the log blames this step, and the text."""
    cites = citations_by_message(session=session, conversation_id=conversation_id)
    return [
        {
            "id": m.id,
            "#": m.sequence_number,
            "agent": m.agent_name,
            "role": m.role,
            "model": m.agent_model,
            "round": m.round_number,
            "turn": m.turn_index,
            "tokens": m.tokens_used,
            "response ms": m.response_time_ms,
            "health": m.health_score,
            "coherence": m.coherence_score,
            "citations": citation_status(cites.get(m.id, [])),
            "log's mistake step": bool((m.metadata_ or {}).get("mistake_step")),
            "analysed": m.analyzed_at is not None,
            "content": m.content,
        }
        for m in list_messages(session=session, conversation_id=conversation_id)
    ]
