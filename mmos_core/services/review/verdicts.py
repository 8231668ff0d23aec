"""Verdicts on fragments: verify, reject, or put back to pending.

Verdicts belong to their author (see `mmos_core.services.auth.can_change_verdict`): a reviewer cannot
change another reviewer's verdict, an admin can. Every verdict is also kept as the reviewer's own row in
`review_verdicts`, and `second_opinion` adds one without touching the fragment's verdict, so the agreement
between reviewers can be measured (`services.calibration`). A rejection may carry a `RejectReason`.
Every function takes `session=` and never commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.core.domain import RejectReason
from mmos_core.models import Fragment, ReviewVerdict
from mmos_core.services.auth import CurrentUser, can_change_verdict
from mmos_core.services.review.fragments import ReviewError, fragment_for_review


def _verdict_by(fragment: Fragment) -> str | None:
    return fragment.verified_by if fragment.verified else fragment.rejected_by if fragment.rejected else None


def _check_owner(user: CurrentUser, fragment: Fragment) -> None:
    author = _verdict_by(fragment)
    if not can_change_verdict(user, author):
        raise ReviewError(
            f"{fragment.fragment_code} was judged by {author}; only they or an admin can change that verdict."
        )


def _reason(reason: str | None) -> str | None:
    if reason is None or reason == "":
        return None
    try:
        return RejectReason(reason).value
    except ValueError:
        allowed = ", ".join(r.value for r in RejectReason)
        raise ReviewError(f"Unknown reject reason {reason!r}; choose one of {allowed}.") from None


def _record_own(session: Session, user: CurrentUser, fragment_id: int, verdict: str | None, reason: str | None) -> None:
    """Upsert (or, with `verdict` None, delete) the reviewer's own row in `review_verdicts`."""
    if verdict is None:
        session.execute(delete(ReviewVerdict).where(ReviewVerdict.fragment_id == fragment_id, ReviewVerdict.user_id == user.id))
        return
    stmt = pg_insert(ReviewVerdict).values(fragment_id=fragment_id, user_id=user.id, verdict=verdict, reason=reason)
    session.execute(stmt.on_conflict_do_update(
        constraint="uq_review_verdicts_fragment_user",
        set_={"verdict": stmt.excluded.verdict, "reason": stmt.excluded.reason, "updated_at": func.now()},
    ))


def _set_verdict(fragment: Fragment, *, verified: bool, rejected: bool, username: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    fragment.verified = verified
    fragment.verified_by = username if verified else None
    fragment.verified_at = now if verified else None
    fragment.rejected = rejected
    fragment.rejected_by = username if rejected else None
    fragment.rejected_at = now if rejected else None


def verify(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Mark the fragment verified by `user` (now), clearing any rejection. Does not commit.

    Raises:
        ReviewError: the role cannot review, unknown fragment, or the current verdict is someone
            else's and the user may not override it.
    """
    fragment = fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=True, rejected=False, username=user.username)
    fragment.reject_reason = None
    _record_own(session, user, fragment.id, "verified", None)
    session.flush()
    return fragment


def reject(*, session: Session, user: CurrentUser, fragment_id: int, reason: str | None = None) -> Fragment:
    """Mark the fragment rejected by `user` (now), clearing any verification. Does not commit.

    Args:
        reason: why (`RejectReason`: misquote, wrong_speaker, unsupported_insight, wrong_category, trivial);
            the calibration report checks each automatic check against the matching reason.
    Raises:
        ReviewError: as `verify`, or an unknown reason.
    """
    why = _reason(reason)
    fragment = fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=True, username=user.username)
    fragment.reject_reason = why
    _record_own(session, user, fragment.id, "rejected", why)
    session.flush()
    return fragment


def second_opinion(
    *, session: Session, user: CurrentUser, fragment_id: int, verdict: str, reason: str | None = None
) -> None:
    """Record `user`'s own verdict ('verified' or 'rejected') on a fragment someone else already judged,
    for the reviewer-agreement report; the fragment's verdict stays its author's. Does not commit.

    Raises:
        ReviewError: the role cannot review, no such fragment, an unknown verdict or reason.
    """
    if verdict not in ("verified", "rejected"):
        raise ReviewError(f"A verdict is 'verified' or 'rejected', not {verdict!r}.")
    why = _reason(reason) if verdict == "rejected" else None
    fragment = fragment_for_review(session, user, fragment_id)
    _record_own(session, user, fragment.id, verdict, why)
    session.flush()


def reset_verdict(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Put the fragment back to pending (no verdict). Does not commit.

    Raises:
        ReviewError: as `verify`.
    """
    fragment = fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=False, username=None)
    fragment.reject_reason = None
    _record_own(session, user, fragment.id, None, None)
    session.flush()
    return fragment
