"""Browser sign-in sessions (docs/sessions.md): start, claim, check and end; never commits.

A sign-in starts a *pending* session and returns a one-time claim code (`secrets.token_urlsafe(32)`,
valid CLAIM_TTL). The signed-in page hands that code to the browser, which trades it at the session
route (`mmos_core/session_routes.py`) for the session token, set there as an HttpOnly cookie: the
token exists only in that HTTP response and the browser's cookie jar. Both secrets carry 256 random
bits and are stored only as their SHA-256 (hex): for secrets that cannot be guessed a fast unsalted
hash is the standard choice, and it lets every run be checked with one indexed look-up.

A session is valid while it is neither revoked nor past `expires_at` (created + `session_ttl_hours`,
absolute, not sliding) and its account is active. The account is read afresh at every check, so
a role change applies at the next run and a deactivation ends the session at once (it is also
revoked, with every other session of the account, by `services.users`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mmos_core.models import User, WebSession
from mmos_core.services.auth import CurrentUser, Role

#: Random bytes per token and per claim code (`secrets.token_urlsafe`): 32 bytes = 256 bits.
SECRET_BYTES = 32
#: How long the browser has to trade the claim code for its cookie after the sign-in.
CLAIM_TTL = dt.timedelta(seconds=90)
#: `last_seen_at` is rewritten at most this often (a run per click must not mean a write per click).
SEEN_RESOLUTION = dt.timedelta(minutes=5)
#: Longest secret accepted from a browser (token_urlsafe(32) is 43 characters).
MAX_SECRET_CHARS = 128


@dataclass(frozen=True)
class StartedSession:
    """A session just started: `claim_code` is the one-time secret for the browser (shown to no one)."""

    session_id: int
    claim_code: str
    claim_expires_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class IssuedToken:
    """The cookie's token, returned once when a claim code is traded; `max_age_s` is whole seconds to expiry."""

    session_id: int
    token: str
    expires_at: dt.datetime
    max_age_s: int


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and its account as it is now; `claimed` is False until the browser holds the cookie."""

    session_id: int
    user: CurrentUser
    expires_at: dt.datetime
    claimed: bool


def secret_sha256(secret: str) -> str:
    """Hex SHA-256 (64 characters) of a token's or claim code's UTF-8 bytes: what the table stores."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _usable(secret: object) -> bool:
    return isinstance(secret, str) and 0 < len(secret) <= MAX_SECRET_CHARS


def start_session(
    *, session: Session, user_id: int, ttl_hours: float, now: dt.datetime | None = None
) -> StartedSession:
    """Start a pending session for the (active) account `user_id`, valid `ttl_hours` hours. Does not commit.

    Returns:
        The session id and its one-time claim code (valid CLAIM_TTL from `now`).
    Raises:
        ValueError: `ttl_hours` is not positive, or the account is unknown or deactivated.
    """
    if not ttl_hours > 0:
        raise ValueError(f"ttl_hours must be positive, got {ttl_hours!r}")
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise ValueError(f"no active account with id {user_id}")
    now = _now(now)
    code = secrets.token_urlsafe(SECRET_BYTES)
    claim_expires_at, expires_at = now + CLAIM_TTL, now + dt.timedelta(hours=ttl_hours)
    row = WebSession(
        user_id=user_id,
        claim_sha256=secret_sha256(code),
        claim_expires_at=claim_expires_at,
        created_at=now,
        expires_at=expires_at,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return StartedSession(session_id=row.id, claim_code=code, claim_expires_at=claim_expires_at, expires_at=expires_at)


def claim_session(*, session: Session, claim_code: str, now: dt.datetime | None = None) -> IssuedToken | None:
    """Trade a one-time claim code for the session's cookie token. Does not commit.

    The code works once, before its `claim_expires_at`, while the session is valid and its account
    active; the row is locked so two concurrent claims cannot both succeed.

    Returns:
        The token (to set as the cookie, never stored) with the session's expiry; None when the code
        is unknown, used, expired or its session no longer valid.
    """
    if not _usable(claim_code):
        return None
    now = _now(now)
    row = session.scalar(
        select(WebSession).where(WebSession.claim_sha256 == secret_sha256(claim_code)).with_for_update()
    )
    if row is None or row.claim_expires_at is None or row.claim_expires_at <= now:
        return None
    if _check(session, row, now) is None:
        return None
    token = secrets.token_urlsafe(SECRET_BYTES)
    row.token_sha256 = secret_sha256(token)
    row.claim_sha256 = None
    row.claim_expires_at = None
    session.flush()
    max_age = int((row.expires_at - now).total_seconds())
    return IssuedToken(session_id=row.id, token=token, expires_at=row.expires_at, max_age_s=max(max_age, 0))


def _check(session: Session, row: WebSession, now: dt.datetime) -> ActiveSession | None:
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    current = CurrentUser(id=user.id, username=user.username, display_name=user.display_name, role=Role(user.role))
    return ActiveSession(session_id=row.id, user=current, expires_at=row.expires_at, claimed=row.token_sha256 is not None)


def check_session(
    *,
    session: Session,
    session_id: int | None = None,
    token: str | None = None,
    now: dt.datetime | None = None,
) -> ActiveSession | None:
    """The valid session named by `session_id` (what a browser tab's server-side state holds) or by the
    cookie's `token`, with its account as it is now; refreshes `last_seen_at` every SEEN_RESOLUTION.
    Does not commit.

    Returns:
        None when neither is given, the session is unknown, revoked or expired, or its account is
        deactivated or deleted.
    """
    now = _now(now)
    if session_id is not None:
        row = session.get(WebSession, session_id)
    elif _usable(token):
        row = session.scalar(select(WebSession).where(WebSession.token_sha256 == secret_sha256(token)))  # type: ignore[arg-type]
    else:
        return None
    if row is None:
        return None
    active = _check(session, row, now)
    if active is not None and (row.last_seen_at is None or now - row.last_seen_at >= SEEN_RESOLUTION):
        session.execute(update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now))
    return active


def end_session(
    *,
    session: Session,
    session_id: int | None = None,
    token: str | None = None,
    reason: str = "sign_out",
    now: dt.datetime | None = None,
) -> bool:
    """Revoke one session (by id or by its cookie token) now. Idempotent. Does not commit.

    Returns:
        True when a session was revoked by this call; False when none matched or it was already revoked.
    """
    if session_id is not None:
        where = WebSession.id == session_id
    elif _usable(token):
        where = WebSession.token_sha256 == secret_sha256(token)  # type: ignore[arg-type]
    else:
        return False
    result = session.execute(
        update(WebSession)
        .where(where, WebSession.revoked_at.is_(None))
        .values(revoked_at=_now(now), revoked_reason=reason, claim_sha256=None, claim_expires_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_user_sessions(*, session: Session, user_id: int, reason: str, now: dt.datetime | None = None) -> int:
    """Revoke every live session of an account (deactivation, password reset). Does not commit.

    Returns:
        How many sessions were revoked by this call.
    """
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=_now(now), revoked_reason=reason, claim_sha256=None, claim_expires_at=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
