"""MMOS workbench: Streamlit entry point (`streamlit run app.py`, or `mmos up`).

Signed out, only the sign-in page exists; signed in, the navigation lists the pages the user's
role may open (see `mmos_core.services.auth.ROLE_PERMISSIONS`).
"""

import streamlit as st

from mmos_core.services.auth import Permission, reload_user
from mmos_core.ui import current_user, set_current_user, sign_out, transaction

st.set_page_config(page_title="MMOS workbench", page_icon=":material/travel_explore:", layout="wide")

#: (page file, title, icon, permission needed to see it)
PAGES = [
    ("pages/sources.py", "Sources", ":material/library_books:", Permission.add_sources),
    ("pages/comparison.py", "Comparison", ":material/compare_arrows:", Permission.view_comparison),
    ("pages/quality.py", "Quality & cost", ":material/balance:", Permission.view_comparison),
    ("pages/review.py", "Review", ":material/fact_check:", Permission.review_fragments),
    ("pages/queue.py", "Queue", ":material/queue:", Permission.manage_queue),
    ("pages/coverage.py", "Coverage", ":material/donut_small:", Permission.view_coverage),
    ("pages/dashboard.py", "Dashboard", ":material/monitoring:", Permission.view_dashboard),
    ("pages/monitoring.py", "Inference monitor", ":material/speed:", Permission.view_coverage),
    ("pages/conversations.py", "Conversations", ":material/forum:", Permission.view_coverage),
    ("pages/models.py", "Models", ":material/model_training:", Permission.view_comparison),
    ("pages/data_transfer.py", "Import / export", ":material/import_export:", Permission.import_export),
    ("pages/users.py", "Users", ":material/group:", Permission.manage_users),
]

user = current_user()
if user is not None:
    # re-read the account on every run: a role change or a deactivation applies at once
    with transaction() as session:
        fresh = reload_user(session=session, user_id=user.id)
    if fresh is None:
        sign_out()
    elif fresh != user:
        set_current_user(fresh)
    user = fresh
if user is None:
    navigation = st.navigation([st.Page("pages/sign_in.py", title="Sign in", icon=":material/login:")])
else:
    allowed = [st.Page(path, title=title, icon=icon) for path, title, icon, perm in PAGES if user.can(perm)]
    navigation = st.navigation(allowed or [st.Page("pages/sign_in.py", title="Sign in")])
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name or user.username}** ({user.role.value})")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()
navigation.run()
