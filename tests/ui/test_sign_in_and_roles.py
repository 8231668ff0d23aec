"""Sign-in, role-filtered navigation, sign-out and the Users page, through AppTest on app.py.

Real embedded Postgres; accounts are created with the real argon2 hashing. Navigation entries are
checked the AppTest way: `switch_page` accepts only pages that `st.navigation` registered this run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import texts

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60
PASSWORD = "correct horse battery"

PAGE_FILES = {
    "Sources": "pages/sources.py",
    "Comparison": "pages/comparison.py",
    "Review": "pages/review.py",
    "Queue": "pages/queue.py",
    "Coverage": "pages/coverage.py",
    "Dashboard": "pages/dashboard.py",
    "Users": "pages/users.py",
}


@pytest.fixture()
def at(clean_db, monkeypatch) -> AppTest:
    """A fresh, signed-out AppTest of app.py with caches emptied, run the way a live server runs it.

    AppTest builds a new PagesManager every run, and because a `pages/` folder exists that marks
    the app as a v1 "pages directory" app: a rerun requested for `pages/x.py` then executes that
    file alone, skipping app.py (and its sign-in gate and role filter). A live server clears that
    flag for good the first time app.py calls `st.navigation`; we clear it on every run.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    st.cache_resource.clear()
    st.cache_data.clear()
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def make_user(username: str, role: str, password: str = PASSWORD):
    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        return create_user(session=session, username=username, role=role, password=password)


def navigation(at: AppTest) -> set[str]:
    """Titles of the pages the last run's `st.navigation` offered (switch_page refuses the others)."""
    offered = set()
    current = at._page_hash
    for title, path in PAGE_FILES.items():
        try:
            at.switch_page(path)
        except ValueError:
            continue
        offered.add(title)
    at._page_hash = current  # undo the probing: the next run stays where it was
    return offered


def all_page_text(at: AppTest) -> str:
    """Everything the last run sent to the browser (every element's protobuf, main and sidebar)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password)
    at.form_submit_button[0].click()
    return at.run()


def test_first_admin_form_creates_admin_and_signs_in(at):
    at.run()
    assert not at.exception, at.exception
    assert any("create the first administrator" in t for t in texts(at.info))
    at.text_input(key="first_username").input("Root")
    at.text_input(key="first_password").input(PASSWORD)
    at.form_submit_button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    user = at.session_state["current_user"]
    assert (user.username, user.role.value) == ("root", "admin")
    assert at.title[0].value == "Sources"
    assert navigation(at) == set(PAGE_FILES)
    assert "$argon2" not in all_page_text(at)


def test_first_admin_short_password_refused(at):
    at.run()
    at.text_input(key="first_username").input("root")
    at.text_input(key="first_password").input("short")
    at.form_submit_button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert any("at least 8" in t for t in texts(at.error))
    assert "current_user" not in at.session_state
    assert navigation(at) == set()


def test_wrong_password_shows_one_message_and_no_page(at):
    make_user("root", "admin")
    at.run()
    assert not at.exception, at.exception
    assert not at.info or not any("first administrator" in t for t in texts(at.info))
    for username, password in (("root", "not the password"), ("nobody", PASSWORD)):
        sign_in(at, username, password)
        assert not at.exception, at.exception
        assert texts(at.error) == ["Wrong username or password."]
        assert "current_user" not in at.session_state
        assert [t.value for t in at.title] == ["MMOS workbench"]
        assert navigation(at) == set()
        assert "$argon2" not in all_page_text(at)


def test_deactivated_account_cannot_sign_in(at):
    from mmos_core.core.db import session_scope
    from mmos_core.services.users import set_active

    admin = make_user("root", "admin")
    ada = make_user("ada", "analyst")
    with session_scope() as session:
        set_active(session=session, actor=admin, user_id=ada.id, active=False)
    sign_in(at.run(), "ada", PASSWORD)
    assert texts(at.error) == ["Wrong username or password."]
    assert "current_user" not in at.session_state


def test_reviewer_navigation_and_sign_out(at):
    make_user("root", "admin")
    make_user("rita", "reviewer")
    sign_in(at.run(), "Rita", PASSWORD)
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert at.session_state["current_user"].role.value == "reviewer"
    offered = navigation(at)
    assert offered == {"Comparison", "Review", "Coverage"}
    assert not offered & {"Sources", "Users", "Dashboard", "Queue"}
    assert any("rita" in t and "reviewer" in t for t in texts(at.sidebar.caption))
    assert "$argon2" not in all_page_text(at)

    at.sidebar.button(key="sign_out").click()
    at.run()
    assert not at.exception, at.exception
    assert "current_user" not in at.session_state
    assert [t.value for t in at.title] == ["MMOS workbench"]
    assert at.text_input(key="sign_in_username") is not None
    assert navigation(at) == set()


@pytest.mark.parametrize("role", ["analyst", "reviewer", "manager"])
def test_users_page_refuses_non_admins(at, role):
    """Not in their navigation, and the page itself refuses when run directly (a stale link)."""
    user = make_user(f"{role}-user", role)
    make_user("ada", "analyst")
    at.session_state["current_user"] = user
    at.run()
    assert "Users" not in navigation(at)

    page = AppTest.from_file(str(Path(APP).parent / "pages" / "users.py"), default_timeout=TIMEOUT)
    page.session_state["current_user"] = user
    page.run()
    assert not page.exception, page.exception
    assert texts(page.error) == [f"Your role ({role}) does not allow this page."]
    assert not page.title and not page.dataframe


# --- the Users page ------------------------------------------------------------------------------


@pytest.fixture()
def admin_on_users(at):
    admin = make_user("root", "admin")
    make_user("ada", "analyst")
    at.session_state["current_user"] = admin
    at.run()
    at.switch_page("pages/users.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Users"
    return at


def test_users_page_lists_accounts_without_hashes(admin_on_users):
    at = admin_on_users
    table = at.dataframe[0].value
    assert list(table["username"]) == ["ada", "root"]
    assert list(table["role"]) == ["analyst", "admin"]
    assert list(table["active"]) == [True, True]
    assert not any("hash" in c for c in table.columns)
    assert "$argon2" not in all_page_text(at)


def test_users_page_adds_account(admin_on_users):
    at = admin_on_users
    at.text_input(key="new_username").input("eve")
    at.selectbox(key="new_role").set_value("reviewer")
    at.text_input(key="new_password").input("a new password")
    at.text_input(key="new_password_again").input("a different one")
    at.form_submit_button(key="FormSubmitter:add_user-Add account").click()
    at.run()
    assert texts(at.error) == ["The two passwords differ."]
    assert list(at.dataframe[0].value["username"]) == ["ada", "root"]

    at.text_input(key="new_password_again").input("a new password")
    at.form_submit_button(key="FormSubmitter:add_user-Add account").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert texts(at.success) == ["Added eve (reviewer)."]
    table = at.dataframe[0].value
    assert list(table["username"]) == ["ada", "eve", "root"]
    assert list(table["role"]) == ["analyst", "reviewer", "admin"]
    assert "$argon2" not in all_page_text(at)

    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import authenticate

    with session_scope() as session:
        assert authenticate(session=session, username="eve", password="a new password").role.value == "reviewer"


def _pick(at: AppTest, username: str) -> None:
    picker = at.selectbox(key="account_picker")
    [index] = [i for i, o in enumerate(picker.options) if o.startswith(username + " ")]
    picker.select_index(index)
    at.run()


def test_users_page_protects_last_admin(admin_on_users):
    at = admin_on_users
    _pick(at, "root")
    at.button(key="toggle_active").click()
    at.run()
    assert not at.exception, at.exception
    assert any("last active administrator" in t for t in texts(at.error))
    at.selectbox(key="account_role").set_value("manager")
    at.button(key="change_role").click()
    at.run()
    assert any("last active administrator" in t for t in texts(at.error))
    assert list(at.dataframe[0].value["role"]) == ["analyst", "admin"]


def test_users_page_changes_role_and_deactivates(admin_on_users):
    at = admin_on_users
    _pick(at, "ada")
    at.selectbox(key="account_role").set_value("manager")
    at.button(key="change_role").click()
    at.run()
    assert not at.exception, at.exception
    assert texts(at.success) == ["ada is now manager."]
    _pick(at, "ada")
    at.button(key="toggle_active").click()
    at.run()
    assert texts(at.success) == ["ada is deactivated."]
    table = at.dataframe[0].value
    assert list(table["username"]) == ["root", "ada"]  # active accounts first
    assert list(table["role"]) == ["admin", "manager"]
    assert list(table["active"]) == [True, False]
    _pick(at, "ada")
    assert at.button(key="toggle_active").label == "Reactivate account"
