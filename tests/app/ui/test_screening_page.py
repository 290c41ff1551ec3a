"""Screening forms score live with the pipeline's own scoring functions and can be sent into a consult."""

from __future__ import annotations

from support.app_ui import sign_in, texts


def screening():
    at = sign_in("clin")
    at.switch_page("views/screening.py").run()
    return at


def test_a_completed_phq9_is_scored_as_the_consult_would(services):
    at = screening()
    for i in range(9):
        at.radio(key=f"screening-phq9-{i}").set_value("More than half the days" if i < 8 else "Not at all")
    at.run()
    assert "**PHQ-9**: score 16, moderately severe, positive" in texts(at)


def test_an_incomplete_form_is_not_scored(services):
    at = screening()
    at.radio(key="screening-gad7-0").set_value("Nearly every day").run()
    assert "1 of 7 answered" in texts(at)
    assert "**GAD-7**" not in texts(at)


def test_phq9_item_9_is_flagged_whatever_the_total(services):
    at = screening()
    for i in range(9):
        at.radio(key=f"screening-phq9-{i}").set_value("Several days" if i == 8 else "Not at all")
    at.run()
    assert "flags: phq9_item9" in texts(at)


def test_the_cssrs_asks_about_method_only_after_thoughts_of_suicide(services):
    at = screening()
    assert at.toggle(key="screening-cssrs-q3").disabled
    at.toggle(key="screening-cssrs-q2").set_value(True).run()
    assert not at.toggle(key="screening-cssrs-q3").disabled
    at.toggle(key="screening-cssrs-q4").set_value(True).run()
    assert "risk high" in texts(at)


def test_send_to_consult_attaches_the_answers(services):
    at = screening()
    for i in range(2):
        at.radio(key=f"screening-phq2-{i}").set_value("Nearly every day")
    at.run()
    at.button(key="send-phq2").click().run()
    assert at.session_state["screening"] == {"phq2": [3, 3]}
    assert at.title[0].value == "Consult"
    assert "Attached screening: PHQ-2" in texts(at)


def test_epds_wording_is_never_reproduced(services):
    at = screening()
    assert "EPDS" not in [t.label for t in at.tabs]
    assert "laugh" not in texts(at).lower()
