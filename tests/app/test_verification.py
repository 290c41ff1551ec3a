"""Verification: markers must name excerpts, recommendations must cite, failures fall back to quotes."""

from __future__ import annotations

import pytest

from app.verification import check, cited_numbers, extractive_answer, statements, uncited_recommendations

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
