"""Personal API tokens (docs/api.md): only the SHA-256 of each token is stored, never the token."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.models.base import Base, now


class ApiToken(Base):
    """A token a user created for the HTTP API; it acts with its owner's role as it is now.

    `token_sha256` is the hex SHA-256 of the token string (docs/api.md "Tokens at rest"); a token is
    usable while `revoked_at` is null and its owner is active.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
