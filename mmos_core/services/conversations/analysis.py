"""Analysing one message: embed it, pick its candidates, run the detectors and persist what they find.

`analyze_message` (one message, after it arrived; docs/conversations.md, "Analysis jobs"):
  1. embed the message (or reuse its stored vector) into `message_embeddings`;
  2. candidates = the `conversation_candidate_k` nearest *earlier* messages of the same conversation
     (pgvector `<=>` ORDER BY … LIMIT k on the HNSW index) ∪ the last `conversation_recent_turns`
     messages — so each message is compared with O(k) others, never with all earlier ones;
  3. contradictions (new vs candidates), loop (new vs the last `conversation_loop_window` messages ∪
     the nearest ones), citations (extracted, checked against known sources and fragments), coherence
     (new vs the latest messages);
  4. persists contradictions (one row per message pair, acknowledgements kept), the loop (one row per
     pattern hash, extended as it goes on), the message's citations, and one `conversation_quality`
     point for this message (health from `mmos_core.analysis.detectors.health_point`).
  Re-analysing a message replaces what it produced (idempotent).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.analysis.detectors import (
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
)
from mmos_core.core.config import get_settings
from mmos_core.core.domain import InterventionStatus
from mmos_core.core.vectors import Embed
from mmos_core.models.conversations import Contradiction, ConversationLoop, Message, MessageEmbedding
from mmos_core.services.conversations.citations import check_citation, persist_citations
from mmos_core.services.conversations.embeddings import EmbeddingModel, set_ef_search, store_embeddings
from mmos_core.services.conversations.health import clamp_score, health_point_at, persist_point
from mmos_core.services.conversations.store import ConversationNotFound


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
    set_ef_search(session)
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
    cites = [(c, check_citation(session, c)) for c in extract_citations(msg.content)]
    t_cite = time.perf_counter()
    coherence = float(coherence_score(new, recent_turns))
    t_coh = time.perf_counter()

    _persist_contradictions(session, conv_id, msg, findings)
    _persist_loop(session, conv_id, msg, loop)
    persist_citations(session, msg, cites)
    msg.coherence_score = clamp_score(coherence)
    msg.has_citations = bool(cites)
    checked = [c.verified for _, c in cites if c.verified is not None]
    msg.citations_verified = (all(checked) if checked else None)
    session.flush()
    point, open_contradictions = health_point_at(session, conv_id, seq)
    msg.health_score = clamp_score(point.health_score)
    msg.analyzed_at = dt.datetime.now(dt.UTC)
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
    persist_point(session, conv_id, msg, point, open_c=open_contradictions, candidates=len(candidates), timings=timings)
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
            intervention_status=InterventionStatus.pending.value,
            first_occurrence_message_id=loop.first_message_id,
            detection_metadata={"occurrences": []},
        )
        session.add(row)
    elif row.intervention_status == InterventionStatus.resolved.value and seq > max(o[0] for o in row.detection_metadata.get("occurrences", [[-1]])):
        # a resolved loop that repeats again is open again; a dismissed one stays dismissed
        row.intervention_status, row.resolved_at = InterventionStatus.pending.value, None
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
