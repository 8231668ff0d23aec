"""Accounts against the real embedded PostgreSQL: hashing, sign-in, OIDC linking, user administration."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.models import User
from mmos_core.services.auth import AuthError, Role, authenticate, create_user, user_from_oidc
from mmos_core.services.users import add_user, list_users, reset_password, set_active, set_role

PASSWORD = "correct horse battery"


def _hash_of(username: str) -> str:
    with session_scope() as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


def _make(username: str, role: str, password: str = PASSWORD, **kw):
    with session_scope() as session:
        return create_user(session=session, username=username, role=role, password=password, **kw)


def test_hashes_are_argon2id_and_salted(clean_db):
    _make("ada", "analyst")
    _make("bob", "analyst")
    a, b = _hash_of("ada"), _hash_of("bob")
    assert a.startswith("$argon2id$") and b.startswith("$argon2id$")
    assert a != b  # same password, different salt
    assert PASSWORD not in a


def test_short_password_refused(clean_db):
    with pytest.raises(AuthError, match="at least 8"), session_scope() as session:
        create_user(session=session, username="ada", role="analyst", password="short")


def test_authenticate_right_wrong_unknown_inactive(clean_db):
    admin = _make("root", "admin")
    created = _make("Ada", "reviewer", display_name="Ada L.")
    with session_scope() as session:
        me = authenticate(session=session, username=" ADA ", password=PASSWORD)
    assert (me.id, me.username, me.role, me.display_name) == (created.id, "ada", Role.reviewer, "Ada L.")
    with session_scope() as session:
        assert session.get(User, me.id).last_login_at is not None

    messages = []
    for username, password in (("ada", "wrong password!"), ("nobody", PASSWORD)):
        with pytest.raises(AuthError) as err, session_scope() as session:
            authenticate(session=session, username=username, password=password)
        messages.append(str(err.value))
    assert messages == ["Wrong username or password."] * 2

    with session_scope() as session:
        set_active(session=session, actor=admin, user_id=me.id, active=False)
    with pytest.raises(AuthError, match="Wrong username or password."), session_scope() as session:
        authenticate(session=session, username="ada", password=PASSWORD)


def test_oidc_creates_then_links_by_email(clean_db):
    with session_scope() as session:
        new = user_from_oidc(session=session, subject="sub-1", email="New@Example.org", name="New Person", default_role="reviewer")
    assert (new.username, new.role, new.display_name) == ("new@example.org", Role.reviewer, "New Person")
    with session_scope() as session:
        again = user_from_oidc(session=session, subject="sub-1", email="new@example.org", name="x", default_role="admin")
    assert again.id == new.id and again.role is Role.reviewer

    local = _make("grace", "manager", email="grace@example.org")
    with session_scope() as session:
        linked = user_from_oidc(session=session, subject="sub-2", email="Grace@example.org", name="Grace", default_role="reviewer")
    assert linked.id == local.id and linked.role is Role.manager
    with session_scope() as session:
        row = session.get(User, local.id)
        assert row.oidc_subject == "sub-2" and row.password_hash.startswith("$argon2id$")
        assert session.query(User).count() == 2


def test_oidc_deactivated_account_refused(clean_db):
    admin = _make("root", "admin")
    local = _make("grace", "manager", email="grace@example.org")
    with session_scope() as session:
        set_active(session=session, actor=admin, user_id=local.id, active=False)
    with pytest.raises(AuthError, match="deactivated"), session_scope() as session:
        user_from_oidc(session=session, subject="sub-2", email="grace@example.org", name=None, default_role="reviewer")


def test_last_active_admin_cannot_be_demoted_or_deactivated(clean_db):
    root = _make("root", "admin")
    for change in (
        lambda s: set_role(session=s, actor=root, user_id=root.id, role="manager"),
        lambda s: set_active(session=s, actor=root, user_id=root.id, active=False),
    ):
        with pytest.raises(AuthError, match="last active administrator"), session_scope() as session:
            change(session)
    with session_scope() as session:
        assert session.get(User, root.id).role == "admin" and session.get(User, root.id).is_active

    second = _make("second", "analyst")
    with session_scope() as session:
        set_role(session=session, actor=root, user_id=second.id, role="admin")
    with session_scope() as session:  # now another active admin exists
        set_role(session=session, actor=root, user_id=root.id, role="reviewer")
    with pytest.raises(AuthError, match="last active administrator"), session_scope() as session:
        set_active(session=session, actor=root, user_id=second.id, active=False)


def test_inactive_admin_does_not_count(clean_db):
    root = _make("root", "admin")
    other = _make("other", "admin")
    with session_scope() as session:
        set_active(session=session, actor=root, user_id=other.id, active=False)
    with pytest.raises(AuthError, match="last active administrator"), session_scope() as session:
        set_role(session=session, actor=root, user_id=root.id, role="analyst")


def test_non_admin_is_refused_everything(clean_db):
    _make("root", "admin")
    manager = _make("mia", "manager")
    calls = (
        lambda s: list_users(session=s, actor=manager),
        lambda s: set_role(session=s, actor=manager, user_id=manager.id, role="admin"),
        lambda s: set_active(session=s, actor=manager, user_id=manager.id, active=False),
        lambda s: reset_password(session=s, actor=manager, user_id=manager.id, password="new password 1"),
        lambda s: add_user(session=s, actor=manager, username="x", role="admin", password="p" * 10, password_again="p" * 10),
    )
    for call in calls:
        with pytest.raises(AuthError, match="Only an administrator"), session_scope() as session:
            call(session)
    with session_scope() as session:
        assert session.get(User, manager.id).role == "manager"
        assert session.query(User).count() == 2


def test_reset_password_and_add_user(clean_db):
    root = _make("root", "admin")
    with pytest.raises(AuthError, match="differ"), session_scope() as session:
        add_user(session=session, actor=root, username="eve", role="reviewer", password="p" * 10, password_again="q" * 10)
    with session_scope() as session:
        eve = add_user(session=session, actor=root, username="eve", role="reviewer", password="p" * 10, password_again="p" * 10)
    with session_scope() as session:
        reset_password(session=session, actor=root, user_id=eve.id, password="brand new secret", password_again="brand new secret")
    with pytest.raises(AuthError), session_scope() as session:
        authenticate(session=session, username="eve", password="p" * 10)
    with session_scope() as session:
        assert authenticate(session=session, username="eve", password="brand new secret").id == eve.id


def test_list_users_never_exposes_the_hash(clean_db):
    root = _make("root", "admin", email="root@example.org")
    _make("ada", "analyst")
    with session_scope() as session:
        rows = list_users(session=session, actor=root)
    assert [r.username for r in rows] == ["ada", "root"]
    for row in rows:
        h = _hash_of(row.username)
        assert h not in repr(row) and h not in str(row) and "$argon2" not in repr(row)
        assert not any("hash" in name for name in vars(row))
    assert "$argon2" not in repr(rows)
