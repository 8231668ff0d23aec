"""Browser sessions through AppTest on app.py (docs/sessions.md): a sign-in starts a session and hands
the browser its claim script; the cookie signs a new tab in; sign-out, deactivation and expiry sign
it out; a remembered link opens after sign-in. AppTest has no browser, so "the cookie" is the token
`mmos_core.ui._cookie_token` returns (what `st.context.cookies` gives a live server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from ui_support import texts

from mmos_core.core.db import session_scope
from mmos_core.models import WebSession
from mmos_core.services.auth import create_user
from mmos_core.services.users import set_active
from mmos_core.services.web_sessions import claim_session, start_session

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60
PASSWORD = "correct horse battery"


def _fresh_app(monkeypatch) -> AppTest:
    """A new browser tab: a fresh AppTest of app.py, run the way a live server runs it (see
    tests/ui/test_sign_in_and_roles.py for why `uses_pages_directory` is cleared)."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


@pytest.fixture()
def tab(clean_db, monkeypatch):
    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.setattr("mmos_core.ui._cookie_token", lambda: None)
    return lambda: _fresh_app(monkeypatch)


def _browser_cookie(monkeypatch, token: str | None) -> None:
    monkeypatch.setattr("mmos_core.ui._cookie_token", lambda: token)


def _make(username: str, role: str):
    with session_scope() as session:
        return create_user(session=session, username=username, role=role, password=PASSWORD)


def _cookie_for(user_id: int) -> str:
    """Sign in as the browser would: start a session and trade its claim code for the cookie token."""
    with session_scope() as session:
        started = start_session(session=session, user_id=user_id, ttl_hours=12)
        return claim_session(session=session, claim_code=started.claim_code).token


def _sign_in(at: AppTest, username: str) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.form_submit_button[0].click()
    return at.run()


def _signed_in_as(at: AppTest) -> str | None:
    user = at.session_state["current_user"] if "current_user" in at.session_state else None
    return user.username if user else None


def _html(at: AppTest) -> str:
    return "\n".join(str(e.proto) for e in at.get("html"))


def test_sign_in_starts_a_session_and_hands_over_the_claim_script(tab):
    _make("ada", "analyst")
    at = _sign_in(tab().run(), "ada")
    assert not at.exception, at.exception
    assert _signed_in_as(at) == "ada" and at.title[0].value == "Sources"
    with session_scope() as session:
        [row] = session.scalars(select(WebSession)).all()
        assert row.user_id == at.session_state["current_user"].id
        assert row.token_sha256 is None and row.claim_sha256 is not None and row.revoked_at is None
        assert row.expires_at - row.created_at == dt.timedelta(hours=12)
    script = _html(at)
    assert "/_mmos/session/claim" in script and "X-Xsrftoken" in script and "unsafe_allow_javascript: true" in script
    code = at.session_state["web_session_claim"][1]
    assert code in script  # the one-time code, never the session token (which does not exist yet)


def test_cookie_signs_in_a_new_tab_and_sign_out_ends_it_everywhere(tab, monkeypatch):
    ada = _make("ada", "admin")
    _browser_cookie(monkeypatch, _cookie_for(ada.id))
    first, second = tab().run(), tab().run()
    for at in (first, second):
        assert not at.exception, at.exception
        assert _signed_in_as(at) == "ada" and at.title[0].value == "Sources"
        assert any("ada" in t for t in texts(at.sidebar.caption))

    first.sidebar.button(key="sign_out").click()
    first.run()
    assert _signed_in_as(first) is None and [t.value for t in first.title] == ["MMOS workbench"]
    assert "/_mmos/session/end" in _html(first)  # the script that deletes the cookie
    second.run()  # the other tab's next run
    assert _signed_in_as(second) is None and [t.value for t in second.title] == ["MMOS workbench"]
    assert _signed_in_as(tab().run()) is None  # and a refresh (the revoked cookie opens nothing)
    with session_scope() as session:
        assert session.scalars(select(WebSession.revoked_reason)).all() == ["sign_out"]


def test_deactivation_and_expiry_sign_an_open_tab_out(tab, monkeypatch):
    root = _make("root", "admin")
    ada = _make("ada", "analyst")
    at = _sign_in(tab().run(), "ada")
    assert _signed_in_as(at) == "ada"
    with session_scope() as session:
        set_active(session=session, actor=root, user_id=ada.id, active=False)
    at.run()
    assert _signed_in_as(at) is None and at.text_input(key="sign_in_username") is not None

    at = _sign_in(tab().run(), "root")
    with session_scope() as session:
        row = session.get(WebSession, at.session_state["web_session_id"])
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    at.run()
    assert _signed_in_as(at) is None


def test_role_change_applies_to_a_cookie_session(tab, monkeypatch):
    root = _make("root", "admin")
    ada = _make("ada", "analyst")
    _browser_cookie(monkeypatch, _cookie_for(ada.id))
    at = tab().run()
    assert at.session_state["current_user"].role.value == "analyst"
    from mmos_core.services.users import set_role

    with session_scope() as session:
        set_role(session=session, actor=root, user_id=ada.id, role="reviewer")
    at.run()
    assert at.session_state["current_user"].role.value == "reviewer"
    assert at.title[0].value == "Model comparison"  # Sources is no longer offered


def test_a_remembered_link_opens_after_sign_in(tab):
    _make("rita", "reviewer")
    at = tab().run()
    # what remember_requested_page keeps when the browser asked for /review?q=habit signed out
    at.session_state["return_to"] = ("review", {"q": ["habit"]})
    _sign_in(at, "rita")
    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert at.query_params["q"] in ("habit", ["habit"])
    assert at.text_input(key="review_query").value == "habit"
    assert "return_to" not in at.session_state  # used once


def test_a_link_the_role_cannot_open_lands_on_the_default_page(tab):
    _make("rita", "reviewer")
    at = tab().run()
    at.session_state["return_to"] = ("users", {})
    _sign_in(at, "rita")
    assert not at.exception, at.exception
    assert at.title[0].value == "Model comparison"
