"""End to end in a real headless Chromium (Debian's, driven by Playwright's Python package):
sign in, add a source, run a (faked-at-the-HTTP-edge) extraction on a real RQ worker, verify a
fragment, like it, open the dashboard. A screenshot of each page lands in test-artifacts/."""

from __future__ import annotations

import pytest
from browser_support import ARTIFACTS, CHROMIUM, live_streamlit, require_browser
from fakes import chat_completion, quote_answer

TEXT = (
    "I was born at Shrewsbury on February 12th, 1809. My mother died in July 1817, when I was a little over eight years old.\n\n"
    "I believe that I have acquired the habit of doing everything at a fixed hour, which has been of great use to me.\n\n"
    "My love of natural science was steady and ardent, and I had the strong desire to understand whatever I observed."
)


@pytest.fixture()
def live_app(services, clean_db, fake_llm, embedder_or_skip):
    """Streamlit on a free port and one RQ worker, both on the test database and the fake provider."""
    require_browser()
    with live_streamlit(worker=True) as url:
        yield url


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1500)  # let Streamlit finish painting before the picture
    page.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def _open(page, base: str, path: str) -> None:
    """Open a page of the app by its URL path, as a person following the sidebar link would."""
    page.get_by_role("link", name=path).first.click()
    page.wait_for_load_state("networkidle")


def _settled(page) -> None:
    """Wait until Streamlit has finished its rerun (the "Running…" status widget is gone)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")


def _verified_fragment_id() -> int:
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    with session_scope() as session:
        return session.scalars(select(Fragment.id).where(Fragment.verified)).one()


def test_sign_in_extract_verify_like_dashboard(live_app, fake_llm):
    from playwright.sync_api import expect, sync_playwright

    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        create_user(session=session, username="ada", role="admin", password="analytical engine")
    fake_llm["respond"] = lambda req: (
        200,
        chat_completion(quote_answer(["I believe that I have acquired the habit of doing everything at a fixed hour"])),
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(live_app)

        # sign in
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password", exact=True).fill("analytical engine")
        _shot(page, "1-sign-in")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Sources")).to_be_visible()

        # add a source by pasting text
        page.get_by_label("…or paste the text").fill(TEXT)
        page.get_by_label("Title").fill("Recollections (excerpt)")
        page.get_by_role("button", name="Add source").click()
        expect(page.get_by_text("Added SRC_BOOK_001")).to_be_visible()

        # queue it for both local models (the fake provider answers at the HTTP edge)
        page.get_by_role("button", name="Queue extraction").click()
        expect(page.get_by_text("Queued 2 batch(es)")).to_be_visible()
        page.wait_for_function(
            "() => document.body.innerText.split('· completed ·').length - 1 >= 2", timeout=120_000
        )
        _shot(page, "2-sources-progress")

        # comparison of the two batches
        _open(page, live_app, "Comparison")
        expect(page.get_by_text("matched pairs")).to_be_visible()
        _shot(page, "3-comparison")

        # verify a fragment and like it
        _open(page, live_app, "Review")
        page.get_by_role("button", name="Verify").first.click()
        expect(page.get_by_text("verified by ada")).to_have_count(1)
        # Everything after this happens inside the verified fragment's own card, found by its key:
        # while Streamlit reruns, "the first Details toggle" on the page can belong to another card.
        card = page.locator(f".st-key-fragment_{_verified_fragment_id()}")
        _settled(page)
        card.get_by_text("Details", exact=True).first.click()
        feedback_tab = card.get_by_role("tab", name="Feedback")
        expect(feedback_tab).to_be_visible()
        _settled(page)
        feedback_tab.click()
        card.get_by_role("button", name="Like").first.click()
        expect(page.get_by_text("Feedback recorded: like")).to_be_visible()
        _shot(page, "4-review")

        # the manager's view
        _open(page, live_app, "Dashboard")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        _shot(page, "5-dashboard")
        browser.close()

    from sqlalchemy import select

    from mmos_core.models import Fragment, UserFeedback

    with session_scope() as session:
        verified = session.scalars(select(Fragment).where(Fragment.verified)).all()
        likes = session.scalars(select(UserFeedback).where(UserFeedback.feedback_type == "like")).all()
    assert len(verified) == 1 and verified[0].verified_by == "ada"
    assert len(likes) == 1 and likes[0].fragment_id == verified[0].id
    for name in ("1-sign-in", "2-sources-progress", "3-comparison", "4-review", "5-dashboard"):
        assert (ARTIFACTS / f"e2e-{name}.png").stat().st_size > 10_000
