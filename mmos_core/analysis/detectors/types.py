"""Shared input types for the conversation detectors (docs/conversations.md).

The detectors are pure functions over these views: no database, no network. The caller (the RQ jobs in
`workers/`) loads messages and their embeddings from PostgreSQL and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmos_core.core.vectors import Embed

__all__ = ["Embed", "MessageView"]


@dataclass(frozen=True)
class MessageView:
    """One conversation message as the detectors see it.

    Attributes:
        id: `messages.id` (any int in pure tests).
        sequence: 0-based position in the conversation.
        agent: agent name, "" when unknown.
        role: "user" | "assistant" | "system" | "tool".
        content: the message text.
        embedding: (384,) float32 unit vector from our all-MiniLM-L6-v2 ONNX embedder, or None when the
            message has not been embedded (detectors then fall back to lexical evidence only).
    """

    id: int
    sequence: int
    agent: str
    role: str
    content: str
    embedding: np.ndarray | None = None


"""texts -> (n, 384) float32 unit vectors (e.g. `Embedder.embed`)."""
