"""Audit log (admin): who did what and when, filterable; the hash chain can be verified here."""

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from app.audit import ACTIONS, OUTCOMES
from app.ui import auth_forms, session
from app.ui import services as svc

services = svc.get()
admin = session.require_admin(services, auth_forms.require_user(services), "audit")
audit = services.audit

st.title("Audit log")
c1, c2, c3, c4 = st.columns(4)
actor = c1.text_input("User")
# a fixed option list: options that change between runs would reset the widget
action = c2.selectbox("Action", ["any", *ACTIONS])
outcome = c3.selectbox("Outcome", ["any", *OUTCOMES])
days = c4.date_input("Between", value=(datetime.now(UTC).date() - timedelta(days=30), datetime.now(UTC).date()))
text = st.text_input("Contains")

since = until = None
if isinstance(days, tuple) and len(days) == 2:
    since = datetime.combine(days[0], time.min, UTC)
    until = datetime.combine(days[1], time.max, UTC)
events = audit.query(actor=actor.strip() or None, action=None if action == "any" else action,
                     outcome=None if outcome == "any" else outcome, since=since, until=until,
                     text=text.strip() or None, limit=1000)
services.audit.record(admin.username, "audit.view", detail={"rows": len(events)})
st.caption(f"{len(events)} events (newest first, at most 1000)")
st.dataframe([{"id": e.id, "time": e.ts.replace("T", " ")[:23], "user": e.actor, "action": e.action,
               "target": e.target, "outcome": e.outcome, "detail": e.detail} for e in events],
             hide_index=True, width="stretch")

if st.button("Verify the hash chain", icon=":material/verified:"):
    report = audit.verify()
    if report.ok:
        st.success(f"Audit chain intact: {report.rows} rows.")
    else:
        st.error(f"Audit chain broken at row {report.first_bad_id}: {report.reason}")
