"""Message vectors: which embedder produced them (`EmbeddingModel`), storing them in
`message_embeddings`, reading message texts to embed in batches, and the HNSW search setting every
nearest-message query uses (docs/conversations.md, "Storage" and "Analysis jobs").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.core.config import get_settings
from mmos_core.models.conversations import Message, MessageEmbedding


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


def set_ef_search(session: Session) -> None:
    """Set pgvector's `hnsw.ef_search` (MMOS_CONVERSATION_HNSW_EF_SEARCH) for the caller's transaction."""
    # SET LOCAL lasts until the end of the caller's transaction; the value is an int we own.
    session.execute(text(f"SET LOCAL hnsw.ef_search = {int(get_settings().conversation_hnsw_ef_search)}"))


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
