"""Screening questionnaires that score as they are filled in and can be sent into a consult."""

import streamlit as st

from app.instruments import score_instrument
from app.screening_forms import FORMS, ScaleForm, YesNoForm
from app.ui import auth_forms, components
from app.ui import services as svc

services = svc.get()
user = auth_forms.require_user(services)

st.title("Screening")
st.caption("Scores use the same deterministic rules as the consult pipeline. The EPDS is scored in consults "
           "from entered item values; its wording is copyrighted and not shown here.")
st.session_state.setdefault("screening", {})
sex = st.session_state.get("consult_sex")
sex = sex if sex in ("female", "male") else None


def scale(form: ScaleForm):
    answers = []
    for i, item in enumerate(form.items):
        labels = [c.label for c in form.choices[i]]
        picked = st.radio(f"{i + 1}. {item}", labels, index=None, horizontal=True, key=f"screening-{form.key}-{i}")
        answers.append(None if picked is None else labels.index(picked))
    missing = sum(a is None for a in answers)
    if missing:
        st.caption(f"{len(answers) - missing} of {len(answers)} answered")
        return None
    return form.value(answers)


def yes_no(form: YesNoForm):
    answers = {}
    for name, question in form.items:
        gate = form.asked_if.get(name)
        skipped = gate is not None and not answers.get(gate)
        answers[name] = st.toggle(question, key=f"screening-{form.key}-{name}", disabled=skipped,
                                  help="Asked only when the previous answer is yes." if gate else None)
    return form.value(answers)


tabs = st.tabs([f.title.split(" (")[0] for f in FORMS])
for tab, form in zip(tabs, FORMS, strict=True):
    with tab:
        st.subheader(form.title)
        st.write(form.stem)
        value = scale(form) if isinstance(form, ScaleForm) else yes_no(form)
        if value is None:
            continue
        result = score_instrument(form.key, value, sex).to_dict()
        st.markdown(components.describe(form.key, result))
        if st.button("Send to consult", key=f"send-{form.key}", type="primary", icon=":material/send:"):
            st.session_state["screening"][form.key] = value
            st.switch_page("views/consult.py")
