"""Reviewers' judgements as a preference dataset (chosen vs rejected answer to the same prompt), for
reward models and DPO (docs/export.md, "Preference pairs").

A pair is two fragments extracted from the same source chunk and judged by the same person:

1. *Verdict pairs* (`pair_source="verdict"`): in `review_verdicts`, every fragment a reviewer
   verified × every fragment of the same chunk the same reviewer rejected. `reason` is the
   rejection's reason (misquote, wrong_speaker, unsupported_insight, wrong_category, trivial, or null).
2. *Feedback pairs* (`pair_source="feedback"`): in `ai_user_feedback`, a user's latest feedback on
   each fragment counts: `like` or 4-5 stars is positive, `dislike` or 1-2 stars negative (3 stars,
   `skip` and `regenerate` are neither). Every positive × every negative fragment of the same chunk
   by the same user is a pair (a regenerated chunk's fragments share the chunk, so "regenerate, then
   like the new answer" pairs with the disliked old one); `reason` is the negative feedback's text.
   A pair already given by the same person's verdicts is not repeated.

Left out: fragments without a chunk (legacy imports), feedback without a user or on a whole batch
(no chunk to be the prompt), pairs whose two texts are equal after trimming, and judgements by two
different people (a pair always states one person's preference). `prompt` is the chunk's text,
`source.content[chunk.char_start:chunk.char_end]`; pairs come ordered by source code, chunk, chosen
and rejected fragment code. Every function takes `session=` and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.models import Fragment, ProcessingBatch, ReviewVerdict, Source, SourceChunk, User, UserFeedback

__all__ = ["PREFERENCE_FIELDS", "PreferencePair", "preference_pairs", "preference_records"]


@dataclass(frozen=True)
class PreferencePair:
    """One person's preference between two fragments of one chunk; see the module docstring for how pairs form.

    `prompt`: the chunk text; `chosen`/`rejected`: the fragments' content; `reviewer`: a username;
    `reason`: why the rejected one lost (a reject reason or feedback text), or None; `pair_source`:
    "verdict" | "feedback"; `chunk_location`: the chunk's label ("¶3–5", "p. 12, ¶48").
    """

    prompt: str
    chosen: str
    rejected: str
    reviewer: str
    reason: str | None
    pair_source: str
    source_code: str
    chunk_index: int
    chunk_location: str
    chosen_fragment: str
    rejected_fragment: str
    chosen_model: str
    rejected_model: str
    chosen_type: str
    rejected_type: str


#: Keys of each JSONL record, in order.
PREFERENCE_FIELDS = [f for f in PreferencePair.__dataclass_fields__]


@dataclass(frozen=True)
class _Judged:
    fragment_id: int
    code: str
    content: str
    fragment_type: str
    model: str
    chunk_id: int


def _judged_columns():
    return (Fragment.id, Fragment.fragment_code, Fragment.content, Fragment.fragment_type, ProcessingBatch.model_name, Fragment.chunk_id)


def _where_sources(stmt, source_ids: Sequence[int]):
    stmt = stmt.join(ProcessingBatch, ProcessingBatch.id == Fragment.batch_id).where(Fragment.chunk_id.is_not(None))
    return stmt.where(Fragment.source_id.in_(source_ids)) if source_ids else stmt


def _verdict_groups(session: Session, source_ids: Sequence[int]) -> dict[tuple[int, str], tuple[list, list]]:
    stmt = _where_sources(
        select(User.username, ReviewVerdict.verdict, ReviewVerdict.reason, *_judged_columns())
        .join(Fragment, Fragment.id == ReviewVerdict.fragment_id)
        .join(User, User.id == ReviewVerdict.user_id),
        source_ids,
    )
    groups: dict[tuple[int, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    for username, verdict, reason, *cols in session.execute(stmt):
        judged = _Judged(*cols)
        side = 0 if verdict == "verified" else 1
        groups[(judged.chunk_id, username)][side].append((judged, reason))
    return groups


def _polarity(feedback_type: str, rating: int | None) -> int:
    if feedback_type == "like" or (feedback_type == "rating" and rating is not None and rating >= 4):
        return 1
    if feedback_type == "dislike" or (feedback_type == "rating" and rating is not None and rating <= 2):
        return -1
    return 0


def _feedback_groups(session: Session, source_ids: Sequence[int]) -> dict[tuple[int, str], tuple[list, list]]:
    stmt = _where_sources(
        select(User.username, UserFeedback.feedback_type, UserFeedback.quality_rating, UserFeedback.reason, *_judged_columns())
        .join(Fragment, Fragment.id == UserFeedback.fragment_id)
        .join(User, User.id == UserFeedback.user_id),
        source_ids,
    ).order_by(UserFeedback.created_at, UserFeedback.id)
    latest: dict[tuple[str, int], tuple[int, str | None, _Judged]] = {}
    for username, kind, rating, reason, *cols in session.execute(stmt):
        judged = _Judged(*cols)
        latest[(username, judged.fragment_id)] = (_polarity(kind, rating), reason, judged)  # later rows win
    groups: dict[tuple[int, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    for (username, _), (polarity, reason, judged) in latest.items():
        if polarity:
            groups[(judged.chunk_id, username)][0 if polarity > 0 else 1].append((judged, reason))
    return groups


def preference_pairs(*, session: Session, source_ids: Sequence[int] = ()) -> list[PreferencePair]:
    """Preference pairs of the given sources (all sources when empty), formed as the module docstring says.

    Returns:
        Pairs ordered by source code, chunk index, chosen and rejected fragment code; verdict
        pairs before feedback pairs of the same two fragments and person (which are then dropped).
    """
    found: dict[tuple[int, int, str], tuple[str, str | None, _Judged, _Judged]] = {}
    for pair_source, groups in (("verdict", _verdict_groups(session, source_ids)), ("feedback", _feedback_groups(session, source_ids))):
        for (_, person), (good, bad) in groups.items():
            for chosen, _ in good:
                for rejected, reason in bad:
                    key = (chosen.fragment_id, rejected.fragment_id, person)
                    if key not in found and chosen.content.strip() != rejected.content.strip():
                        found[key] = (pair_source, reason, chosen, rejected)
    if not found:
        return []
    chunk_ids = {v[2].chunk_id for v in found.values()}
    chunks = {
        c.id: (c, code, content)
        for c, code, content in session.execute(
            select(SourceChunk, Source.source_code, Source.content)
            .join(Source, Source.id == SourceChunk.source_id)
            .where(SourceChunk.id.in_(chunk_ids))
        )
    }
    pairs = []
    for (_, _, person), (pair_source, reason, chosen, rejected) in found.items():
        chunk, code, content = chunks[chosen.chunk_id]
        pairs.append(
            PreferencePair(
                prompt=content[chunk.char_start : chunk.char_end], chosen=chosen.content, rejected=rejected.content,
                reviewer=person, reason=reason, pair_source=pair_source, source_code=code, chunk_index=chunk.chunk_index,
                chunk_location=chunk.location_label, chosen_fragment=chosen.code, rejected_fragment=rejected.code,
                chosen_model=chosen.model, rejected_model=rejected.model,
                chosen_type=chosen.fragment_type, rejected_type=rejected.fragment_type,
            )
        )
    order = {p: i for i, p in enumerate(("verdict", "feedback"))}
    pairs.sort(key=lambda p: (p.source_code, p.chunk_index, p.chosen_fragment, p.rejected_fragment, order[p.pair_source], p.reviewer))
    return pairs


def preference_records(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    """The pairs as JSON-ready dicts with the keys `PREFERENCE_FIELDS` (one JSONL line each)."""
    return [asdict(p) for p in pairs]
