"""MMOS workbench: Streamlit entry point (`streamlit run app.py`, or `mmos up`).

This file plays two parts (docs/sessions.md):
- imported as a module, it is the ASGI app: `streamlit run app.py` finds the `st.App` below and serves
  Streamlit plus the two routes that set and clear the HttpOnly session cookie
  (`mmos_core/session_routes.py`);
- run as Streamlit's script (`__main__`, every rerun), it is the app: signed out, only the sign-in
  page exists (a link to another page is remembered and opened after sign-in); signed in, the
  navigation lists the pages the user's role may open (`mmos_core.services.auth.ROLE_PERMISSIONS`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mmos_core.core.logging import setup_logging
from mmos_core.services.auth import Permission
from mmos_core.session_routes import session_routes

#: (page file, title, icon, permission needed to see it)
PAGES = [
    ("pages/sources.py", "Sources", ":material/library_books:", Permission.add_sources),
    ("pages/comparison.py", "Comparison", ":material/compare_arrows:", Permission.view_comparison),
    ("pages/quality.py", "Quality & cost", ":material/balance:", Permission.view_comparison),
    ("pages/review.py", "Review", ":material/fact_check:", Permission.review_fragments),
    ("pages/queue.py", "Queue", ":material/queue:", Permission.manage_queue),
    ("pages/coverage.py", "Coverage", ":material/donut_small:", Permission.view_coverage),
    ("pages/dashboard.py", "Dashboard", ":material/monitoring:", Permission.view_dashboard),
    ("pages/monitoring.py", "Inference monitor", ":material/speed:", Permission.view_monitoring),
    ("pages/conversations.py", "Conversations", ":material/forum:", Permission.view_monitoring),
    ("pages/llm_catalog.py", "LLM catalog", ":material/model_training:", Permission.view_comparison),
    ("pages/data_transfer.py", "Import / export", ":material/import_export:", Permission.import_export),
    ("pages/users.py", "Users", ":material/group:", Permission.manage_users),
]
#: URL paths of the pages (`/review` → "review"): st.Page names a page after its file.
PAGE_URL_PATHS = frozenset(Path(path).stem for path, *_ in PAGES)


def main() -> None:
    """One run of the app: check who is signed in, build the navigation, run the chosen page."""
    # imported here, not at the top: the ASGI import of this module has no Streamlit runtime for ui's caches yet
    from mmos_core.ui import (
        open_requested_page,
        remember_requested_page,
        resume_session,
        session_cookie_claim,
        session_cookie_end,
        sign_out,
    )

    st.set_page_config(page_title="MMOS workbench", page_icon=":material/travel_explore:", layout="wide")
    setup_logging("ui")  # every rerun: idempotent (mmos_core/core/logging.py)

    # checked against the database on every run: a revoked session, a role change or a deactivation applies at once
    user = resume_session()
    if user is None:
        sign_in_pages = [st.Page("pages/sign_in.py", title="Sign in", icon=":material/login:")]
        requested = remember_requested_page(PAGE_URL_PATHS)
        if requested:
            # a link to /review: the form is served at /review itself (no "page not found", the address keeps the link)
            sign_in_pages.append(st.Page("pages/sign_in.py", title="Sign in", url_path=requested, visibility="hidden"))
        navigation = st.navigation(sign_in_pages)
    else:
        allowed = [st.Page(path, title=title, icon=icon) for path, title, icon, perm in PAGES if user.can(perm)]
        navigation = st.navigation(allowed or [st.Page("pages/sign_in.py", title="Sign in")])
        with st.sidebar:
            st.caption(f"Signed in as **{user.display_name or user.username}** ({user.role.value})")
            if st.button("Sign out", key="sign_out"):
                sign_out()
                st.rerun()
            session_cookie_claim()
        open_requested_page(navigation, allowed)
    navigation.run()
    session_cookie_end()


if __name__ == "__main__":
    main()
else:
    # `streamlit run app.py` imports this module to find the ASGI app (docs/sessions.md, "Mechanism")
    app = st.App(__file__, routes=session_routes())
    # This app navigates with st.navigation. Streamlit only learns that from the first run of app.py,
    # and until then treats the `pages/` folder as old-style pages: the first visit after a restart to
    # a link like /review would run pages/review.py alone, without this file's sign-in gate.
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
