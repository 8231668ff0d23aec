"""Account administration (README.md "Pages and roles"): list accounts, change roles, (de)activate, reset passwords.

Every function takes the acting user (`actor`) and refuses with `AuthError` unless that user may
manage users. No function returns or logs a password hash: `UserRow` has no field for it.
The last active administrator can be neither demoted nor deactivated, so the workbench always has
someone who can manage accounts. Deactivating an account or resetting its password also ends every
browser session it has (docs/sessions.md): the person must sign in again. Functions never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import User
from mmos_core.services.auth import AuthError, CurrentUser, Permission, Role, create_user, hash_password
from mmos_core.services.web_sessions import end_user_sessions


@dataclass(frozen=True)
class UserRow:
    """One account as the Users page lists it (identity, role, state; never the password hash)."""

    id: int
    username: str
    display_name: str | None
    email: str | None
    role: Role
    is_active: bool
    local_password: bool
    single_sign_on: bool
    created_at: dt.datetime | None
    last_login_at: dt.datetime | None


def _check_admin(actor: CurrentUser | None) -> None:
    if actor is None or not actor.can(Permission.manage_users):
        raise AuthError("Only an administrator may manage accounts.")


def _row(user: User) -> UserRow:
    return UserRow(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=Role(user.role),
        is_active=user.is_active,
        local_password=user.password_hash is not None,
        single_sign_on=user.oidc_subject is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise AuthError(f"No account with id {user_id}.")
    return user


def _active_admins(session: Session) -> int:
    # Lock the admin rows so two concurrent demotions cannot both see "another admin remains".
    ids = session.scalars(
        select(User.id).where(User.role == Role.admin.value, User.is_active.is_(True)).with_for_update()
    ).all()
    return len(ids)


def _refuse_losing_last_admin(session: Session, user: User) -> None:
    if user.role == Role.admin.value and user.is_active and _active_admins(session) <= 1:
        raise AuthError("This is the last active administrator: make another administrator first.")


def list_users(*, session: Session, actor: CurrentUser) -> list[UserRow]:
    """Every account, active ones first, then by username.

    Raises:
        AuthError: `actor` may not manage users.
    """
    _check_admin(actor)
    users = session.scalars(select(User).order_by(User.is_active.desc(), User.username)).all()
    return [_row(u) for u in users]


def add_user(
    *,
    session: Session,
    actor: CurrentUser,
    username: str,
    role: Role | str,
    password: str,
    password_again: str,
    display_name: str | None = None,
    email: str | None = None,
) -> UserRow:
    """Create a local account (the password typed twice). Does not commit.

    Raises:
        AuthError: `actor` may not manage users, the passwords differ or are too short, the username
            or e-mail is taken, or the role is unknown.
    """
    _check_admin(actor)
    if password != password_again:
        raise AuthError("The two passwords differ.")
    email = (email or "").strip().lower() or None
    if email and session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        raise AuthError(f"The e-mail {email!r} is already used by another account.")
    created = create_user(
        session=session, username=username, role=role, password=password, display_name=display_name, email=email
    )
    return _row(_get(session, created.id))


def set_role(*, session: Session, actor: CurrentUser, user_id: int, role: Role | str) -> UserRow:
    """Give an account another role. Does not commit.

    Raises:
        AuthError: `actor` may not manage users, unknown account or role, or demoting the last active admin.
    """
    _check_admin(actor)
    try:
        role = Role(role)
    except ValueError:
        raise AuthError(f"Unknown role {role!r}; use one of {', '.join(r.value for r in Role)}.") from None
    user = _get(session, user_id)
    if role is not Role.admin:
        _refuse_losing_last_admin(session, user)
    user.role = role.value
    session.flush()
    return _row(user)


def set_active(*, session: Session, actor: CurrentUser, user_id: int, active: bool) -> UserRow:
    """Deactivate (no sign-in possible, its browser sessions ended) or reactivate an account. Does not commit.

    Raises:
        AuthError: `actor` may not manage users, unknown account, or deactivating the last active admin.
    """
    _check_admin(actor)
    user = _get(session, user_id)
    if not active:
        _refuse_losing_last_admin(session, user)
    user.is_active = active
    if not active:
        end_user_sessions(session=session, user_id=user.id, reason="deactivated")
    session.flush()
    return _row(user)


def reset_password(
    *, session: Session, actor: CurrentUser, user_id: int, password: str, password_again: str | None = None
) -> UserRow:
    """Set a new local password for an account (argon2id) and end its browser sessions (docs/sessions.md),
    the acting admin's own included when they reset their own password. Does not commit.

    Raises:
        AuthError: `actor` may not manage users, unknown account, passwords differ or too short.
    """
    _check_admin(actor)
    if password_again is not None and password != password_again:
        raise AuthError("The two passwords differ.")
    user = _get(session, user_id)
    user.password_hash = hash_password(password)
    end_user_sessions(session=session, user_id=user.id, reason="password_reset")
    session.flush()
    return _row(user)


def find_user(*, session: Session, actor: CurrentUser, username: str) -> UserRow:
    """The account called `username` (case-insensitive).

    Raises:
        AuthError: `actor` may not manage users, or no such account.
    """
    _check_admin(actor)
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise AuthError(f"No account named {username!r}.")
    return _row(user)


def system_actor() -> CurrentUser:
    """The acting identity of the `mmos users` command line (whoever can run it owns the database)."""
    return CurrentUser(id=0, username="mmos-cli", display_name="command line", role=Role.admin)
