"""The sign-in and change-password forms, drawn by whichever page a signed-out (or must-change) user opens."""

from __future__ import annotations

import streamlit as st

from app.accounts import AccountError, AuthError, User

from . import session


def sign_in_form(services) -> None:
    st.title("Curbside")
    st.caption("Primary-care mental health: triage, screening and guideline answers. Patient data stays on site.")
    notice = st.session_state.pop(session.NOTICE, None)
    if notice:
        st.info(notice)
    with st.form("signin"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            session.sign_in(services, username.strip(), password)
        except AuthError as e:
            st.error(str(e))
        else:
            st.rerun()


def change_password_form(services, user: User) -> None:
    st.title("Account")
    st.write(f"**{user.username}**, role **{user.role}**")
    if user.must_change_password:
        st.warning("Choose a new password before you continue.")
    with st.form("change_password", clear_on_submit=True):
        old = st.text_input("Current password", type="password", autocomplete="current-password")
        new = st.text_input("New password", type="password", autocomplete="new-password",
                            help=f"At least {services.settings.min_password_length} characters.")
        again = st.text_input("New password again", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Change password", type="primary")
    if submitted:
        if new != again:
            st.error("The two new passwords differ.")
            return
        try:
            services.accounts.change_password(user.username, old, new)
        except (AuthError, AccountError) as e:
            st.error(str(e))
        else:
            if user.must_change_password:
                st.rerun()
            st.success("Password changed.")


def require_user(services) -> User:
    """The signed-in user; otherwise draw the sign-in (or forced password change) form and stop the page."""
    user = session.current_user(services)
    if user is None:
        sign_in_form(services)
        st.stop()
    if user.must_change_password:
        change_password_form(services, user)
        st.stop()
    return user
