"""Semantic search over messages: a text or a vector against every message (or one conversation's),
and the messages nearest to a given message, both on the HNSW index (docs/conversations.md, "Search").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.core.vectors import Embed
from mmos_core.models.conversations import Conversation, Message, MessageEmbedding
from mmos_core.services.conversations.embeddings import set_ef_search
from mmos_core.services.conversations.store import ConversationNotFound
from mmos_core.services.model_registry import cached_registry_embedder


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
        embed = cached_registry_embedder().embed
    vector = np.asarray(embed([query.strip()]), dtype=np.float32)[0]
    return search_by_vector(session=session, query_vector=vector, conversation_id=conversation_id, limit=limit)


def search_by_vector(
    *, session: Session, query_vector: np.ndarray, conversation_id: int | None = None, limit: int = 20
) -> list[MessageHit]:
    """Messages nearest to `query_vector` ((384,) unit vector), best first, across all conversations or
    within one (pgvector cosine distance on the HNSW index)."""
    set_ef_search(session)
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
    set_ef_search(session)
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
