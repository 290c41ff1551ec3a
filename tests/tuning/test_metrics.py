"""The task metrics, on hand-written answers whose verdicts are obvious."""

from __future__ import annotations

import pytest

from tuning.metrics import abstains, aggregate, key_facts, score_example, selection_score
from tuning.questions import ABSTENTION

PROMPT = ("Computed findings (final):\n- Urgency: ROUTINE\n\nGuideline excerpts:\n[1] Bipolar — Lithium\n- Check "
          "lithium levels every 3 months.\n\n[2] Depression — Follow-up\n- Review in two weeks.\n\n"
          "Patient: 40-year-old.\n\nQuestion: How often should lithium levels be checked?")
REFERENCE = "Once stable, check lithium levels every 3 months for the first year [1]."


def messages(reference: str = REFERENCE) -> list[dict]:
    return [{"role": "system", "content": "s"}, {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": reference}]


def test_key_facts_are_the_references_content_words_not_in_the_question():
    facts = key_facts(REFERENCE, "How often should lithium levels be checked?")
    assert facts == {"once", "stable", "check", "month", "first", "year", "3"}


def test_a_faithful_cited_answer_scores_full_marks():
    row = score_example(messages(), "Check lithium levels every 3 months in the first year once stable [1].")
    assert row["citation_valid"] and row["citation_correct"] and row["format_ok"]
    assert row["key_fact_recall"] == 1.0 and not row["abstained"]


def test_citations_must_name_a_provided_excerpt_and_be_present_when_the_reference_cites():
    assert not score_example(messages(), "Check levels every 3 months [3].")["citation_valid"]
    assert not score_example(messages(), "Check levels every 3 months.")["citation_valid"]
    row = score_example(messages(), "Check levels every 3 months [2].")
    assert row["citation_valid"] and not row["citation_correct"]


def test_an_uncited_recommendation_breaks_format_but_not_validity():
    row = score_example(messages(), "Check levels every 3 months [1]. You should also check thyroid function.")
    assert row["citation_valid"] and not row["format_ok"]


def test_no_answer_cases_reward_abstaining_without_citations():
    abstain = score_example(messages(ABSTENTION), "The excerpts do not answer this; please consult the guideline.")
    assert abstain["abstained"] and abstain["format_ok"] and abstain["citation_valid"]
    guess = score_example(messages(ABSTENTION), "Check levels every 3 months [1].")
    assert not guess["abstained"] and not guess["format_ok"] and guess["citation_valid"]
    assert not abstains("This does not answer it [1].")


def test_urgency_lead_is_checked_on_flagged_references():
    reference = "Urgency is EMERGENCY. Do not leave the patient alone and arrange same-day emergency evaluation [1]."
    assert score_example(messages(reference), "This is an emergency: do not leave her alone [1].")["urgency_lead"]
    assert not score_example(messages(reference), "Check lithium levels [1]. It is an emergency.")["urgency_lead"]


def test_aggregates_are_fractions_and_the_score_weights_the_key_metrics():
    rows = [score_example(messages(), "Check lithium levels every 3 months in the first year once stable [1]."),
            score_example(messages(), "I am not sure."),
            score_example(messages(ABSTENTION), "The excerpts do not answer this question.")]
    metrics = aggregate(rows, nll_sum=6.0, nll_tokens=3)
    assert metrics["citation_validity"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["key_fact_recall"] == 0.5 and metrics["abstention_accuracy"] == 1.0
    assert metrics["perplexity"] == pytest.approx(7.3891, abs=1e-3)
    for key in ("citation_validity", "citation_accuracy", "key_fact_recall", "format_compliance"):
        assert 0 <= metrics[key] <= 1
    assert 0 < selection_score(metrics) < 1
    assert selection_score({"citation_validity": 1.0, "key_fact_recall": 1.0}) == 1.0


def test_citation_support_checks_that_the_cited_excerpt_says_what_the_sentence_says():
    faithful = score_example(messages(), "Check lithium levels every 3 months [1].")
    misattributed = score_example(messages(), "Check lithium levels every 3 months [2].")
    invented = score_example(messages(), "Lithium causes weight gain and hair loss in most people [1].")
    assert faithful["citation_support"] == 1.0
    assert misattributed["citation_support"] == 0.0 and misattributed["citation_valid"]
    assert invented["citation_support"] == 0.0
    assert score_example(messages(), "No markers here.")["citation_support"] is None
