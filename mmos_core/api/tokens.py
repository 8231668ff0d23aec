"""`/tokens`: create a personal API token with a username and password, list and revoke tokens (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mmos_core.api.auth import AnyUser, DbSession
from mmos_core.api.errors import ApiError
from mmos_core.api.serialize import to_json
from mmos_core.services.api_tokens import MAX_NAME_LENGTH, TokenRow, create_token, list_tokens, revoke_token
from mmos_core.services.auth import AuthError, Permission, authenticate

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenRequest(BaseModel):
    """`POST /tokens`: the account's credentials and what the token is for."""

    username: str
    password: str
    name: str = Field("api", min_length=1, max_length=MAX_NAME_LENGTH, description="What the token is for (shown in lists).")


def _row(row: TokenRow) -> dict[str, Any]:
    return to_json(row, extra=("active",))


@router.post("", status_code=201, summary="Create a token (username and password; the token is shown once)")
def create(body: TokenRequest, session: DbSession) -> dict[str, Any]:
    """Check the local account's password (`services.auth.authenticate`, argon2id) and create a token for it
    (`services.api_tokens.create_token`). The answer's `token` is the only time it is shown; only its
    SHA-256 is stored. 401: wrong username or password, or a deactivated account."""
    try:
        user = authenticate(session=session, username=body.username, password=body.password)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None
    new = create_token(session=session, user_id=user.id, name=body.name)
    return {"token": new.token, "role": user.role.value, **_row(new.row)}


@router.get("", summary="List tokens (yours; everyone's with all=true for admins)")
def listing(
    user: AnyUser, session: DbSession, all_users: Annotated[bool, Query(alias="all")] = False
) -> list[dict[str, Any]]:
    """Your tokens, newest first: name, created, last used, revoked (never the token). 403: `all` without
    the manage_users permission."""
    if all_users and not user.can(Permission.manage_users):
        raise ApiError(403, f"Your role ({user.role.value}) may list only its own tokens.")
    return [_row(r) for r in list_tokens(session=session, actor=user, all_users=all_users)]


@router.delete("/{token_id}", summary="Revoke a token")
def revoke(user: AnyUser, session: DbSession, token_id: int) -> dict[str, Any]:
    """Revoke one of your tokens (an admin: anyone's); requests with it get 401 from now on. Idempotent.
    404: no such token of yours."""
    return _row(revoke_token(session=session, actor=user, token_id=token_id))
