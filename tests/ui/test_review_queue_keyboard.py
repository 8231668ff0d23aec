"""The Review queue driven by the keyboard in a real headless Chromium (Debian's, via Playwright):
Streamlit's own `st.button(shortcut=...)` keys V (verify), X (reject), S (skip). Skipped without chromium."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from browser_support import CHROMIUM, live_streamlit, require_browser


def _seed() -> list[tuple[int, str]]:
    """The six fragments of tests/ui/test_review_queue.py (one seeding for both files)."""
    spec = importlib.util.spec_from_file_location("_review_queue_seed", Path(__file__).with_name("test_review_queue.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._seed()


@pytest.fixture()
def streamlit_app(services, clean_db):
    require_browser()
    with live_streamlit() as url:
        yield url


def test_queue_by_keyboard(streamlit_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment
    from mmos_core.services.auth import create_user

    fragments = _seed()
    with session_scope() as session:
        create_user(session=session, username="rita", role="reviewer", password="correct horse battery")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(streamlit_app)
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password", exact=True).fill("correct horse battery")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Review").first.click()
        page.get_by_text("Queue", exact=True).click()
        expect(page.get_by_text("You: 0 of 6 judged")).to_be_visible()
        page.get_by_role("heading", name="Review").click()  # focus the page, not a widget
        for key, code, done in (("v", fragments[0][1], "verified."), ("x", fragments[1][1], "rejected."),
                                ("s", fragments[2][1], "skipped")):
            # Served and idle: while a rerun is in flight Streamlit can briefly show the previous run's card
            # beside the new one, so wait for exactly one card rather than any.
            expect(page.get_by_text(f"{code} Biographical", exact=False)).to_have_count(1)
            page.wait_for_timeout(500)
            page.keyboard.press(key)
            expect(page.get_by_text(f"{code} {done}").first).to_be_visible()
        expect(page.get_by_text("You: 2 of 6 judged")).to_be_visible()
        browser.close()
    with session_scope() as session:
        state = {f.id: (f.verified, f.rejected) for f in session.scalars(select(Fragment))}
    assert state[fragments[0][0]] == (True, False) and state[fragments[1][0]] == (False, True)
    assert state[fragments[2][0]] == (False, False)
