"""A signed-in user survives a refresh, a second tab and a shared link, in a real headless Chromium
(Debian's, driven by Playwright) against `streamlit run app.py` on a free port (docs/sessions.md).
Screenshots land in test-artifacts/sessions-*.png."""

from __future__ import annotations

import time

import pytest
from browser_support import ARTIFACTS, CHROMIUM, live_streamlit, require_browser

PASSWORD = "analytical engine"








@pytest.fixture()
def live_app(services, clean_db):
    """`streamlit run app.py` (which serves the st.App with the session routes) on the test database."""
    require_browser()
    with live_streamlit(extra_args=("--server.fileWatcherType", "none")) as url:
        yield url


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"sessions-{name}.png"), full_page=True)


def _session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == "mmos_session"), None)


def test_refresh_second_tab_shared_link_and_sign_out(live_app):
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import WebSession
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        create_user(session=session, username="rita", role="reviewer", password=PASSWORD)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        signed_in = page.get_by_text("Signed in as rita")

        # a shared link, signed out: the form is served at that address, and the view opens after sign-in
        page.goto(f"{live_app}/review?q=habit")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        assert page.url.endswith("/review?q=habit")
        _shot(page, "1-link-signed-out")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Review")).to_be_visible()
        expect(page.get_by_label("Search", exact=True)).to_have_value("habit")
        assert "/review" in page.url and "q=habit" in page.url
        expect(signed_in).to_be_visible()

        # the browser traded its one-time code for an HttpOnly, SameSite=Strict cookie that scripts cannot read
        deadline = time.monotonic() + 30
        while _session_cookie(context) is None and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        cookie = _session_cookie(context)
        assert cookie is not None, "the session cookie was not set"
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 3600
        assert "mmos_session" not in page.evaluate("document.cookie")
        _shot(page, "2-review-after-sign-in")

        # F5
        page.reload()
        expect(page.get_by_role("heading", name="Review")).to_be_visible()
        expect(signed_in).to_be_visible()
        _shot(page, "3-after-reload")

        # a second tab at /review
        second = context.new_page()
        second.set_default_timeout(60_000)
        second.goto(f"{live_app}/review")
        expect(second.get_by_role("heading", name="Review")).to_be_visible()
        expect(second.get_by_text("Signed in as rita")).to_be_visible()
        _shot(second, "4-second-tab")

        # sign out in the first tab: both are signed out
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        deadline = time.monotonic() + 30
        while _session_cookie(context) is not None and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert _session_cookie(context) is None, "the session cookie was not deleted"
        second.get_by_role("link", name="Coverage").first.click()  # the second tab's next run
        expect(second.get_by_role("button", name="Sign in")).to_be_visible()
        expect(second.get_by_text("Signed in as rita")).to_have_count(0)
        second.reload()
        expect(second.get_by_role("button", name="Sign in")).to_be_visible()
        _shot(second, "5-second-tab-signed-out")
        page.reload()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        browser.close()

    with session_scope() as session:
        rows = session.scalars(select(WebSession)).all()
    assert [(r.token_sha256 is not None, r.revoked_reason) for r in rows] == [(True, "sign_out")]
