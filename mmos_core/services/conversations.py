"""Conversations (issue 6, seed 004): store, analyse, search and review multi-agent conversations.

Plain functions `f(*, session, ...)` that never commit; callers own the transaction. The detectors
themselves are pure (`mmos_core.conversations.detectors`); this module feeds them from PostgreSQL and
persists what they find:

`analyze_message` (one message, after it arrived):
  1. embed the message (or reuse its stored vector) into `message_embeddings`;
  2. candidates = the `conversation_candidate_k` nearest *earlier* messages of the same conversation
     (pgvector `<=>` ORDER BY … LIMIT k on the HNSW index) ∪ the last `conversation_recent_turns`
     messages — so each message is compared with O(k) others, never with all earlier ones;
  3. contradictions (new vs candidates), loop (new vs the last `conversation_loop_window` messages ∪
     the nearest ones), citations (extracted, checked against known sources and fragments), coherence
     (new vs the latest messages);
  4. persists contradictions (one row per message pair, acknowledgements kept), the loop (one row per
     pattern hash, extended as it goes on), the message's citations, and one `conversation_quality`
     point for this message (health from H2's `health_point`).
  Re-analysing a message replaces what it produced (idempotent).

Search: `search_messages` (a query vector against every message, or one conversation's) and
`similar_messages` (the nearest messages of any message), both through the HNSW index.

Jobs are enqueued after commit by `enqueue_analysis` / `enqueue_debate` (the functions live in
`workers/conversations.py`; RQ imports them by name).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.config import get_settings
from mmos_core.conversations.detectors import (
    Citation,
    CitationCheck,
    ContradictionFinding,
    HealthPoint,
    LoopFinding,
    MessageView,
    coherence_score,
    detect_contradictions,
    detect_loop,
    extract_citations,
    health_point,
    verify_citation,
)
from mmos_core.conversations.importers import ParsedConversation, ParsedMessage
from mmos_core.conversations.models import (
    Contradiction,
    Conversation,
    ConversationLoop,
    ConversationQuality,
    Message,
    MessageCitation,
    MessageEmbedding,
)
from mmos_core.models import Fragment, Source

Embed = Callable[[list[str]], np.ndarray]

#: Quality tier of a matched source → `message_citations.source_quality_score` (0..100).
SOURCE_QUALITY_SCORE = {"primary": 100.0, "secondary": 70.0, "tertiary": 40.0}
#: Coherence scores (of the latest analysed messages) that feed one health point.
HEALTH_COHERENCE_WINDOW = 10
ANALYSIS_JOB_PREFIX = "conv-analyze-"
DEBATE_JOB_PREFIX = "conv-debate-"


class ConversationNotFound(LookupError):
    """No conversation / message / finding with that id."""


class ConversationBusy(RuntimeError):
    """The conversation is running a debate or an analysis; the action would race with it."""


@dataclass(frozen=True)
class EmbeddingModel:
    """Which embedder produced a vector: `name` (model folder, e.g. all-MiniLM-L6-v2) and `version`
    (first 12 hex digits of the ONNX file's SHA-256 from its manifest, or "unknown")."""

    name: str
    version: str

    @classmethod
    def of(cls, embedder: Any) -> EmbeddingModel:
        """Name and version of an `Embedder` / `CachingEmbedder` (from its `model_dir`)."""
        folder = getattr(embedder, "model_dir", None)
        if folder is None:
            return cls(name=get_settings().embedding_model, version="unknown")
        folder = Path(folder)
        version = "unknown"
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            version = manifest["files"]["model.onnx"]["sha256"][:12]
        except (OSError, KeyError, ValueError, TypeError):
            pass
        return cls(name=folder.name, version=version)


# --- creating -------------------------------------------------------------------------------------


def create_conversation(
    *, session: Session, parsed: ParsedConversation, user_id: int | None = None, status: str = "idle"
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
    return [create_conversation(session=session, parsed=p, user_id=user_id, status="queued").id for p in parsed]


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
        status="queued",
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
        .where(ConversationLoop.intervention_status.in_(("pending", "acknowledged")))
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
        q = q.where(ConversationLoop.intervention_status.in_(("pending", "acknowledged")))
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


# --- acknowledge / resolve ------------------------------------------------------------------------


def acknowledge_contradiction(*, session: Session, contradiction_id: int, user_id: int | None) -> Contradiction:
    """Mark a contradiction as seen by `user_id` (it stays open). Raises ConversationNotFound."""
    c = _get(session, Contradiction, contradiction_id)
    if not c.acknowledged:
        c.acknowledged, c.acknowledged_by, c.acknowledged_at = True, user_id, _utcnow()
    _refresh_flags(session, c.conversation_id)
    return c


def resolve_contradiction(*, session: Session, contradiction_id: int, user_id: int | None) -> Contradiction:
    """Close a contradiction (also acknowledges it). Later health points no longer count it."""
    c = _get(session, Contradiction, contradiction_id)
    now = _utcnow()
    if not c.acknowledged:
        c.acknowledged, c.acknowledged_by, c.acknowledged_at = True, user_id, now
    c.resolved, c.resolved_by, c.resolved_at = True, user_id, now
    _refresh_flags(session, c.conversation_id)
    return c


def acknowledge_loop(*, session: Session, loop_id: int, user_id: int | None) -> ConversationLoop:
    """pending → acknowledged (who and when are kept). Raises ConversationNotFound."""
    lp = _get(session, ConversationLoop, loop_id)
    if lp.intervention_status == "pending":
        lp.intervention_status, lp.acknowledged_by, lp.acknowledged_at = "acknowledged", user_id, _utcnow()
    _refresh_flags(session, lp.conversation_id)
    return lp


def resolve_loop(*, session: Session, loop_id: int, user_id: int | None, dismiss: bool = False) -> ConversationLoop:
    """Close a loop as resolved (or dismissed: "not a real loop"). A resolved loop that repeats again
    is reopened by the next analysis; a dismissed one stays dismissed."""
    lp = _get(session, ConversationLoop, loop_id)
    lp.intervention_status = "dismissed" if dismiss else "resolved"
    lp.resolved_by, lp.resolved_at = user_id, _utcnow()
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
            ConversationLoop.intervention_status.in_(("pending", "acknowledged")),
        )
    )
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(has_contradictions=bool(open_c), has_loops=bool(open_l))
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- search ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageHit:
    """A message found by vector search; `similarity` = 1 − cosine distance."""

    message_id: int
    conversation_id: int
    conversation_title: str
    sequence: int
    agent: str | None
    content: str
    similarity: float


def _ef_search(session: Session) -> None:
    # SET LOCAL lasts until the end of the caller's transaction; the value is an int we own.
    session.execute(text(f"SET LOCAL hnsw.ef_search = {int(get_settings().conversation_hnsw_ef_search)}"))


def search_messages(
    *, session: Session, query: str, conversation_id: int | None = None, limit: int = 20, embed: Embed | None = None
) -> list[MessageHit]:
    """Messages nearest in meaning to `query`, best first, across all conversations or within one.

    `embed` defaults to the registry's embedder behind the Redis cache.
    Raises:
        ValueError: empty query. EmbedderUnavailable: the embedder is not provisioned.
    """
    if not query or not query.strip():
        raise ValueError("Type something to search for.")
    if embed is None:
        from mmos_core.services.model_registry import cached_registry_embedder

        embed = cached_registry_embedder().embed
    vector = np.asarray(embed([query.strip()]), dtype=np.float32)[0]
    return search_by_vector(session=session, query_vector=vector, conversation_id=conversation_id, limit=limit)


def search_by_vector(
    *, session: Session, query_vector: np.ndarray, conversation_id: int | None = None, limit: int = 20
) -> list[MessageHit]:
    """Messages nearest to `query_vector` ((384,) unit vector), best first, across all conversations or
    within one (pgvector cosine distance on the HNSW index)."""
    _ef_search(session)
    vec = [float(x) for x in np.asarray(query_vector, dtype=np.float32).ravel()]
    distance = MessageEmbedding.embedding.cosine_distance(vec)
    q = (
        select(MessageEmbedding.message_id, distance.label("d"))
        .order_by(distance)
        .limit(limit)
    )
    if conversation_id is not None:
        q = q.where(MessageEmbedding.conversation_id == conversation_id)
    return _hits(session, [(mid, float(d)) for mid, d in session.execute(q).all()])


def similar_messages(
    *, session: Session, message_id: int, limit: int = 10, same_conversation: bool = False
) -> list[MessageHit]:
    """The messages most similar to message `message_id` (itself excluded), best first.

    Raises:
        ConversationNotFound: no such message, or it has not been embedded yet (analyse it first).
    """
    emb = session.scalars(select(MessageEmbedding).where(MessageEmbedding.message_id == message_id).limit(1)).first()
    if emb is None:
        if session.get(Message, message_id) is None:
            raise ConversationNotFound(f"Message {message_id} does not exist.")
        raise ConversationNotFound(f"Message {message_id} has no embedding yet: analyse its conversation first.")
    _ef_search(session)
    distance = MessageEmbedding.embedding.cosine_distance(emb.embedding)
    q = (
        select(MessageEmbedding.message_id, distance.label("d"))
        .where(MessageEmbedding.message_id != message_id, MessageEmbedding.embedding_model == emb.embedding_model)
        .order_by(distance)
        .limit(limit)
    )
    if same_conversation:
        q = q.where(MessageEmbedding.conversation_id == emb.conversation_id)
    return _hits(session, [(mid, float(d)) for mid, d in session.execute(q).all()])


def _hits(session: Session, found: list[tuple[int, float]]) -> list[MessageHit]:
    if not found:
        return []
    rows = {
        m.id: (m, title)
        for m, title in session.execute(
            select(Message, Conversation.title)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id.in_([mid for mid, _ in found]))
        ).all()
    }
    return [
        MessageHit(
            message_id=mid,
            conversation_id=rows[mid][0].conversation_id,
            conversation_title=rows[mid][1],
            sequence=rows[mid][0].sequence_number,
            agent=rows[mid][0].agent_name,
            content=rows[mid][0].content,
            similarity=1.0 - d,
        )
        for mid, d in found
        if mid in rows
    ]


# --- analysis -------------------------------------------------------------------------------------


@dataclass
class AnalysisOutcome:
    """What analysing one message produced. `candidates` = earlier messages it was compared with for
    contradictions (the pairs examined); timings in milliseconds."""

    message_id: int
    sequence: int
    candidates: int
    contradictions: list[ContradictionFinding] = field(default_factory=list)
    loop: LoopFinding | None = None
    citations: list[tuple[Citation, CitationCheck]] = field(default_factory=list)
    coherence: float | None = None
    health: HealthPoint | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


def pending_message_ids(*, session: Session, conversation_id: int, force: bool = False) -> list[int]:
    """Ids of the messages still to analyse (all of them with `force`), in sequence order."""
    q = select(Message.id).where(Message.conversation_id == conversation_id).order_by(Message.sequence_number)
    if not force:
        q = q.where(Message.analyzed_at.is_(None))
    return list(session.scalars(q))


def message_contents(*, session: Session, message_ids: Sequence[int]) -> dict[int, str]:
    """message id → content, for embedding a batch of messages in one call."""
    return dict(session.execute(select(Message.id, Message.content).where(Message.id.in_(list(message_ids)))).all())


def store_embeddings(
    *, session: Session, messages: Sequence[Message], vectors: np.ndarray, model: EmbeddingModel
) -> None:
    """Upsert the vectors ((n, 384) unit rows, in `messages` order) into `message_embeddings`."""
    if not len(messages):
        return
    rows = [
        {
            "message_id": m.id,
            "conversation_id": m.conversation_id,
            "sequence_number": m.sequence_number,
            "embedding": [float(x) for x in v],
            "embedding_model": model.name,
            "embedding_version": model.version,
        }
        for m, v in zip(messages, np.asarray(vectors, dtype=np.float32), strict=True)
    ]
    stmt = pg_insert(MessageEmbedding).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_message_embeddings_message_model",
            set_={"embedding": stmt.excluded.embedding, "embedding_version": stmt.excluded.embedding_version,
                  "sequence_number": stmt.excluded.sequence_number},
        )
    )


def _vector_of(session: Session, message: Message, model: EmbeddingModel, embed: Embed) -> np.ndarray:
    stored = session.scalar(
        select(MessageEmbedding.embedding).where(
            MessageEmbedding.message_id == message.id, MessageEmbedding.embedding_model == model.name
        )
    )
    if stored is not None:
        return np.asarray(stored, dtype=np.float32)
    vec = np.asarray(embed([message.content]), dtype=np.float32)[0]
    store_embeddings(session=session, messages=[message], vectors=vec[None, :], model=model)
    return vec


def _nearest_earlier(
    session: Session, message: Message, vector: np.ndarray, model: EmbeddingModel, k: int
) -> list[int]:
    """Ids of the k earlier messages of the same conversation nearest to `vector` (cosine).

    The HNSW index answers first. pgvector 0.6 (the embedded server's) filters *after* the index scan,
    which returns about `hnsw.ef_search` rows over all conversations; when the conversation holds
    only a small share of the index, fewer than k rows can survive the filter. Then the same query
    runs exactly over this conversation's earlier messages (ordering by `distance + 0` keeps the
    planner off the HNSW index and on the (conversation_id, sequence_number) btree).
    """
    if k <= 0 or message.sequence_number == 0:
        return []
    _ef_search(session)
    distance = MessageEmbedding.embedding.cosine_distance([float(x) for x in vector])
    base = select(MessageEmbedding.message_id).where(
        MessageEmbedding.conversation_id == message.conversation_id,
        MessageEmbedding.sequence_number < message.sequence_number,
        MessageEmbedding.embedding_model == model.name,
    )
    ids = list(session.scalars(base.order_by(distance).limit(k)))
    if len(ids) < min(k, message.sequence_number):
        ids = list(session.scalars(base.order_by(distance + 0).limit(k)))
    return ids


def _views(session: Session, ids: Sequence[int], model: EmbeddingModel) -> dict[int, MessageView]:
    if not ids:
        return {}
    rows = session.execute(
        select(Message, MessageEmbedding.embedding)
        .outerjoin(
            MessageEmbedding,
            (MessageEmbedding.message_id == Message.id) & (MessageEmbedding.embedding_model == model.name),
        )
        .where(Message.id.in_(list(ids)))
    ).all()
    return {m.id: _view(m, emb) for m, emb in rows}


def _view(m: Message, embedding: Any) -> MessageView:
    return MessageView(
        id=m.id,
        sequence=m.sequence_number,
        agent=m.agent_name or "",
        role=m.role,
        content=m.content,
        embedding=np.asarray(embedding, dtype=np.float32) if embedding is not None else None,
    )


def analyze_message(
    *, session: Session, message_id: int, embed: Embed, model: EmbeddingModel
) -> AnalysisOutcome:
    """Run every detector on one message against its candidates and persist the results (module docstring).

    Args:
        embed: texts → (n, 384) unit vectors (the registry embedder's `embed`).
        model: name/version recorded with the vectors (`EmbeddingModel.of(embedder)`).
    Raises:
        ConversationNotFound: no such message.
        mmos_core.embeddings.embedder.EmbedderUnavailable: from `embed`.
    """
    settings = get_settings()
    t0 = time.perf_counter()
    msg = session.get(Message, message_id)
    if msg is None:
        raise ConversationNotFound(f"Message {message_id} does not exist.")
    seq, conv_id = msg.sequence_number, msg.conversation_id
    vector = _vector_of(session, msg, model, embed)
    t_embed = time.perf_counter()

    nearest = _nearest_earlier(session, msg, vector, model, settings.conversation_candidate_k)
    window = max(settings.conversation_recent_turns, settings.conversation_loop_window)
    recent = list(
        session.scalars(
            select(Message.id)
            .where(Message.conversation_id == conv_id, Message.sequence_number < seq, Message.sequence_number >= seq - window)
            .order_by(Message.sequence_number)
        )
    )
    views = _views(session, list(dict.fromkeys(nearest + recent)), model)
    new = _view(msg, vector)
    by_seq = sorted(views.values(), key=lambda v: v.sequence)
    recent_turns = [v for v in by_seq if v.sequence >= seq - settings.conversation_recent_turns]
    candidate_ids = list(dict.fromkeys(nearest + [v.id for v in recent_turns]))
    candidates = [views[i] for i in candidate_ids if i in views]
    history = [v for v in by_seq]  # last `window` messages ∪ nearest, in conversation order
    t_fetch = time.perf_counter()

    findings = detect_contradictions(new, candidates, embed)
    t_contra = time.perf_counter()
    loop = detect_loop(new, history)
    t_loop = time.perf_counter()
    cites = [(c, _check_citation(session, c)) for c in extract_citations(msg.content)]
    t_cite = time.perf_counter()
    coherence = float(coherence_score(new, recent_turns))
    t_coh = time.perf_counter()

    _persist_contradictions(session, conv_id, msg, findings)
    _persist_loop(session, conv_id, msg, loop)
    _persist_citations(session, msg, cites)
    msg.coherence_score = _clamp(coherence)
    msg.has_citations = bool(cites)
    checked = [c.verified for _, c in cites if c.verified is not None]
    msg.citations_verified = (all(checked) if checked else None)
    session.flush()
    point, open_contradictions = _health_point(session, conv_id, seq)
    msg.health_score = _clamp(point.health_score)
    msg.analyzed_at = _utcnow()
    t_end = time.perf_counter()
    timings = {
        "embed": (t_embed - t0) * 1000,
        "candidates": (t_fetch - t_embed) * 1000,
        "contradictions": (t_contra - t_fetch) * 1000,
        "loops": (t_loop - t_contra) * 1000,
        "citations": (t_cite - t_loop) * 1000,
        "coherence": (t_coh - t_cite) * 1000,
        "persist": (t_end - t_coh) * 1000,
        "total": (t_end - t0) * 1000,
    }
    _persist_point(session, conv_id, msg, point, open_c=open_contradictions, candidates=len(candidates), timings=timings)
    return AnalysisOutcome(
        message_id=msg.id,
        sequence=seq,
        candidates=len(candidates),
        contradictions=findings,
        loop=loop,
        citations=cites,
        coherence=coherence,
        health=point,
        timings_ms=timings,
    )


def _clamp(x: float) -> float:
    return float(min(100.0, max(0.0, x)))


def _persist_contradictions(session: Session, conv_id: int, msg: Message, findings: Sequence[ContradictionFinding]) -> None:
    best: dict[int, ContradictionFinding] = {}
    for f in findings:
        other = f.message_a_id if f.message_b_id == msg.id else f.message_b_id
        if other == msg.id:
            continue
        if other not in best or f.probability > best[other].probability:
            best[other] = f
    # what this message no longer produces goes, unless a person already acted on it
    stale = delete(Contradiction).where(
        Contradiction.message_2_id == msg.id, Contradiction.acknowledged.is_(False), Contradiction.resolved.is_(False)
    )
    if best:
        stale = stale.where(Contradiction.message_1_id.not_in(list(best)))
    session.execute(stale)
    for other, f in best.items():
        statement_1, statement_2 = (f.statement_a, f.statement_b) if f.message_b_id == msg.id else (f.statement_b, f.statement_a)
        values = {
            "conversation_id": conv_id,
            "message_1_id": other,
            "message_2_id": msg.id,
            "severity": f.severity,
            "confidence": float(min(1.0, max(0.0, f.probability))),
            "semantic_similarity": float(min(1.0, max(-1.0, f.semantic_similarity))),
            "same_agent": bool(f.same_agent),
            "statement_1": statement_1,
            "statement_2": statement_2,
            "explanation": f.explanation,
            "resolution_suggestion": f.resolution_suggestion,
        }
        stmt = pg_insert(Contradiction).values(**values)
        keep = {k: stmt.excluded[k] for k in ("severity", "confidence", "semantic_similarity", "same_agent",
                                                "statement_1", "statement_2", "explanation", "resolution_suggestion")}
        session.execute(stmt.on_conflict_do_update(constraint="uq_contradictions_messages", set_=keep))


def _persist_loop(session: Session, conv_id: int, msg: Message, loop: LoopFinding | None) -> None:
    """One row per (conversation, pattern hash). `detection_metadata.occurrences` lists every message
    the loop was flagged at as [sequence, repetition_count, message_id], so the health point of any
    message sees the loop as it stood then (re-analysis gives the same curve)."""
    if loop is None:
        return
    seq = msg.sequence_number
    row = session.scalars(
        select(ConversationLoop)
        .where(ConversationLoop.conversation_id == conv_id, ConversationLoop.pattern_hash == loop.pattern_hash[:64])
        .with_for_update()
    ).first()
    occurrence = [seq, max(2, int(loop.repetition_count)), msg.id]
    if row is None:
        row = ConversationLoop(
            conversation_id=conv_id,
            pattern_hash=loop.pattern_hash[:64],
            intervention_status="pending",
            first_occurrence_message_id=loop.first_message_id,
            detection_metadata={"occurrences": []},
        )
        session.add(row)
    elif row.intervention_status == "resolved" and seq > max(o[0] for o in row.detection_metadata.get("occurrences", [[-1]])):
        # a resolved loop that repeats again is open again; a dismissed one stays dismissed
        row.intervention_status, row.resolved_at = "pending", None
    occurrences = {o[0]: o for o in (row.detection_metadata or {}).get("occurrences", [])}
    occurrences[seq] = occurrence
    ordered = [occurrences[k] for k in sorted(occurrences)]
    latest = ordered[-1]
    row.detection_metadata = {**(row.detection_metadata or {}), "occurrences": ordered}
    row.repetition_count = latest[1]
    row.last_occurrence_message_id = latest[2]
    row.loop_size = max(1, int(loop.pattern_size))
    row.similarity = float(min(1.0, max(0.0, loop.similarity)))
    row.intervention_message = loop.intervention_message
    row.pattern_description = (
        f"{row.loop_size} message(s) repeated {row.repetition_count}× (similarity {row.similarity:.2f})"
    )
    session.flush()


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


def _persist_citations(session: Session, msg: Message, cites: Sequence[tuple[Citation, CitationCheck]]) -> None:
    session.execute(delete(MessageCitation).where(MessageCitation.message_id == msg.id))
    now = _utcnow()
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


def _check_citation(session: Session, c: Citation) -> CitationCheck:
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


def _health_point(session: Session, conv_id: int, seq: int) -> tuple[HealthPoint, int]:
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


def _persist_point(
    session: Session, conv_id: int, msg: Message, point: HealthPoint, *, open_c: int, candidates: int,
    timings: dict[str, float],
) -> None:
    session.execute(delete(ConversationQuality).where(ConversationQuality.message_id == msg.id))
    loops = len(_loops_as_of(session, conv_id, msg.sequence_number))
    session.add(
        ConversationQuality(
            conversation_id=conv_id,
            message_id=msg.id,
            health_score=_clamp(point.health_score),
            coherence_score=_clamp(point.coherence_score),
            contradiction_score=_clamp(point.contradiction_score),
            loop_score=_clamp(point.loop_score),
            citation_score=_clamp(point.citation_score),
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
                current_health_score=_clamp(point.health_score),
                requires_intervention=bool(point.requires_intervention),
                has_contradictions=bool(open_c),
                has_loops=bool(loops),
            )
        )


# --- jobs (enqueued after commit) ------------------------------------------------------------------


def enqueue_analysis(conversation_id: int, *, force: bool = False, connection: Any = None) -> str:
    """Put `workers.conversations.analyze_conversation(conversation_id)` on the default RQ queue (one job
    per conversation, however many messages; idempotent per job id while one waits or runs).
    Call after the conversation was committed. Returns the RQ job id."""
    settings = get_settings()
    return _enqueue(
        "workers.conversations.analyze_conversation",
        conversation_id,
        {"force": force},
        job_id=f"{ANALYSIS_JOB_PREFIX}{conversation_id}",
        timeout=settings.conversation_job_timeout_s,
        description=f"analyse conversation {conversation_id}",
        connection=connection,
    )


def enqueue_debate(conversation_id: int, *, connection: Any = None) -> str:
    """Put `workers.conversations.run_debate(conversation_id)` on the default RQ queue (after commit)."""
    settings = get_settings()
    return _enqueue(
        "workers.conversations.run_debate",
        conversation_id,
        {},
        job_id=f"{DEBATE_JOB_PREFIX}{conversation_id}",
        timeout=settings.conversation_debate_timeout_s,
        description=f"debate {conversation_id}",
        connection=connection,
    )


def _enqueue(func_path: str, conversation_id: int, kwargs: dict[str, Any], *, job_id: str, timeout: int,
             description: str, connection: Any) -> str:
    from rq import Callback, Retry
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    from mmos_core.queue import get_queue

    queue = get_queue("default", connection)
    try:
        existing: Job | None = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        existing = None
    if existing is not None:
        if existing.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return job_id
        existing.delete()
    queue.enqueue(
        func_path,
        args=(conversation_id,),
        kwargs=kwargs,
        job_id=job_id,
        job_timeout=timeout,
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
        retry=Retry(max=2, interval=[30, 120]),
        on_failure=Callback("workers.conversations.on_conversation_job_failure"),
        description=description,
    )
    return job_id
