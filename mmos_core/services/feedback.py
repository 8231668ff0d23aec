"""Reviewer feedback on model outputs (the catalog design `ai_user_feedback`) and regeneration of a chunk.

Feedback targets a fragment or a whole batch output; each row records the user, the model, the
task category and the browser session. *Regenerate* re-runs the fragment's chunk (with the same
or another model) as a new one-chunk batch whose `parent_batch_id` points at the original, so the
new output can be shown next to the old one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import Fragment, ProcessingBatch, SourceProcessing, UserFeedback
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.batches import QueuedJob, queue_extraction

TASK_CATEGORY = "fragment_extraction"


class FeedbackType(str, enum.Enum):
    """The catalog design's feedback types, plus `rating` for stars given alone."""

    like = "like"
    dislike = "dislike"
    regenerate = "regenerate"
    skip = "skip"
    rating = "rating"


class FeedbackError(ValueError):
    """Feedback refused (no permission, bad rating, unknown target); the message is safe to show."""


def from_widget(kind: str, value: int | None) -> tuple[FeedbackType, int | None] | None:
    """Map a Streamlit feedback widget to the catalog design's (feedback_type, quality_rating).

    `st.feedback("thumbs")` gives 1 (up) / 0 (down) → like / dislike; `st.feedback("stars")` gives 0-4 →
    a `rating` of 1-5 stars; plain buttons (`like`, `dislike`, `skip`, `regenerate`) map to themselves.
    Returns None when the widget was cleared (value None).
    """
    if kind == "thumbs":
        return None if value is None else (FeedbackType.like if value == 1 else FeedbackType.dislike, None)
    if kind == "stars":
        return None if value is None else (FeedbackType.rating, int(value) + 1)
    return FeedbackType(kind), None


def _summary(text: str | None) -> str | None:
    return text[:200] if text else None


def record_feedback(
    *,
    session: Session,
    user: CurrentUser,
    feedback_type: FeedbackType | str,
    fragment_id: int | None = None,
    batch_id: int | None = None,
    quality_rating: int | None = None,
    reason: str | None = None,
    session_id: str | None = None,
) -> UserFeedback:
    """Store one feedback entry on a fragment or (with only `batch_id`) on a whole batch. Does not commit.

    Raises:
        FeedbackError: role without `give_feedback`, rating outside 1-5, no or unknown target.
    """
    if not user.can(Permission.give_feedback):
        raise FeedbackError(f"Your role ({user.role.value}) cannot give feedback.")
    feedback_type = FeedbackType(feedback_type)
    if quality_rating is not None and not 1 <= quality_rating <= 5:
        raise FeedbackError("Ratings go from 1 to 5 stars.")
    chunk_id = None
    output = None
    if fragment_id is not None:
        fragment = session.get(Fragment, fragment_id)
        if fragment is None:
            raise FeedbackError(f"No fragment {fragment_id}.")
        batch_id, chunk_id, output = fragment.batch_id, fragment.chunk_id, fragment.content
    if batch_id is None:
        raise FeedbackError("Feedback needs a fragment or a batch.")
    batch = session.get(ProcessingBatch, batch_id)
    if batch is None:
        raise FeedbackError(f"No batch {batch_id}.")
    row = UserFeedback(
        user_id=user.id,
        fragment_id=fragment_id,
        batch_id=batch_id,
        chunk_id=chunk_id,
        model_name=batch.model_name,
        category_key=TASK_CATEGORY,
        feedback_type=feedback_type.value,
        quality_rating=quality_rating,
        reason=(reason or "").strip() or None,
        prompt_summary=_summary(f"{batch.prompt_version} on batch {batch.batch_code}"),
        output_summary=_summary(output),
        session_id=session_id,
    )
    session.add(row)
    session.flush()
    return row


def regenerate_fragment(
    *,
    session: Session,
    user: CurrentUser,
    fragment_id: int,
    model_name: str | None = None,
    reason: str | None = None,
    session_id: str | None = None,
) -> QueuedJob:
    """Record a `regenerate` on a fragment and queue its chunk again (same model unless `model_name`).

    Does not commit or enqueue: the caller commits, then `services.batches.enqueue_batches([job], session=session)`.

    Raises:
        FeedbackError: no permission, unknown fragment, or a fragment without a chunk (imported).
        mmos_core.llm.catalog.UnknownModelError: the model is not available.
    """
    fragment = session.get(Fragment, fragment_id)
    if fragment is None:
        raise FeedbackError(f"No fragment {fragment_id}.")
    if fragment.chunk_id is None:
        raise FeedbackError("This fragment has no chunk to regenerate (imported or legacy).")
    row = record_feedback(
        session=session, user=user, feedback_type=FeedbackType.regenerate, fragment_id=fragment_id,
        reason=reason, session_id=session_id,
    )
    original = session.get(ProcessingBatch, fragment.batch_id)
    assert original is not None
    [job] = queue_extraction(
        session=session,
        source_id=fragment.source_id,
        model_names=[model_name or original.model_name],
        processor_name=user.username,
        chunk_ids=[fragment.chunk_id],
        parent_batch_id=original.id,
    )
    row.regenerated_batch_id = job.batch_id
    return job


def regenerate_batch(
    *,
    session: Session,
    user: CurrentUser,
    batch_id: int,
    model_name: str | None = None,
    reason: str | None = None,
    session_id: str | None = None,
) -> QueuedJob:
    """Record a `regenerate` on a whole batch output and queue the same chunks again as a new batch.

    Does not commit or enqueue. Raises FeedbackError / UnknownModelError like `regenerate_fragment`.
    """
    row = record_feedback(
        session=session, user=user, feedback_type=FeedbackType.regenerate, batch_id=batch_id,
        reason=reason, session_id=session_id,
    )
    original = session.get(ProcessingBatch, batch_id)
    assert original is not None
    source_id = session.scalar(select(SourceProcessing.source_id).where(SourceProcessing.batch_id == batch_id))
    if source_id is None:
        raise FeedbackError("This batch has no source to run again.")
    [job] = queue_extraction(
        session=session,
        source_id=source_id,
        model_names=[model_name or original.model_name],
        processor_name=user.username,
        chunk_ids=original.chunk_scope,
        parent_batch_id=original.id,
    )
    row.regenerated_batch_id = job.batch_id
    return job


@dataclass(frozen=True)
class FeedbackCounts:
    """Feedback on one target: counts per type and mean stars (None without ratings)."""

    likes: int
    dislikes: int
    regenerates: int
    skips: int
    ratings: int
    mean_stars: float | None


def feedback_counts(*, session: Session, fragment_id: int | None = None, batch_id: int | None = None) -> FeedbackCounts:
    """Counts of the feedback given on a fragment, or on a batch (its own and its fragments')."""
    q = select(UserFeedback.feedback_type, func.count(), func.avg(UserFeedback.quality_rating), func.count(UserFeedback.quality_rating))
    if fragment_id is not None:
        q = q.where(UserFeedback.fragment_id == fragment_id)
    elif batch_id is not None:
        q = q.where(UserFeedback.batch_id == batch_id)
    else:
        raise FeedbackError("Counts need a fragment or a batch.")
    rows = session.execute(q.group_by(UserFeedback.feedback_type)).all()
    by_type = {t: n for t, n, _, _ in rows}
    rated = [(avg, n) for _, _, avg, n in rows if n]
    total = sum(n for _, n in rated)
    mean = sum(float(avg) * n for avg, n in rated) / total if total else None
    return FeedbackCounts(
        likes=by_type.get("like", 0),
        dislikes=by_type.get("dislike", 0),
        regenerates=by_type.get("regenerate", 0),
        skips=by_type.get("skip", 0),
        ratings=total,
        mean_stars=mean,
    )


def regenerations(*, session: Session, fragment_id: int) -> list[tuple[ProcessingBatch, list[Fragment]]]:
    """Batches that re-ran this fragment's chunk (newest first) with the fragments each produced for it."""
    fragment = session.get(Fragment, fragment_id)
    if fragment is None or fragment.chunk_id is None:
        return []
    batches = session.scalars(
        select(ProcessingBatch)
        .join(SourceProcessing, SourceProcessing.batch_id == ProcessingBatch.id)
        .where(
            ProcessingBatch.parent_batch_id == fragment.batch_id,
            ProcessingBatch.chunk_scope.any(fragment.chunk_id),
        )
        .order_by(ProcessingBatch.id.desc())
    ).all()
    return [
        (b, list(session.scalars(select(Fragment).where(Fragment.batch_id == b.id, Fragment.chunk_id == fragment.chunk_id))))
        for b in batches
    ]


# --- pairwise votes (Comparison page) -------------------------------------------------------------
#
# A vote on a matched pair (fragment of batch A against fragment of batch B) is stored as ordinary
# feedback rows, so the catalog's recommendations count it with no extra rule or table: a win is a
# `like` on the winner's fragment and a `dislike` on the loser's; a tie is a `skip` on both (skips are
# left out of the feedback posterior, docs/model-catalog.md). Both rows carry the pair in `reason`
# (`pairwise <a id>:<b id> <choice>`), which is how a changed vote replaces the reviewer's earlier one.

PAIR_CHOICES = ("A", "B", "tie")
_PAIR_PREFIX = "pairwise "


def _pair_key(fragment_a: int, fragment_b: int) -> str:
    return f"{_PAIR_PREFIX}{fragment_a}:{fragment_b} "


def record_pair_vote(
    *,
    session: Session,
    user: CurrentUser,
    fragment_a: int,
    fragment_b: int,
    choice: str,
    session_id: str | None = None,
) -> list[UserFeedback]:
    """Store `user`'s vote on a pair (A wins, B wins, or a tie), replacing their earlier vote on it.
    Does not commit.

    Returns:
        The two feedback rows written (winner's like and loser's dislike, or two skips).
    Raises:
        FeedbackError: no permission, an unknown choice, the same fragment twice, or an unknown fragment.
    """
    if choice not in PAIR_CHOICES:
        raise FeedbackError(f"A vote is one of {', '.join(PAIR_CHOICES)}, not {choice!r}.")
    if fragment_a == fragment_b:
        raise FeedbackError("A pair needs two different fragments.")
    if not user.can(Permission.give_feedback):
        raise FeedbackError(f"Your role ({user.role.value}) cannot give feedback.")
    key = _pair_key(fragment_a, fragment_b)
    for old in session.scalars(
        select(UserFeedback).where(UserFeedback.user_id == user.id, UserFeedback.reason.startswith(key, autoescape=True))
    ):
        session.delete(old)
    session.flush()
    kinds = {"A": ("like", "dislike"), "B": ("dislike", "like"), "tie": ("skip", "skip")}[choice]
    return [
        record_feedback(
            session=session, user=user, feedback_type=kind, fragment_id=fid, reason=key + choice, session_id=session_id,
        )
        for fid, kind in zip((fragment_a, fragment_b), kinds)
    ]


def pair_votes(*, session: Session, user: CurrentUser, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """`user`'s current vote ('A', 'B' or 'tie') on each of `pairs` (fragment ids A, B) that has one."""
    if not pairs:
        return {}
    wanted = {_pair_key(a, b): (a, b) for a, b in pairs}
    rows = session.scalars(
        select(UserFeedback.reason).where(
            UserFeedback.user_id == user.id,
            UserFeedback.reason.startswith(_PAIR_PREFIX),
            UserFeedback.fragment_id.in_({f for p in pairs for f in p}),
        )
    )
    out: dict[tuple[int, int], str] = {}
    for reason in rows:
        key, _, choice = (reason or "").rpartition(" ")
        pair = wanted.get(key + " ")
        if pair is not None and choice in PAIR_CHOICES:
            out[pair] = choice
    return out
