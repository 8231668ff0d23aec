"""Users: list accounts, add a local account, change a role, (de)activate, reset a password (admins only)."""

import streamlit as st

from mmos_core.services.auth import MIN_PASSWORD_LENGTH, AuthError, Permission, Role
from mmos_core.services.users import add_user, list_users, reset_password, set_active, set_role
from mmos_core.ui import require, sidebar_status, transaction

_FLASH = "users_flash"

user = require(Permission.manage_users)
sidebar_status()
st.title("Users")


def _done(message: str) -> None:
    """Show `message` after the rerun that refreshes the table."""
    st.session_state[_FLASH] = message
    st.rerun()


if flash := st.session_state.pop(_FLASH, None):
    st.success(flash)

with transaction() as session:
    rows = list_users(session=session, actor=user)

st.dataframe(
    [
        {
            "username": r.username,
            "display name": r.display_name or "",
            "email": r.email or "",
            "role": r.role.value,
            "active": r.is_active,
            "sign-in": " + ".join(k for k, on in (("password", r.local_password), ("SSO", r.single_sign_on)) if on),
            "last login": r.last_login_at,
        }
        for r in rows
    ],
    hide_index=True,
    use_container_width=True,
)

roles = [r.value for r in Role]

st.subheader("Add a local account")
with st.form("add_user", clear_on_submit=False):
    c1, c2 = st.columns(2)
    new_username = c1.text_input("Username", key="new_username")
    new_role = c2.selectbox("Role", roles, index=0, key="new_role")
    new_display = c1.text_input("Display name (optional)", key="new_display_name")
    new_email = c2.text_input("E-mail (optional)", key="new_email")
    new_password = c1.text_input(
        "Password", type="password", key="new_password", help=f"At least {MIN_PASSWORD_LENGTH} characters."
    )
    new_password_again = c2.text_input("Password again", type="password", key="new_password_again")
    if st.form_submit_button("Add account", type="primary"):
        try:
            with transaction() as session:
                created = add_user(
                    session=session,
                    actor=user,
                    username=new_username,
                    role=new_role,
                    password=new_password,
                    password_again=new_password_again,
                    display_name=new_display,
                    email=new_email,
                )
            _done(f"Added {created.username} ({created.role.value}).")
        except AuthError as exc:
            st.error(str(exc))

st.subheader("Change an account")
by_id = {r.id: r for r in rows}
chosen_id = st.selectbox(
    "Account",
    list(by_id),
    format_func=lambda i: f"{by_id[i].username} ({by_id[i].role.value}{'' if by_id[i].is_active else ', inactive'})",
    key="account_picker",
)
if chosen_id is not None:
    chosen = by_id[chosen_id]
    c1, c2 = st.columns(2)
    with c1:
        role_choice = st.selectbox("Role", roles, index=roles.index(chosen.role.value), key="account_role")
        if st.button("Change role", key="change_role"):
            try:
                with transaction() as session:
                    set_role(session=session, actor=user, user_id=chosen.id, role=role_choice)
                _done(f"{chosen.username} is now {role_choice}.")
            except AuthError as exc:
                st.error(str(exc))
        label = "Deactivate account" if chosen.is_active else "Reactivate account"
        if st.button(label, key="toggle_active"):
            try:
                with transaction() as session:
                    set_active(session=session, actor=user, user_id=chosen.id, active=not chosen.is_active)
                _done(f"{chosen.username} is {'deactivated' if chosen.is_active else 'active again'}.")
            except AuthError as exc:
                st.error(str(exc))
    with c2, st.form("reset_password", clear_on_submit=True):
        pw = st.text_input("New password", type="password", key="reset_password")
        pw_again = st.text_input("New password again", type="password", key="reset_password_again")
        if st.form_submit_button("Reset password"):
            try:
                with transaction() as session:
                    reset_password(session=session, actor=user, user_id=chosen.id, password=pw, password_again=pw_again)
                _done(f"New password set for {chosen.username}.")
            except AuthError as exc:
                st.error(str(exc))
