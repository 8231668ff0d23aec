"""Who calls the HTTP API and in which transaction (docs/api.md "Authentication").

Every route but `/health` and `POST /tokens` takes `Authorization: Bearer <token>`: a personal token
(`services.api_tokens`) acting with its owner's role and the UI's permissions (`services.auth.Permission`).
No token, an unknown or revoked one → 401; a role without the route's permission → 403.

Routes declare the user before the session (`user: Annotated[CurrentUser, Depends(require(...))]`,
then `session: DbSession`): the token is checked and its use recorded in a short transaction of its
own, committed before the route's transaction opens, so a request holds one pooled connection at a
time and a failed request still counts as a use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from mmos_core.api.errors import ApiError
from mmos_core.core.db import session_scope
from mmos_core.services.api_tokens import verify_token
from mmos_core.services.auth import CurrentUser, Permission

# auto_error=False: a missing header is our 401 with our body, not FastAPI's 403
_bearer = HTTPBearer(auto_error=False, description="A personal API token: `POST /tokens` or `mmos users token create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def db_session() -> Iterator[Session]:
    """The route's one transaction (`core.db.session_scope`): committed after the route returns and before
    the response is sent, rolled back when it raises. Jobs enqueued with `session=` go to RQ on that commit."""
    with session_scope() as session:
        yield session


#: A route's session; scope="function" ends the transaction before the response leaves (a client that
#: polls right after a 201 sees the rows).
DbSession = Annotated[Session, Depends(db_session, scope="function")]


def _user_for(token: str | None) -> CurrentUser:
    if not token:
        raise ApiError(401, "This endpoint needs a token: send `Authorization: Bearer <token>` (POST /tokens creates one).", _CHALLENGE)
    with session_scope() as session:
        user = verify_token(session=session, token=token)
    if user is None:
        raise ApiError(401, "The token is unknown or revoked, or its account is deactivated.", _CHALLENGE)
    return user


def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> CurrentUser:
    """The token's owner as the UI would see them now.

    Raises:
        ApiError: 401 without a bearer token, or with an unknown or revoked one, or an inactive owner.
    """
    return _user_for(credentials.credentials if credentials else None)


def _needs_token(route: object) -> bool:
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        if dependant.call is current_user:
            return True
        stack.extend(dependant.dependencies)
    return False


def token_refusal(request: Request) -> ApiError | None:
    """The 401 a request would get from its route's token check, or None (a public route, a valid token).

    FastAPI decodes a JSON body before it runs the dependencies; `api.errors` asks this first so that a
    malformed body tells nothing to a caller without a token.
    """
    if not _needs_token(request.scope.get("route")):
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        _user_for(token.strip() if scheme.lower() == "bearer" else None)
    except ApiError as refusal:
        return refusal
    return None


def require(permission: Permission) -> Callable[..., CurrentUser]:
    """A dependency giving the token's user once their role grants `permission`.

    Raises (from the dependency):
        ApiError: 401 as `current_user`; 403 when the role lacks `permission`.
    """

    def dependency(user: Annotated[CurrentUser, Depends(current_user)]) -> CurrentUser:
        if not user.can(permission):
            raise ApiError(403, f"Your role ({user.role.value}) does not have the {permission.value} permission.")
        return user

    dependency.__name__ = f"require_{permission.value}"
    return dependency


#: Any valid token, whatever the role (its own tokens).
AnyUser = Annotated[CurrentUser, Depends(current_user)]
