"""Users, roles and what each role may do; password hashing with argon2-cffi (argon2id).

Roles (README.md "Pages and roles"): analysts add and extract sources and compare models; reviewers judge fragments
and give feedback; managers watch cost and quality and set budgets and models; admins do all of it
and manage users. A verdict belongs to whoever gave it: only its author or an admin changes it.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import User

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 8


class Role(str, enum.Enum):
    """The four roles."""

    analyst = "analyst"
    reviewer = "reviewer"
    manager = "manager"
    admin = "admin"


class Permission(str, enum.Enum):
    """Actions a page checks before offering them."""

    add_sources = "add_sources"
    queue_extraction = "queue_extraction"
    view_comparison = "view_comparison"
    review_fragments = "review_fragments"
    give_feedback = "give_feedback"
    manage_queue = "manage_queue"
    view_coverage = "view_coverage"
    #: the Inference monitor and Conversations pages (read-only health of models and agents)
    view_monitoring = "view_monitoring"
    view_dashboard = "view_dashboard"
    change_budgets = "change_budgets"
    manage_models = "manage_models"
    import_export = "import_export"
    override_verdicts = "override_verdicts"
    manage_users = "manage_users"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.analyst: frozenset(
        {
            Permission.add_sources,
            Permission.queue_extraction,
            Permission.view_comparison,
            Permission.give_feedback,
            Permission.manage_queue,
            Permission.view_coverage,
            Permission.view_monitoring,
            Permission.import_export,
        }
    ),
    Role.reviewer: frozenset(
        {
            Permission.view_comparison,
            Permission.review_fragments,
            Permission.give_feedback,
            Permission.view_coverage,
            Permission.view_monitoring,
        }
    ),
    Role.manager: frozenset(
        {
            Permission.view_comparison,
            Permission.give_feedback,
            Permission.manage_queue,
            Permission.view_coverage,
            Permission.view_monitoring,
            Permission.view_dashboard,
            Permission.change_budgets,
            Permission.manage_models,
            Permission.import_export,
            Permission.queue_extraction,
        }
    ),
    Role.admin: frozenset(Permission),
}


@dataclass(frozen=True)
class CurrentUser:
    """Who is signed in (what the UI keeps in its session): no password hash, ever."""

    id: int
    username: str
    display_name: str | None
    role: Role

    def can(self, permission: Permission) -> bool:
        """Whether this user's role grants `permission`."""
        return permission in ROLE_PERMISSIONS[self.role]


class AuthError(ValueError):
    """Sign-in refused or an account change rejected; the message is safe to show."""


def hash_password(password: str) -> str:
    """argon2id PHC string of `password`.

    Raises:
        AuthError: shorter than MIN_PASSWORD_LENGTH characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    return _hasher.hash(password)


def _current(user: User) -> CurrentUser:
    return CurrentUser(id=user.id, username=user.username, display_name=user.display_name, role=Role(user.role))


def create_user(
    *,
    session: Session,
    username: str,
    role: Role | str,
    password: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    oidc_subject: str | None = None,
) -> CurrentUser:
    """Add an account. Does not commit.

    Raises:
        AuthError: empty or taken username, unknown role, short password, or neither password nor OIDC subject.
    """
    username = username.strip().lower()
    if not username:
        raise AuthError("A username is needed.")
    try:
        role = Role(role)
    except ValueError:
        raise AuthError(f"Unknown role {role!r}; use one of {', '.join(r.value for r in Role)}.") from None
    if password is None and oidc_subject is None:
        raise AuthError("A local account needs a password.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AuthError(f"The username {username!r} is taken.")
    user = User(
        username=username,
        role=role.value,
        password_hash=hash_password(password) if password is not None else None,
        display_name=(display_name or "").strip() or None,
        email=(email or "").strip().lower() or None,
        oidc_subject=oidc_subject,
    )
    session.add(user)
    session.flush()
    return _current(user)


def authenticate(*, session: Session, username: str, password: str) -> CurrentUser:
    """Check a local account's password (and rehash it if the library's parameters changed).

    Raises:
        AuthError: unknown user, inactive account or wrong password (one message for all three).
    """
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    refused = AuthError("Wrong username or password.")
    if user is None or not user.is_active or not user.password_hash:
        _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
        raise refused
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise refused from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = dt.datetime.now(dt.UTC)
    return _current(user)


def user_from_oidc(*, session: Session, subject: str, email: str | None, name: str | None, default_role: Role | str) -> CurrentUser:
    """The account of an OIDC identity (`st.user`), created with `default_role` on first sign-in.

    An existing local account with the same e-mail is linked to the identity rather than duplicated.

    Raises:
        AuthError: the linked account is deactivated.
    """
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None and email:
        user = session.scalar(select(User).where(User.email == email.lower()))
        if user is not None:
            user.oidc_subject = subject
    if user is None:
        return create_user(
            session=session,
            username=(email or subject).lower(),
            role=default_role,
            display_name=name,
            email=email,
            oidc_subject=subject,
        )
    if not user.is_active:
        raise AuthError("This account is deactivated.")
    user.last_login_at = dt.datetime.now(dt.UTC)
    return _current(user)


def reload_user(*, session: Session, user_id: int) -> CurrentUser | None:
    """The account as it is now (role changes apply at once); None when deactivated or deleted."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return _current(user)


def has_users(*, session: Session) -> bool:
    """Whether any account exists (the sign-in page offers to create the first admin when not)."""
    return bool(session.scalar(select(func.count()).select_from(User)))


def can_change_verdict(user: CurrentUser, verdict_by: str | None) -> bool:
    """A verdict may be set when none exists, changed by its author, or by a role allowed to override."""
    return verdict_by is None or verdict_by == user.username or user.can(Permission.override_verdicts)
