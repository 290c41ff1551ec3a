"""The consult page: urgency first, scores, the streamed answer, citations that open, feedback, history."""

from __future__ import annotations

from support.app_ui import sign_in, texts

EMERGENCY = "He has been stockpiling his tablets and says he plans to take them all tonight."
DEPRESSION = "Six weeks of low mood, poor sleep and loss of interest. Denies suicidal ideation."


def sources(at):
    return [e for e in at.expander if e.label.startswith("[")]


def consult(at, presentation: str, question: str = "What should I do?"):
    at.text_area(key="consult_presentation").input(presentation)
    at.chat_input[0].set_value(question).run()
    return at


def test_an_emergency_shows_the_red_banner_with_safety_actions_and_a_cited_answer(services, stub):
    at = consult(sign_in("clin"), EMERGENCY)
    assert not at.exception
    banner = at.error[0].value
    assert banner.startswith("### EMERGENCY") and "1. " in banner and "stockpiling" in banner
    shown = texts(at)
    assert stub.sent[-1].replace("[1]", "**[1]**") in shown
    assert sources(at)[0].label.startswith("[1] ")
    assert stub.requests and stub.requests[0]["model"] == stub.model
    [record] = services.records.history("clin")
    assert (record.status, record.urgency) == ("answered", "emergency")


def test_the_banner_comes_before_the_answer_on_the_page(services, stub):
    at = consult(sign_in("clin"), EMERGENCY)
    body = [getattr(el, "value", "") for el in at.main]
    flat = "\n".join(str(v) for v in body)
    quoted = stub.sent[-1].rsplit("[1]. ", 1)[-1].removesuffix(" [1].")  # the excerpt's statement
    assert flat.index("EMERGENCY") < flat.index(quoted)


def test_each_citation_expands_to_its_passage_document_section_and_page(services):
    at = consult(sign_in("clin"), DEPRESSION)
    result = services.records.history("clin")[0].result
    first = result["citations"][0]
    expander = sources(at)[0]
    inside = "\n".join(str(getattr(el, "value", "")) for el in expander)
    assert first["text"][:60] in inside
    assert f"Document `{first['doc_id']}`" in inside and "section" in inside


def test_screening_sent_from_the_screening_page_is_scored_in_the_consult(services):
    at = sign_in("clin")
    at.session_state["screening"] = {"phq9": [2, 2, 2, 2, 2, 2, 2, 2, 0]}
    consult(at, DEPRESSION)
    assert "**PHQ-9**: score 16, moderately severe, positive" in texts(at)


def test_a_dead_model_server_shows_a_clear_error_and_nothing_is_recorded_as_answered(services, stub):
    stub.fail_chat = True
    at = consult(sign_in("clin"), EMERGENCY)
    assert not at.exception
    assert at.error[0].value.startswith("### EMERGENCY")
    assert "could not answer" in at.error[1].value
    [record] = services.records.history("clin")
    assert record.status == "failed" and record.result is None or record.status == "failed"
    assert services.audit.query(action="consult.failed")


def test_a_question_without_a_presentation_is_refused_with_the_reason(services, stub):
    at = sign_in("clin")
    at.chat_input[0].set_value("What dose?").run()
    assert "Describe the patient" in at.error[0].value
    assert not stub.requests and not services.records.history("clin")


def test_feedback_is_stored_with_its_comment(services):
    at = consult(sign_in("clin"), DEPRESSION)
    at.feedback[0].set_value(0)
    [t for t in at.text_input if t.label == "Comment (optional)"][0].input("Too long")
    [b for b in at.button if b.label == "Send feedback"][0].click().run()
    assert "feedback was recorded" in texts(at)
    [record] = services.records.history("clin")
    assert record.feedback[0]["rating"] == -1 and record.feedback[0]["comment"] == "Too long"


def test_the_consult_is_kept_in_the_clinicians_history_and_not_in_anyone_elses(services):
    consult(sign_in("clin"), DEPRESSION, "Should I start an antidepressant?")
    at = sign_in("clin")
    at.switch_page("views/history.py").run()
    assert at.dataframe[0].value["question"].tolist() == ["Should I start an antidepressant?"]
    at.selectbox[0].set_value(services.records.history("clin")[0].id).run()
    assert "Answer" in texts(at)
    admin = sign_in("admin")
    admin.switch_page("views/history.py").run()
    assert "No consults yet." in texts(admin)


def test_the_audit_row_for_a_consult_holds_no_presentation_text(services):
    consult(sign_in("clin"), "John Smith, DOB 12/03/1980, " + DEPRESSION)
    event = services.audit.query(action="consult.run")[0]
    assert "John Smith" not in str(event.detail) and "low mood" not in str(event.detail)
