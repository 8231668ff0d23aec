"""The review queue: the next fragment waiting for a reviewer (the API's `GET /queue/next`, docs/api.md),
the Review page's queue mode (one fragment at a time, claimed so two reviewers do not take the same one),
"n of m" progress, and bulk verdicts. Never commits; the caller owns the transaction.

Waiting = neither verified nor rejected, and not already judged by this reviewer in `review_verdicts`
(several reviewers may judge one fragment). Oldest first, by id: the order fragments were published in.

Claims: serving a fragment to a reviewer sets the Redis key `mmos:review:claim:<fragment id>` to the
reviewer's user id with an expiry (`CLAIM_TTL_S`), only when no one else holds it (SET NX). A reviewer
is never served a fragment another reviewer holds; a claim ends with a verdict, a skip, or its expiry
(a reviewer who walks away frees their fragment after the TTL). Agreement mode does the opposite on
purpose: it serves fragments someone else already judged, and the reviewer's verdict is recorded with
`services.review.second_opinion` (docs/quality.md, "Reviewer verdicts with reasons"); claims are not
taken there, because several reviewers judging the same fragment is the point.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from redis import Redis
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from mmos_core.core.domain import RejectReason
from mmos_core.core.redis import get_redis
from mmos_core.models import Fragment, ProcessingBatch, ReviewVerdict
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.review import FragmentRow, ReviewError, get_fragment_row, reject, second_opinion, verify

#: seconds a served fragment stays reserved for its reviewer without a verdict
CLAIM_TTL_S = 600
#: candidates read per round while looking for one nobody else holds
_CANDIDATES = 50
_CLAIM_KEY = "mmos:review:claim:{}"

Verdict = Literal["verified", "rejected"]


@dataclass(frozen=True)
class NextForReview:
    """The oldest waiting fragment (None when none waits) and how many wait in the same scope."""

    fragment: FragmentRow | None
    waiting: int


@dataclass(frozen=True)
class QueueScope:
    """Which fragments the queue serves: one source and / or one batch (None = all)."""

    source_id: int | None = None
    batch_id: int | None = None


@dataclass(frozen=True)
class QueueProgress:
    """"n of m" figures. `mine`: fragments of the scope this reviewer has an own verdict on, of
    `scope_total`. `batch_*`: verdicts (verified or rejected, by anyone) on the served fragment's batch."""

    mine: int
    scope_total: int
    batch_code: str | None = None
    batch_judged: int = 0
    batch_total: int = 0


@dataclass(frozen=True)
class QueueItem:
    """What the queue serves: a fragment (None when nothing waits), how many wait, and progress."""

    fragment: FragmentRow | None
    waiting: int
    progress: QueueProgress


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a bulk verdict: codes of the fragments changed, and one message per refusal."""

    done: list[str]
    refused: list[str]


def _require(user: CurrentUser) -> None:
    if not user.can(Permission.review_fragments):
        raise ReviewError(f"Your role ({user.role.value}) cannot review fragments.")


def _scoped(q: Select, scope: QueueScope) -> Select:
    if scope.source_id is not None:
        q = q.where(Fragment.source_id == scope.source_id)
    if scope.batch_id is not None:
        q = q.where(Fragment.batch_id == scope.batch_id)
    return q


def _waiting(user: CurrentUser, source_id: int | None) -> Select:
    return _candidates(user, QueueScope(source_id=source_id), agreement=False)


def _candidates(user: CurrentUser, scope: QueueScope, *, agreement: bool) -> Select:
    """Ids of the fragments the queue may serve `user`: waiting ones, or (agreement) ones judged by others."""
    judged = select(ReviewVerdict.fragment_id).where(ReviewVerdict.user_id == user.id)
    q = select(Fragment.id).where(Fragment.id.not_in(judged))
    if agreement:
        q = q.where(or_(
            Fragment.verified.is_(True) & (Fragment.verified_by != user.username),
            Fragment.rejected.is_(True) & (Fragment.rejected_by != user.username),
        ))
    else:
        q = q.where(Fragment.verified.is_(False), Fragment.rejected.is_(False))
    return _scoped(q, scope)


def next_for_review(*, session: Session, user: CurrentUser, source_id: int | None = None) -> NextForReview:
    """The oldest fragment waiting for `user`'s verdict (of one source, or of all), and the waiting count.

    Raises:
        ReviewError: the user's role cannot review fragments.
    """
    _require(user)
    waiting = _waiting(user, source_id)
    count = int(session.scalar(select(func.count()).select_from(waiting.subquery())) or 0)
    first = session.scalar(waiting.order_by(Fragment.id).limit(1))
    return NextForReview(fragment=get_fragment_row(session=session, fragment_id=first) if first is not None else None, waiting=count)


# --- claims -------------------------------------------------------------------------------------


def claim(redis: Redis, user: CurrentUser, fragment_id: int, *, ttl_s: int = CLAIM_TTL_S) -> bool:
    """Reserve the fragment for `user` for `ttl_s` seconds. True when it is now theirs (new or renewed),
    False when another reviewer holds it."""
    key = _CLAIM_KEY.format(fragment_id)
    if redis.set(key, str(user.id), nx=True, ex=ttl_s):
        return True
    holder = redis.get(key)
    if holder is not None and int(holder) == user.id:
        redis.expire(key, ttl_s)
        return True
    return False


def release(redis: Redis, user: CurrentUser, fragment_id: int) -> None:
    """End `user`'s claim on the fragment (a no-op when someone else holds it or it expired)."""
    key = _CLAIM_KEY.format(fragment_id)
    holder = redis.get(key)
    if holder is not None and int(holder) == user.id:
        redis.delete(key)


def claimed_by(redis: Redis, fragment_id: int) -> int | None:
    """The user id holding the fragment, or None."""
    holder = redis.get(_CLAIM_KEY.format(fragment_id))
    return int(holder) if holder is not None else None


# --- the queue ----------------------------------------------------------------------------------


def progress(*, session: Session, user: CurrentUser, scope: QueueScope, batch_id: int | None = None) -> QueueProgress:
    """This reviewer's own verdicts in the scope of its fragments, and verdicts on `batch_id`'s fragments."""
    total = int(session.scalar(_scoped(select(func.count(Fragment.id)), scope)) or 0)
    mine = int(session.scalar(_scoped(
        select(func.count(ReviewVerdict.id)).join(Fragment, Fragment.id == ReviewVerdict.fragment_id)
        .where(ReviewVerdict.user_id == user.id), scope,
    )) or 0)
    if batch_id is None:
        return QueueProgress(mine=mine, scope_total=total)
    judged, n = session.execute(
        select(func.count().filter(Fragment.verified.is_(True) | Fragment.rejected.is_(True)), func.count())
        .where(Fragment.batch_id == batch_id)
    ).one()
    code = session.scalar(select(ProcessingBatch.batch_code).where(ProcessingBatch.id == batch_id))
    return QueueProgress(mine=mine, scope_total=total, batch_code=code, batch_judged=int(judged), batch_total=int(n))


def claim_next(
    *,
    session: Session,
    user: CurrentUser,
    scope: QueueScope = QueueScope(),
    agreement: bool = False,
    exclude: Collection[int] = (),
    redis: Redis | None = None,
    ttl_s: int = CLAIM_TTL_S,
) -> QueueItem:
    """Serve `user` the oldest fragment of `scope` they may take, claimed for `ttl_s` seconds.

    Args:
        agreement: serve fragments someone else judged (for `second_opinion`); no claims are taken.
        exclude: fragment ids not to serve (those the reviewer skipped or already saw this session).
        redis: the claims' Redis (default: the process's connection).
    Returns:
        A `QueueItem`; its `fragment` is None when nothing in scope waits or every waiting one is held
        by someone else. `waiting` counts the candidates (held ones included, `exclude` not).
    Raises:
        ReviewError: the role cannot review fragments.
    """
    _require(user)
    redis = redis or get_redis()
    candidates = _candidates(user, scope, agreement=agreement)
    if exclude:
        candidates = candidates.where(Fragment.id.not_in(list(exclude)))
    waiting = int(session.scalar(select(func.count()).select_from(candidates.subquery())) or 0)
    chosen: int | None = None
    after = 0
    while chosen is None:
        ids = list(session.scalars(candidates.where(Fragment.id > after).order_by(Fragment.id).limit(_CANDIDATES)))
        if not ids:
            break
        for fid in ids:
            if agreement or claim(redis, user, fid, ttl_s=ttl_s):
                chosen = fid
                break
        after = ids[-1]
    row = get_fragment_row(session=session, fragment_id=chosen) if chosen is not None else None
    prog = progress(session=session, user=user, scope=scope, batch_id=row.batch_id if row else scope.batch_id)
    return QueueItem(fragment=row, waiting=waiting, progress=prog)


def judge(
    *,
    session: Session,
    user: CurrentUser,
    fragment_id: int,
    verdict: Verdict,
    reason: str | None = None,
    agreement: bool = False,
    redis: Redis | None = None,
) -> None:
    """Record `user`'s verdict on a served fragment and end their claim on it. Does not commit.

    In agreement mode (or on a fragment someone else already judged) the verdict is the reviewer's own
    (`second_opinion`); otherwise it is the fragment's verdict (`verify` / `reject`, `reason` for a rejection).

    Raises:
        ReviewError: as `services.review.verify` / `reject` / `second_opinion`.
    """
    if verdict not in ("verified", "rejected"):
        raise ReviewError(f"A verdict is 'verified' or 'rejected', not {verdict!r}.")
    if agreement:
        second_opinion(session=session, user=user, fragment_id=fragment_id, verdict=verdict, reason=reason)
    elif verdict == "verified":
        verify(session=session, user=user, fragment_id=fragment_id)
    else:
        reject(session=session, user=user, fragment_id=fragment_id, reason=reason)
    release(redis or get_redis(), user, fragment_id)


def bulk_verdict(
    *, session: Session, user: CurrentUser, fragment_ids: Sequence[int], verdict: Verdict, reason: str | None = None
) -> BulkResult:
    """Verify or reject each of `fragment_ids` (in a savepoint each: one refusal leaves the others done).
    Does not commit.

    Returns:
        `BulkResult`: the codes changed and, per refused fragment, why (someone else's verdict, unknown id).
    Raises:
        ReviewError: the role cannot review, an unknown verdict or reason (nothing is changed then).
    """
    _require(user)
    if verdict not in ("verified", "rejected"):
        raise ReviewError(f"A verdict is 'verified' or 'rejected', not {verdict!r}.")
    if verdict == "rejected" and reason and reason not in {r.value for r in RejectReason}:
        raise ReviewError(f"Unknown reject reason {reason!r}; choose one of {', '.join(r.value for r in RejectReason)}.")
    done: list[str] = []
    refused: list[str] = []
    for fid in fragment_ids:
        try:
            with session.begin_nested():
                if verdict == "verified":
                    f = verify(session=session, user=user, fragment_id=fid)
                else:
                    f = reject(session=session, user=user, fragment_id=fid, reason=reason)
            done.append(f.fragment_code)
        except ReviewError as exc:
            refused.append(str(exc))
    return BulkResult(done=done, refused=refused)
