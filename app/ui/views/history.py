"""The signed-in clinician's own consults, newest first; open one to see it as it was answered."""

import streamlit as st

from app.ui import auth_forms, components
from app.ui import services as svc

services = svc.get()
user = auth_forms.require_user(services)

st.title("My consults")
records = services.records.history(user.username, limit=100)
if not records:
    st.info("No consults yet.")
    st.stop()

rows = [{"when": r.created_at[:16].replace("T", " "), "urgency": r.urgency or "—", "status": r.status,
         "question": r.question[:120]} for r in records]
st.dataframe(rows, hide_index=True, width="stretch")
labels = {r.id: f"{r.created_at[:16].replace('T', ' ')} · {r.urgency or r.status} · {r.question[:60]}"
          for r in records}
chosen = st.selectbox("Open a consult", list(labels), format_func=labels.get, index=None)
if chosen is not None:
    record = next(r for r in records if r.id == chosen)
    st.markdown(f"**Presentation:** {record.presentation}")
    st.markdown(f"**Question:** {record.question}")
    if record.status == "answered" and record.result:
        components.result(services.store, record.result, f"h{record.id}")
    else:
        st.error(f"Not answered: {record.error or 'still running'}")
    for fb in record.feedback:
        st.caption(f"Your feedback: {'👍' if fb.get('rating', 0) > 0 else '👎'} {fb.get('comment') or ''}")
