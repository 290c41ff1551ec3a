"""Consult: describe the patient, attach screening results, ask; urgency first, then a cited answer."""

import streamlit as st

from app.consult import CaseError, StreamingConsult
from app.records import RecordNotFound
from app.ui import auth_forms, components
from app.ui import services as svc

services = svc.get()
user = auth_forms.require_user(services)

st.title("Consult")
st.session_state.setdefault("screening", {})

with st.expander("Patient", expanded=True):
    c1, c2, c3, c4 = st.columns(4)
    age = c1.number_input("Age", min_value=0, max_value=120, value=None, step=1, key="consult_age")
    sex = c2.selectbox("Sex", ["not stated", "female", "male"], key="consult_sex")
    pregnant = c3.checkbox("Pregnant", key="consult_pregnant")
    postpartum = c4.number_input("Weeks postpartum", min_value=0, max_value=104, value=None, step=1,
                                 key="consult_postpartum")
    presentation = st.text_area("Presentation", key="consult_presentation", height=150,
                                placeholder="History, symptoms, risk, medication, context…")
    attached = st.session_state["screening"]
    if attached:
        st.caption("Attached screening: " + ", ".join(components.INSTRUMENT_NAMES.get(k, k) for k in attached))
        if st.button("Remove screening results", icon=":material/close:"):
            st.session_state["screening"] = {}
            st.rerun()
    else:
        st.caption("No screening attached: use the Screening page to score a questionnaire and send it here.")

current = st.session_state.get("consult_id")
question = st.chat_input("Ask about this patient…")

if question:
    patient = {"age": age, "sex": None if sex == "not stated" else sex, "pregnant": pregnant or None,
               "postpartum_weeks": postpartum}
    case = {"patient": {k: v for k, v in patient.items() if v is not None}, "presentation": presentation,
            "question": question, "instruments": dict(st.session_state["screening"])}
    if not presentation.strip():
        st.error("Describe the patient under Presentation first; the question alone cannot be triaged.")
        st.stop()
    try:
        assessment = services.pipeline.assess(case)
    except CaseError as e:
        st.error(str(e))
        st.stop()
    consult_id = services.records.start(user.username, case)
    st.session_state["consult_id"] = consult_id
    with st.chat_message("user"):
        st.write(question)
    with st.chat_message("assistant"):
        a = assessment.to_dict()
        # Drawn before the model is asked anything: the urgency never waits for (or depends on) prose.
        components.urgency_banner(a["urgency"], a["red_flags"], a["safety_actions"])
        components.instruments(a["instruments"], a["instrument_errors"])
        st.markdown("#### Answer")
        streaming = StreamingConsult(services.pipeline, case, assessment)
        answer_box = st.empty()
        with answer_box, st.spinner("Searching the guidelines and writing an answer…"):
            st.write_stream(streaming.tokens())
        try:
            result = streaming.result()
        except Exception as e:  # noqa: BLE001 - shown, recorded as failed, never as answered
            services.records.fail(consult_id, f"{type(e).__name__}: {e}")
            answer_box.error(f"The consult failed: {e}")
            st.stop()
        if result.get("generation_error"):
            services.records.fail(consult_id, result["generation_error"])
            answer_box.error(
                "The language model could not answer (the inference server may be down or restarting), so "
                "no answer was recorded. The urgency and screening results above do not depend on it and "
                f"stand. Try again in a moment.\n\nDetail: {result['generation_error']}",
                icon=":material/cloud_off:")
            components.citations(services.store, result["citations"], f"c{consult_id}")
            st.stop()
        services.records.finish(consult_id, result)
        with answer_box.container():
            components.answer(result)
        components.citations(services.store, result["citations"], f"c{consult_id}")
elif current is not None:
    try:
        record = services.records.get(current, user.username)
    except RecordNotFound:
        st.session_state.pop("consult_id", None)
    else:
        with st.chat_message("user"):
            st.write(record.question)
        with st.chat_message("assistant"):
            if record.status == "answered" and record.result:
                components.result(services.store, record.result, f"c{record.id}")
            else:
                st.error(f"This consult was not answered: {record.error or 'still running'}")

consult_id = st.session_state.get("consult_id")
if consult_id is not None:
    record = services.records.get(consult_id, user.username)
    if record.status == "answered":
        st.markdown("#### Was this helpful?")
        rating = st.feedback("thumbs", key=f"feedback-{consult_id}")
        comment = st.text_input("Comment (optional)", key=f"feedback-comment-{consult_id}")
        if st.button("Send feedback", key=f"feedback-send-{consult_id}"):
            if rating is None:
                st.error("Choose thumbs up or thumbs down first.")
            else:
                services.records.add_feedback(consult_id, user.username, 1 if rating == 1 else -1,
                                              comment.strip() or None)
                st.success("Thank you: your feedback was recorded.")
