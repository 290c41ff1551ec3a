"""The prompt shows each excerpt's part that bears on the question, in the excerpt's own order."""

from __future__ import annotations

from app.prompting import Excerpt, build_messages, excerpt_units, focus

OPENING = [f"- Opioid withdrawal scale item {i} scores restlessness, sweating and yawning on a 0 to 4 range." for i in
           range(8)]
ANSWER = "- Buprenorphine can be started in primary care once withdrawal is at least mild."
CHUNK = "### Induction\n" + "\n".join(OPENING + [ANSWER, "- Offer naloxone to everyone who starts buprenorphine."])


def test_an_excerpt_is_read_as_its_bullets_and_sentences_without_headings():
    assert excerpt_units("## Dosing\n- One bullet.\nA sentence. Another sentence.\n| a | b |") == [
        "- One bullet.", "A sentence.", "Another sentence.", "| a | b |"]


def test_a_short_excerpt_is_shown_whole():
    assert focus("### Induction\n- Short.", "Anything?", "", limit=600) == "### Induction\n- Short."


def test_a_long_excerpt_shows_the_statements_the_question_asks_about_in_their_order():
    assert len(CHUNK) > 600 and CHUNK.index(ANSWER) > 600  # cut at the start, the answer would be hidden
    shown = focus(CHUNK, "Can we start buprenorphine here?", "Man, 34, using heroin daily.", limit=600)
    assert ANSWER in shown and len(shown) <= 600
    assert shown.index(ANSWER) < shown.index("- Offer naloxone")  # the excerpt's order is kept
    assert "### Induction" not in shown


def test_the_question_outranks_the_presentation():
    chunk = "\n".join([f"- Sweating item {i} counts in the withdrawal score for restless patients." for i in range(3)]
                      + ["- Naloxone is offered to every patient."])
    shown = focus(chunk, "Should I offer naloxone?", "Restless and sweating.", limit=130)
    assert shown.startswith("- Sweating item 0") and shown.endswith("- Naloxone is offered to every patient.")
    assert "item 1" not in shown


def test_the_prompt_quotes_each_excerpt_as_focused_on_the_question():
    question, patient = "Can we start buprenorphine here?", "Man, 34."
    messages = build_messages(question, patient, "- Urgency: ROUTINE",
                              [Excerpt(1, "Opioid use disorder", "Induction", CHUNK)])
    user = messages[1]["content"]
    shown = focus(CHUNK, question, patient)
    assert f"[1] Opioid use disorder — Induction\n{shown}\n\nPatient: " in user
    assert ANSWER in shown and OPENING[-1] not in shown
