"""Browser sign-in sessions (docs/sessions.md): only SHA-256 digests of their secrets are stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.models.base import Base, now


class WebSession(Base):
    """One sign-in of one browser: lives until `expires_at`, sign-out, deactivation or a password reset.

    A row starts *pending*: `claim_sha256` is the digest of a one-time code (valid until
    `claim_expires_at`, about a minute) that the signed-in page hands to the browser, which trades it
    at the session route for the cookie. Claiming sets `token_sha256` (the digest of the cookie's
    token) and clears the claim columns. Both digests are hex SHA-256 of the UTF-8 secret; neither
    secret is stored. `revoked_reason` says why it ended early (`sign_out`, `deactivated`,
    `password_reset`). Times are timezone-aware UTC.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    claim_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    claim_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
