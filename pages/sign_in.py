"""Sign in with a local account, or with the configured OIDC provider (`st.login`).

Every way in ends in `ui.sign_in`, which starts the browser session that survives a refresh, a new
tab and a shared link (docs/sessions.md).
"""

import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.services.auth import AuthError, Role, authenticate, create_user, has_users, user_from_oidc
from mmos_core.ui import oidc_configured, sign_in, transaction

st.title("MMOS workbench")

if oidc_configured() and getattr(st.user, "is_logged_in", False):
    try:
        with transaction() as session:
            user = user_from_oidc(
                session=session,
                subject=str(st.user.get("sub")),
                email=st.user.get("email"),
                name=st.user.get("name"),
                default_role=get_settings().oidc_default_role,
            )
        sign_in(user)
        st.rerun()
    except AuthError as exc:
        st.error(str(exc))

with transaction() as session:
    first_run = not has_users(session=session)

if first_run:
    st.info("No accounts exist yet: create the first administrator.")
    with st.form("first_admin"):
        username = st.text_input("Username", key="first_username")
        password = st.text_input("Password", type="password", key="first_password")
        if st.form_submit_button("Create administrator", type="primary"):
            try:
                with transaction() as session:
                    user = create_user(session=session, username=username, role=Role.admin, password=password)
                sign_in(user)
                st.rerun()
            except AuthError as exc:
                st.error(str(exc))
    st.stop()

with st.form("sign_in"):
    username = st.text_input("Username", key="sign_in_username")
    password = st.text_input("Password", type="password", key="sign_in_password")
    submitted = st.form_submit_button("Sign in", type="primary")
if submitted:
    try:
        with transaction() as session:
            user = authenticate(session=session, username=username, password=password)
        sign_in(user)
        st.rerun()
    except AuthError as exc:
        st.error(str(exc))

if oidc_configured():
    st.button("Sign in with single sign-on", on_click=st.login)
