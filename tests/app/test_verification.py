"""Verification: markers must name excerpts, recommendations must cite, failures fall back to quotes."""

from __future__ import annotations

import pytest

from app.verification import (
    abstains,
    check,
    cited_numbers,
    extractive_answer,
    key_facts,
    statements,
    support,
    uncited_recommendations,
)

EXCERPTS = [
    "- Offer a selective serotonin reuptake inhibitor or CBT for moderate depression.\n"
    "- Review within 2 weeks of starting an antidepressant.",
    "- Check lithium levels every 3 months in the first year.\n- Check renal and thyroid function every 6 months.",
]


@pytest.mark.parametrize("text, numbers", [
    ("Offer CBT [1].", [1]),
    ("Offer CBT [1, 2].", [1, 2]),
    ("Offer CBT [1][2].", [1, 2]),
    ("Offer CBT [1-3].", [1, 2, 3]),
    ("No markers here.", []),
    ("A list [a] is not a marker.", []),
])
def test_every_marker_form_names_its_excerpts(text, numbers):
    assert cited_numbers(text) == numbers


def test_a_grounded_answer_passes():
    v = check("PHQ-9 of 16 is moderately severe. Offer an SSRI or CBT [1]. Review within 2 weeks [1].", 2)
    assert v.citations_valid and v.uncited_recommendations == 0 and v.reason is None


def test_a_marker_naming_no_excerpt_fails_verification():
    v = check("Offer CBT [3].", 2)
    assert not v.citations_valid and v.invalid_markers == [3] and "not provided" in v.reason


def test_a_recommendation_without_a_citation_is_flagged():
    v = check("Offer CBT [1]. You should start paroxetine 20 mg today.", 2)
    assert v.citations_valid and v.uncited_recommendations == 1
    assert v.uncited_sentences == ["You should start paroxetine 20 mg today."]


def test_an_answer_with_no_citation_at_all_fails():
    assert check("Depression is common.", 2).reason == "no citations"
    assert check("   ", 2).reason == "empty answer"


def test_descriptive_sentences_need_no_citation():
    assert uncited_recommendations("The PHQ-9 score is 16. This is moderately severe depression.") == []


def test_statements_are_the_bullets_of_an_excerpt():
    assert statements(EXCERPTS[1]) == ["Check lithium levels every 3 months in the first year.",
                                       "Check renal and thyroid function every 6 months."]


def test_the_extractive_fallback_quotes_matching_statements_with_valid_markers():
    answer = extractive_answer("how often should lithium levels be checked", EXCERPTS)
    v = check(answer, len(EXCERPTS))
    assert v.citations_valid and v.uncited_recommendations == 0
    assert "Check lithium levels every 3 months in the first year. [2]" in answer
    assert "serotonin" not in answer  # statements sharing no term with the question are left out


def test_a_vague_question_lets_the_presentation_pick_the_fallback_statements():
    presentation = "On lithium for bipolar disorder since March; her levels were last checked in June."
    by_question = extractive_answer("What now?", EXCERPTS)
    assert "lithium" not in by_question  # "what now" shares no term with any statement: the first two are shown
    answer = extractive_answer("What now?", EXCERPTS, presentation=presentation)
    assert "- Check lithium levels every 3 months in the first year. [2]" in answer
    assert "serotonin" not in answer


def test_a_cited_sentence_must_say_what_its_excerpt_says():
    grounded = "Review within 2 weeks of starting an antidepressant [1]."
    assert check(grounded, 2, EXCERPTS).reason is None
    invented = "Start lithium at 2000 mg daily and stop it after 3 days [1]."
    v = check(invented, 2, EXCERPTS)
    assert v.citations_valid and v.unsupported_sentences == [invented]
    assert v.reason == "1 sentence(s) not supported by the excerpt they cite"
    # one supporting excerpt among those cited is enough
    assert check("Check lithium levels every 3 months [1][2].", 2, EXCERPTS).reason is None
    assert check(invented, 2).reason is None  # without the excerpts' texts only the markers are checked


def test_a_cited_sentence_may_restate_the_consults_own_safety_actions():
    lead = "Do not leave the patient alone and arrange same-day emergency evaluation [1]."
    actions = ["Do not leave the patient alone: keep them supervised until handed over.",
               "Arrange same-day emergency evaluation: emergency department."]
    assert check(lead, 2, EXCERPTS).unsupported_sentences == [lead]
    assert check(lead, 2, EXCERPTS, actions).reason is None


def test_support_is_the_share_of_key_facts_found_in_the_excerpt():
    assert key_facts("Check lithium levels every 3 months [2].") == {"check", "lithium", "level", "3", "month"}
    assert support("Check lithium levels every 3 months [2].", EXCERPTS[1]) == 1.0
    assert support("Check lithium levels every 4 weeks [2].", EXCERPTS[1]) == 0.6
    assert support("This is so [2].", EXCERPTS[1]) == 1.0  # nothing claimed, nothing to support


@pytest.mark.parametrize("answer, abstained, reason", [
    ("The guideline excerpts provided do not answer this question.", True, None),
    ("These excerpts don't cover dosing in pregnancy.", True, None),
    ("The excerpts do not answer this. You should refer to psychiatry.", False, "no citations"),
    ("The excerpts do not cover this [1].", False, "1 sentence(s) not supported by the excerpt they cite"),
    ("Depression is common.", False, "no citations"),
])
def test_an_abstention_that_recommends_nothing_is_a_valid_answer(answer, abstained, reason):
    v = check(answer, 2, EXCERPTS)
    assert (v.abstained, v.reason) == (abstained, reason)
    assert abstains(answer) == (abstained or "refer" in answer)


def test_an_emergency_answer_must_open_with_a_safety_action():
    actions = ["Do not leave the patient alone: keep them supervised until handed over.",
               "Arrange same-day emergency evaluation: emergency department."]
    led = "Urgency is EMERGENCY. Do not leave the patient alone and arrange same-day emergency evaluation [1]."
    assert check(led, 2, EXCERPTS, actions, "emergency").reason is None
    beside_the_point = "Check lithium levels every 3 months in the first year [2]."
    assert check(beside_the_point, 2, EXCERPTS, actions, "emergency").reason == (
        "an emergency answer must open with its safety actions")
    assert check(beside_the_point, 2, EXCERPTS, actions, "urgent").reason is None
    abstention = "The guideline excerpts provided do not answer this question."
    assert check(abstention, 2, EXCERPTS, actions, "emergency").abstained


def test_an_answer_that_says_a_sentence_twice_is_not_shown():
    looped = "Offer CBT for moderate depression [1]. Review within 2 weeks [1]. Offer CBT for  moderate depression [1]."
    assert check(looped, 2, EXCERPTS).reason == "repeats a sentence: 'Offer CBT for  moderate depression [1].'"
    assert check("Offer CBT for moderate depression [1]. Review within 2 weeks [1].", 2, EXCERPTS).reason is None


def test_an_answer_must_address_the_question_when_the_excerpts_can():
    question = "How often should lithium levels be checked?"
    beside_the_point = "Offer CBT for moderate depression [1]."
    assert check(beside_the_point, 2, EXCERPTS, question=question).reason == (
        "does not address the question (uses none of level, lithium)")
    assert check("Check lithium levels every 3 months in the first year [2].", 2, EXCERPTS,
                 question=question).reason is None
    # the excerpts hold none of the question's terms: nothing to hold the answer to
    assert check(beside_the_point, 2, EXCERPTS, question="Can she drive?").reason is None
    # an abstention advises nothing; the pipeline shows the closest statements with it
    abstention = "The guideline excerpts provided do not answer this question."
    assert check(abstention, 2, EXCERPTS, question=question).abstained
    assert check(beside_the_point, 2, EXCERPTS).reason is None  # without the question the rule is off
