"""Users (admin): create accounts, disable or enable them, reset passwords, change roles."""

import secrets

import streamlit as st

from app.accounts import ROLES, AccountError
from app.ui import auth_forms, session
from app.ui import services as svc

services = svc.get()
admin = session.require_admin(services, auth_forms.require_user(services), "users")
accounts = services.accounts

st.title("Users")
users = accounts.list()
st.dataframe([{"username": u.username, "role": u.role, "status": "disabled" if u.disabled else "active",
               "locked until": u.locked_until or "", "last sign-in": (u.last_login_at or "")[:16].replace("T", " "),
               "must change password": u.must_change_password} for u in users],
             hide_index=True, width="stretch")

shown = st.session_state.pop("users_new_password", None)
if shown:
    st.warning(f"New password for **{shown[0]}**: `{shown[1]}`  \nShown once: pass it on securely; they must "
               "change it at first sign-in.", icon=":material/key:")

st.subheader("Create a user")
with st.form("create_user", clear_on_submit=True):
    c1, c2 = st.columns(2)
    username = c1.text_input("Username", help="3-32 characters: lower-case letters, digits, . _ -")
    role = c2.selectbox("Role", ROLES)
    if st.form_submit_button("Create", type="primary", icon=":material/person_add:"):
        try:
            # a throwaway password: the reset below issues the one to hand over, marked must-change
            user = accounts.create(admin.username, username, secrets.token_urlsafe(24), role)
        except AccountError as e:
            st.error(str(e))
        else:
            password = accounts.reset_password(admin.username, user.username)
            st.session_state["users_new_password"] = (user.username, password)
            st.rerun()

st.subheader("Change a user")
target = st.selectbox("User", [u.username for u in users], index=None)
if target:
    u = next(x for x in users if x.username == target)
    c1, c2, c3 = st.columns(3)
    try:
        if c1.button("Enable" if u.disabled else "Disable", icon=":material/block:"):
            accounts.set_disabled(admin.username, target, not u.disabled)
            st.rerun()
        if c2.button("Reset password", icon=":material/key:"):
            st.session_state["users_new_password"] = (target, accounts.reset_password(admin.username, target))
            st.rerun()
        new_role = c3.selectbox("Role", ROLES, index=ROLES.index(u.role), key=f"role-{target}")
        if new_role != u.role and c3.button("Change role"):
            accounts.set_role(admin.username, target, new_role)
            st.rerun()
    except AccountError as e:
        st.error(str(e))
