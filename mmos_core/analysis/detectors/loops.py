"""Loop (repetition) detection across conversation turns (docs/conversations.md).

Two messages are *near-duplicates* when their word-trigram Jaccard is >= `NGRAM_JACCARD` or, when both are
embedded, their cosine is >= `EMBEDDING_COSINE` (restating the same argument in other words). The newest
message closes a loop in one of two ways:

* **cycle**: the conversation's last `size x count` messages repeat a block of `size` consecutive messages
  (`size` 1..`MAX_PATTERN_SIZE`), e.g. A: X, B: Y, A: X', B: Y' is size 2, count 2. Needs the contiguous
  run of history right before the new message.
* **recurring argument**: the new message near-duplicates earlier messages anywhere in the history (the
  caller adds the nearest neighbours from the vector index): size 1, count = 1 + those messages.

A loop is reported when `count >= 2` and `size x count >= MIN_LOOP_MESSAGES` (so one restatement is not a
loop, but a two-message exchange repeated twice, or one argument made three times, is). Cost: O(h) pair
similarities for h history messages (cycles only look at the last `MAX_PATTERN_SIZE x MAX_CYCLE_REPEATS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmos_core.analysis.detectors.text import jaccard, shingles
from mmos_core.analysis.detectors.types import MessageView

__all__ = [
    "EMBEDDING_COSINE",
    "MAX_PATTERN_SIZE",
    "MIN_LOOP_MESSAGES",
    "NGRAM_JACCARD",
    "LoopFinding",
    "detect_loop",
    "message_similarity",
    "pattern_hash",
]

NGRAM_JACCARD = 0.5
"""Word-trigram Jaccard at or above which two messages are near-duplicates (verbatim-ish repeats)."""
EMBEDDING_COSINE = 0.9
"""Embedding cosine at or above which two messages are near-duplicates (the same point reworded).
all-MiniLM-L6-v2 gives ~0.5-0.8 to different turns on one topic, ~0.9+ to restatements (docs/conversations.md)."""
MAX_PATTERN_SIZE = 4
"""Longest block of consecutive messages looked for as a repeating cycle."""
MAX_CYCLE_REPEATS = 8
"""Cycles are counted back at most this many repetitions (bounds the work)."""
MIN_LOOP_MESSAGES = 3
"""A loop covers at least this many messages (size x count) besides needing count >= 2."""
_SIGNATURE_SHINGLES = 6


@dataclass(frozen=True)
class LoopFinding:
    """A repeated pattern of messages ending at the newest message.

    Attributes:
        pattern_hash: 16-byte hex digest (32 chars) of the pattern's normalised shingle signature
            (`pattern_hash`); rewordings that keep most trigrams usually keep the hash, so the caller can
            update an open loop instead of opening a new one (match also on overlapping message ids).
        pattern_size: messages in one repetition of the pattern (1 = one message repeated).
        repetition_count: how many times the pattern occurs, the newest occurrence included (>= 2).
        first_message_id, last_message_id: first message of the first occurrence; the newest message.
        similarity: mean similarity (max of trigram Jaccard and cosine) of the matched message pairs, 0..1.
        intervention_message: a message a moderator can post to break the loop.
    """

    pattern_hash: str
    pattern_size: int
    repetition_count: int
    first_message_id: int
    last_message_id: int
    similarity: float
    intervention_message: str


def message_similarity(a: MessageView, b: MessageView, sh_a: set[str] | None = None, sh_b: set[str] | None = None) -> float:
    """max(trigram Jaccard, embedding cosine) of two messages, 0..1 (cosine only when both are embedded).

    Near-duplicates are pairs where the Jaccard reaches `NGRAM_JACCARD` or the cosine `EMBEDDING_COSINE`;
    `_near_duplicate` tests that. `sh_a` / `sh_b` are precomputed `shingles(...)` (optional).
    """
    return _similarity(a, b, sh_a, sh_b)[0]


def _similarity(a: MessageView, b: MessageView, sh_a: set[str] | None, sh_b: set[str] | None) -> tuple[float, bool]:
    j = jaccard(sh_a if sh_a is not None else shingles(a.content), sh_b if sh_b is not None else shingles(b.content))
    cos = 0.0
    if a.embedding is not None and b.embedding is not None:
        cos = float(np.clip(np.dot(a.embedding, b.embedding), 0.0, 1.0))
    return max(j, cos), (j >= NGRAM_JACCARD or cos >= EMBEDDING_COSINE)


def pattern_hash(contents: Sequence[str]) -> str:
    """Stable hex digest of a pattern: per message the `_SIGNATURE_SHINGLES` trigrams with the smallest
    SHA-1 (a bottom-k MinHash signature, so near-duplicates tend to share it), signatures sorted (so the
    hash does not depend on which message of a cycle came last), then BLAKE2b-128."""
    signatures = []
    for text in contents:
        sh = sorted(shingles(text), key=lambda s: hashlib.sha1(s.encode()).digest())[:_SIGNATURE_SHINGLES]
        signatures.append("|".join(sorted(sh)))
    return hashlib.blake2b("\n".join(sorted(signatures)).encode(), digest_size=16).hexdigest()


def _excerpt(text: str, limit: int = 120) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1].rstrip() + "…"


def _intervention(size: int, count: int, block: Sequence[MessageView], first_seq: int) -> str:
    if size == 1:
        who = f"{block[0].agent} has" if block[0].agent else "This point has"
        what = f'{who} now made the same point {count} times (since message #{first_seq + 1}): "{_excerpt(block[0].content)}"'
    else:
        agents = sorted({m.agent for m in block if m.agent})
        between = f" between {', '.join(agents)}" if agents else ""
        what = f"The same {size}-message exchange{between} has now repeated {count} times (since message #{first_seq + 1})"
    return (
        f"{what}. Please stop restating it. In one sentence each, state where you agree and where you still "
        "disagree, then either bring new evidence, propose a concrete next step, or agree to close this point."
    )


def detect_loop(new: MessageView, history: Sequence[MessageView]) -> LoopFinding | None:
    """The loop the new message closes, if any (see the module docstring for the rules).

    Args:
        new: the newest message.
        history: earlier messages, any order (the caller passes the last N plus nearest neighbours);
            duplicates by id, messages with a sequence >= new.sequence, and "system"/"tool" messages are ignored.

    Returns:
        The finding covering the most messages (cycle or recurring argument; ties: the smaller size),
        or None when nothing reaches the thresholds. O(len(history)) similarity computations.
    """
    if not new.content.strip() or new.role in ("system", "tool"):
        return None
    seen: dict[int, MessageView] = {}
    for m in history:
        if m.id != new.id and m.sequence < new.sequence and m.role not in ("system", "tool") and m.content.strip():
            seen[m.id] = m
    earlier = sorted(seen.values(), key=lambda m: m.sequence)
    if not earlier:
        return None
    sh_cache: dict[int, set[str]] = {}

    def sh(m: MessageView) -> set[str]:
        if m.id not in sh_cache:
            sh_cache[m.id] = shingles(m.content)
        return sh_cache[m.id]

    candidates: list[tuple[int, int, list[float], list[MessageView], list[MessageView]]] = []
    # (covered, size, similarities, newest block, first block)

    # cycles: the contiguous run of messages right before `new`
    run = [new]
    by_seq = {m.sequence: m for m in earlier}
    while len(run) < MAX_PATTERN_SIZE * MAX_CYCLE_REPEATS and (new.sequence - len(run)) in by_seq:
        run.insert(0, by_seq[new.sequence - len(run)])
    for size in range(1, MAX_PATTERN_SIZE + 1):
        last = run[-size:]
        if len(last) < size:
            break
        sims: list[float] = []
        count = 1
        first_block = last
        while (count + 1) * size <= len(run):
            block = run[-(count + 1) * size : -count * size]
            pair = [_similarity(x, y, sh(x), sh(y)) for x, y in zip(block, last, strict=True)]
            if not all(dup for _, dup in pair):
                break
            sims += [s for s, _ in pair]
            count += 1
            first_block = block
        if count >= 2 and size * count >= MIN_LOOP_MESSAGES:
            # a size-2 cycle of one repeated message (A A A A) is really a size-1 loop: keep the smallest size
            candidates.append((size * count, size, sims, last, first_block))

    # recurring argument: near-duplicates of `new` anywhere in the history
    dups = []
    for m in earlier:
        s, dup = _similarity(m, new, sh(m), sh(new))
        if dup:
            dups.append((m, s))
    if len(dups) + 1 >= max(2, MIN_LOOP_MESSAGES):
        candidates.append((len(dups) + 1, 1, [s for _, s in dups], [new], [dups[0][0]]))

    if not candidates:
        return None
    covered, size, sims, last, first_block = max(candidates, key=lambda c: (c[0], -c[1]))
    count = covered // size
    return LoopFinding(
        pattern_hash=pattern_hash([m.content for m in last]),
        pattern_size=size,
        repetition_count=count,
        first_message_id=first_block[0].id,
        last_message_id=new.id,
        similarity=round(float(np.mean(sims)) if sims else 1.0, 4),
        intervention_message=_intervention(size, count, last, first_block[0].sequence),
    )
