"""Who is signed in to this browser session, for how long, and what they may open."""

from __future__ import annotations

import time

import streamlit as st

from app.accounts import AccountError, User

USER = "user"
LAST_SEEN = "last_seen"
NOTICE = "signin_notice"


def sign_in(services, username: str, password: str) -> User:
    """Authenticate (raises the accounts module's AuthError with the reason) and start the session."""
    user = services.accounts.authenticate(username, password)
    st.session_state[USER] = user.username
    st.session_state[LAST_SEEN] = time.monotonic()
    return user


def sign_out(services, action: str = "logout") -> None:
    username = st.session_state.pop(USER, None)
    st.session_state.pop(LAST_SEEN, None)
    for key in [k for k in st.session_state if k.startswith(("consult", "screening"))]:
        del st.session_state[key]
    if username:
        services.audit.record(username, action, target=username)


def current_user(services) -> User | None:
    """The signed-in user, re-read on every run (a disabled account or changed role applies at once);
    None after the idle timeout, which signs the session out."""
    username = st.session_state.get(USER)
    if username is None:
        return None
    idle_s = time.monotonic() - st.session_state.get(LAST_SEEN, 0.0)
    if idle_s > services.settings.session_idle_minutes * 60:
        sign_out(services, "session.timeout")
        st.session_state[NOTICE] = (f"You were signed out after {services.settings.session_idle_minutes:g} "
                                    "minutes without activity.")
        return None
    try:
        user = services.accounts.get(username)
    except AccountError:
        user = None
    if user is None or user.disabled:
        sign_out(services)
        st.session_state[NOTICE] = "This account is disabled; ask an administrator."
        return None
    st.session_state[LAST_SEEN] = time.monotonic()
    return user


def require_admin(services, user: User | None, page: str) -> User:
    """Stop the page with 'not authorised' (and an audit event) unless an admin is signed in."""
    if user is None or user.role != "admin":
        if user is not None:
            services.audit.record(user.username, "page.denied", target=page, outcome="denied")
        st.error("Not authorised: this page is for administrators.")
        st.stop()
    return user
