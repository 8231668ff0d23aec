"""Personal API tokens (docs/api.md): create, check, list and revoke; never commits.

A token is `mmos_` + `secrets.token_urlsafe(32)` (256 random bits). Only its SHA-256 (hex) is stored:
for a secret with that much entropy a fast unsalted hash is the standard choice (a slow password hash
such as argon2 protects *guessable* secrets; nobody can enumerate 2^256 tokens, and a fast hash lets
every request be checked with one indexed look-up). The token itself is returned once, at creation.

A token acts as its owner with the owner's role *as it is now*: demoting or deactivating the owner
applies to their tokens at once, as it does to their UI sessions (`services.auth.reload_user`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mmos_core.models import ApiToken, User
from mmos_core.services.auth import AuthError, CurrentUser, Permission, Role

#: Prefix of every token: lets secret scanners and people recognise one (docs/api.md).
TOKEN_PREFIX = "mmos_"
#: Random bytes per token (`secrets.token_urlsafe`): 32 bytes = 256 bits.
TOKEN_BYTES = 32
MAX_NAME_LENGTH = 100


class TokenNotFound(LookupError):
    """No such token (or not one the acting user may see); the message is safe to show."""


@dataclass(frozen=True)
class TokenRow:
    """One token as listed: never the token nor its hash. Times are timezone-aware UTC."""

    id: int
    user_id: int
    username: str
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        """Whether the token is still accepted (not revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True)
class NewToken:
    """A token just created: `token` is the secret, shown this once and stored only as its hash."""

    token: str
    row: TokenRow


def token_sha256(token: str) -> str:
    """Hex SHA-256 (64 characters) of the token string's UTF-8 bytes: what `api_tokens.token_sha256` holds."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _row(token: ApiToken, username: str) -> TokenRow:
    return TokenRow(
        id=token.id, user_id=token.user_id, username=username, name=token.name,
        created_at=token.created_at, last_used_at=token.last_used_at, revoked_at=token.revoked_at,
    )


def create_token(*, session: Session, user_id: int, name: str) -> NewToken:
    """Create a token for the (active) user `user_id`. Does not commit.

    Returns:
        The token string (shown once) and its listed row.
    Raises:
        AuthError: unknown or deactivated user, or a name that is empty or over MAX_NAME_LENGTH characters.
    """
    name = (name or "").strip()
    if not name:
        raise AuthError("A token needs a name (what it is for).")
    if len(name) > MAX_NAME_LENGTH:
        raise AuthError(f"Token names have at most {MAX_NAME_LENGTH} characters.")
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise AuthError("Tokens can only be created for an active account.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(user_id=user.id, name=name, token_sha256=token_sha256(token))
    session.add(row)
    session.flush()
    session.refresh(row)  # created_at comes from the server default
    return NewToken(token=token, row=_row(row, user.username))


def verify_token(*, session: Session, token: str, now: dt.datetime | None = None) -> CurrentUser | None:
    """The user a presented token acts for, recording its use; None when it is unknown, revoked or its owner inactive.

    Sets `last_used_at` to `now` (default: the current UTC time). Does not commit.
    """
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_sha256(token)
    found = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_sha256 == digest)
    ).first()
    if found is None:
        return None
    row, user = found
    # looked up by the hash of the presented token: timing reveals nothing about a stored token
    if row.revoked_at is not None or not user.is_active:
        return None
    session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now or dt.datetime.now(dt.UTC)))
    return CurrentUser(id=user.id, username=user.username, display_name=user.display_name, role=Role(user.role))


def list_tokens(*, session: Session, actor: CurrentUser, all_users: bool = False) -> list[TokenRow]:
    """The actor's tokens (every user's with `all_users`, for those who manage users), newest first.

    Raises:
        AuthError: `all_users` asked by someone without `manage_users`.
    """
    if all_users and not actor.can(Permission.manage_users):
        raise AuthError("Only an administrator may list everyone's tokens.")
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    if not all_users:
        q = q.where(ApiToken.user_id == actor.id)
    return [_row(t, username) for t, username in session.execute(q)]


def revoke_token(*, session: Session, actor: CurrentUser, token_id: int) -> TokenRow:
    """Revoke a token now (idempotent: an already revoked one keeps its time). Does not commit.

    Anyone may revoke their own tokens; those who manage users may revoke anyone's.

    Raises:
        TokenNotFound: no such token, or it is someone else's and the actor does not manage users.
    """
    found = session.execute(
        select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).where(ApiToken.id == token_id)
    ).first()
    if found is None or (found[0].user_id != actor.id and not actor.can(Permission.manage_users)):
        raise TokenNotFound(f"No token {token_id}.")
    token, username = found
    if token.revoked_at is None:
        token.revoked_at = dt.datetime.now(dt.UTC)
        session.flush()
    return _row(token, username)
