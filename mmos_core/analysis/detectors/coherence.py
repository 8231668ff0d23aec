"""Coherence: how a message relates to what it answers (docs/conversations.md).

relatedness = max(cos(new, answered), cos(new, context)) where *answered* is the latest earlier message
from another speaker (another agent name, else another role; the latest message when there is none) and
*context* is the normalised mean embedding of the last `CONTEXT_MESSAGES` earlier messages (a reply may
address the thread rather than the last turn). The score maps relatedness linearly from `FLOOR` (score 0)
to `CEILING` (score 100), clipped:

    coherence = 100 * clip((relatedness - FLOOR) / (CEILING - FLOOR), 0, 1)

`FLOOR` and `CEILING` were calibrated on real multi-agent logs (Who&When, docs/conversations.md): FLOOR is
about the 90th percentile of relatedness for a message placed after a random other conversation's turns
(so an off-topic message scores ~0), CEILING about the median for real replies (so a typical reply
scores ~100).

Without embeddings (either side) a lexical fallback is used: the share of the new message's content
words that occur in the answered message or context, mapped from `LEXICAL_FLOOR` to `LEXICAL_CEILING`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmos_core.analysis.detectors.text import content_words
from mmos_core.analysis.detectors.types import MessageView

__all__ = ["CEILING", "CONTEXT_MESSAGES", "FLOOR", "LEXICAL_CEILING", "LEXICAL_FLOOR", "coherence_score", "relatedness"]

FLOOR = 0.35
CEILING = 0.60
LEXICAL_FLOOR = 0.40
LEXICAL_CEILING = 0.65
CONTEXT_MESSAGES = 4


def _answered(new: MessageView, earlier: Sequence[MessageView]) -> MessageView:
    for m in reversed(earlier):
        if (new.agent and m.agent and m.agent != new.agent) or (not (new.agent and m.agent) and m.role != new.role):
            return m
    return earlier[-1]


def relatedness(new: MessageView, previous: Sequence[MessageView]) -> tuple[float, bool] | None:
    """(relatedness, embedded) of a message to what it answers, before mapping to 0..100.

    `embedded` is True when the cosine path was used, False for the lexical fallback; None when there is
    no earlier message to relate to.
    """
    earlier = sorted(
        (m for m in previous if m.id != new.id and m.sequence < new.sequence and m.content.strip()),
        key=lambda m: m.sequence,
    )
    if not earlier:
        return None
    answered = _answered(new, earlier)
    context = earlier[-CONTEXT_MESSAGES:]
    if new.embedding is not None and answered.embedding is not None and all(m.embedding is not None for m in context):
        v = np.asarray(new.embedding, dtype=np.float32)
        mean = np.mean([np.asarray(m.embedding, dtype=np.float32) for m in context], axis=0)
        norm = float(np.linalg.norm(mean))
        ctx = float(v @ mean / norm) if norm > 0 else 0.0
        return max(float(v @ np.asarray(answered.embedding, dtype=np.float32)), ctx), True
    mine = content_words(new.content)
    if not mine:
        return 0.0, False
    ans = content_words(answered.content)
    ctx_words = set().union(*(content_words(m.content) for m in context))
    return max(len(mine & ans), len(mine & ctx_words)) / len(mine), False


def coherence_score(new: MessageView, previous: Sequence[MessageView]) -> float:
    """0..100, how the new message relates to what it answers (see the module docstring for the formula).

    Args:
        new: the message to score.
        previous: earlier messages (the caller passes the last few; order does not matter, later ones and
            `new` itself are ignored).

    Returns:
        100.0 for the first message (it sets the topic) and 0.0 for an empty one; otherwise the mapped
        relatedness, rounded to 0.1.
    """
    if not new.content.strip():
        return 0.0
    r = relatedness(new, previous)
    if r is None:
        return 100.0
    value, embedded = r
    lo, hi = (FLOOR, CEILING) if embedded else (LEXICAL_FLOOR, LEXICAL_CEILING)
    return round(100.0 * float(np.clip((value - lo) / (hi - lo), 0.0, 1.0)), 1)
