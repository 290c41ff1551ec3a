"""Curbside's Streamlit entry point: sign-in, then the pages the user's role allows."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app/ui/main.py` puts app/ui on the path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import streamlit as st  # noqa: E402

from app.ui import services as svc  # noqa: E402
from app.ui import session  # noqa: E402

st.set_page_config(page_title="Curbside", page_icon=":material/stethoscope:", layout="wide")

services = svc.get()
user = session.current_user(services)

PAGES = {
    "consult": st.Page("views/consult.py", title="Consult", icon=":material/medical_services:",
                       url_path="consult", default=True),
    "screening": st.Page("views/screening.py", title="Screening", icon=":material/checklist:",
                         url_path="screening"),
    "history": st.Page("views/history.py", title="My consults", icon=":material/history:", url_path="history"),
    "account": st.Page("views/account.py", title="Account", icon=":material/person:", url_path="account"),
    "documents": st.Page("views/documents.py", title="Documents", icon=":material/library_books:",
                         url_path="documents"),
    "models": st.Page("views/models.py", title="Models", icon=":material/memory:", url_path="models"),
    "users": st.Page("views/users.py", title="Users", icon=":material/group:", url_path="users"),
    "audit": st.Page("views/audit.py", title="Audit log", icon=":material/policy:", url_path="audit"),
}
CLINICAL = ("consult", "screening", "history", "account")
ADMIN = ("documents", "models", "users", "audit")

# (The page scripts live in views/, not pages/: a pages/ folder would switch Streamlit to its older
# folder-based navigation and bypass st.navigation.)
# Every page is registered for everyone, and each page checks who may see it: signed out, any URL shows the
# sign-in form; a clinician opening an admin URL gets "not authorised". The menu lists only the user's pages.
page = st.navigation(list(PAGES.values()), position="hidden")
if user is not None and not user.must_change_password:
    with st.sidebar:
        st.markdown("### Curbside")
        for key in CLINICAL:
            st.page_link(PAGES[key])
        if user.role == "admin":
            st.caption("Administration")
            for key in ADMIN:
                st.page_link(PAGES[key])
        st.divider()
        st.caption(f"Signed in as **{user.username}** ({user.role})")
        if st.button("Sign out", icon=":material/logout:"):
            session.sign_out(services)
            st.rerun()

page.run()
