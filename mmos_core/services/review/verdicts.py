"""Verdicts on fragments: verify, reject, or put back to pending.

Verdicts belong to their author (see `mmos_core.services.auth.can_change_verdict`): a reviewer cannot
change another reviewer's verdict, an admin can. Every function takes `session=` and never commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from mmos_core.models import Fragment
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
    session.flush()
    return fragment


def reject(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Mark the fragment rejected by `user` (now), clearing any verification. Does not commit.

    Raises:
        ReviewError: as `verify`.
    """
    fragment = fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=True, username=user.username)
    session.flush()
    return fragment


def reset_verdict(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Put the fragment back to pending (no verdict). Does not commit.

    Raises:
        ReviewError: as `verify`.
    """
    fragment = fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=False, username=None)
    session.flush()
    return fragment
