"""The consult pipeline on the real guideline store, with a scripted chat model standing in for the LLM."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app.consult import CaseError, ConsultConfig, ConsultPipeline
from app.verification import cited_numbers, extractive_answer, statements, terms
from retrieval.store import GuidelineStore, StoreConfig

DEPRESSION = {
    "id": "t-1", "patient": {"age": 40, "sex": "female"},
    "presentation": "Six weeks of low mood, poor sleep and loss of interest. Denies suicidal ideation.",
    "question": "Should I start an antidepressant?",
    "instruments": {"phq9": [2, 2, 2, 2, 1, 1, 1, 1, 0], "gad7": [1, 1, 1]},
}
EMERGENCY = {
    "id": "t-2", "patient": {"age": 30, "sex": "male"},
    "presentation": "He has been stockpiling his tablets and says he plans to take them all tonight.",
    "question": "What do I do now?",
}


class Tripwire(dict):
    """A case whose `expected` may not be read."""

    def __getitem__(self, key):
        assert key != "expected", "the pipeline read expected"
        return super().__getitem__(key)

    def get(self, key, default=None):
        assert key != "expected", "the pipeline read expected"
        return super().get(key, default)


class BrokenChat:
    def stream(self, messages):
        raise ConnectionError("connection refused")


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder, models_dir) -> GuidelineStore:
    store = GuidelineStore(StoreConfig(root=tmp_path_factory.mktemp("store"), models_dir=models_dir), embedder)
    store.seed_bundled()
    return store


def pipeline(store, *answers: str, chat=None) -> ConsultPipeline:
    return ConsultPipeline(store, ConsultConfig(model="test-model"), chat or FakeListChatModel(responses=list(answers)))


def grounded(store, case: dict) -> str:
    """A statement of the first retrieved excerpt (retrieval is deterministic), the one sharing most terms with the
    question, cited to it."""
    first = pipeline(store, "").run(case)["citations"][0]["text"]
    asked = terms(case["question"])
    return max(statements(first), key=lambda s: len(asked & terms(s))).rstrip(".") + " [1]."


def test_a_grounded_answer_is_shown_as_written_with_its_citations(store):
    answer = "PHQ-9 of 12 is moderate depression. " + grounded(store, DEPRESSION)
    result = pipeline(store, answer).run(DEPRESSION)
    assert result["answer"] == answer
    assert result["verification"] == {**result["verification"], "citations_valid": True, "fallback_used": False,
                                      "uncited_recommendations": 0}
    assert result["instruments"]["phq9"] == {"score": 12, "band": "moderate", "positive": True, "flags": []}
    assert "gad7" in result["instrument_errors"]  # three items: reported, and the rest of the case still ran
    assert result["urgency"] == "routine" and result["red_flags"] == []
    assert any(c["topic"] == "depression" for c in result["citations"])
    assert [c["n"] for c in result["citations"]] == list(range(1, len(result["citations"]) + 1))
    json.dumps(result)  # the contract result is JSON-serialisable


def test_an_answer_citing_a_missing_excerpt_falls_back_to_guideline_statements(store):
    result = pipeline(store, "Start sertraline 50 mg [9].").run(DEPRESSION)
    v = result["verification"]
    assert v["fallback_used"] and not v["citations_valid"] and v["invalid_markers"] == [9]
    assert "[9]" not in result["answer"] and result["generated_answer"] == "Start sertraline 50 mg [9]."
    for line in result["answer"].splitlines()[1:]:
        n = int(line.rsplit("[", 1)[1].rstrip("]"))
        quoted = line[2:].rsplit(" [", 1)[0].rstrip(".")
        assert quoted in result["citations"][n - 1]["text"]  # an exact statement of the cited excerpt


def test_the_fallback_to_a_vague_question_quotes_the_statements_about_this_patient(store):
    case = {"id": "t-3", "patient": {"age": 52, "sex": "male"}, "question": "What now?",
            "presentation": "Bipolar disorder on lithium for a year; his lithium level and thyroid function "
                            "were last checked eight months ago."}
    result = pipeline(store, "Start sertraline 50 mg [9].").run(case)
    texts = [c["text"] for c in result["citations"]]
    assert result["verification"]["fallback_used"]
    assert result["answer"] == extractive_answer(case["question"], texts, presentation=case["presentation"])
    assert result["answer"] != extractive_answer(case["question"], texts)  # the question alone picks others
    assert "lithium" in result["answer"].lower()


def test_an_uncited_recommendation_is_never_presented_as_guidance(store):
    result = pipeline(store, "Depression is likely [1]. You should start paroxetine today.").run(DEPRESSION)
    assert result["verification"]["fallback_used"] and result["verification"]["uncited_recommendations"] == 1
    assert "paroxetine today" not in result["answer"]


def test_a_citation_that_does_not_support_its_sentence_is_never_presented_as_guidance(store):
    invented = "Start lithium at 2000 mg daily and stop all antidepressants [1]."
    result = pipeline(store, invented).run(DEPRESSION)
    v = result["verification"]
    assert v["citations_valid"] and v["fallback_used"] and v["unsupported_sentences"] == [invented]
    assert "2000 mg" not in result["answer"] and result["generated_answer"] == invented


def test_a_grounded_answer_to_another_question_is_not_shown(store):
    citations = pipeline(store, "").run(DEPRESSION)["citations"]
    asked = terms(DEPRESSION["question"])
    other = next((n, s) for n, c in enumerate(citations, 1) for s in statements(c["text"])
                 if len(s) > 40 and not asked & terms(s))
    beside_the_point = f"{other[1].rstrip('.')} [{other[0]}]."
    result = pipeline(store, beside_the_point).run(DEPRESSION)
    v = result["verification"]
    assert v["fallback_used"] and v["reason"].startswith("does not address the question (uses none of ")
    assert "antidepressant" in v["reason"] and result["answer"].startswith("From the cited guidelines:")


def test_an_abstention_is_shown_with_the_closest_guideline_statements(store):
    reply = "The guideline excerpts provided do not answer this question."
    result = pipeline(store, reply).run(DEPRESSION)
    v = result["verification"]
    assert v["abstained"] and not v["fallback_used"] and v["reason"] is None
    head, tail = result["answer"].split("\n\n", 1)
    assert head == reply and tail.startswith("Closest statements in the retrieved guidelines:")
    assert cited_numbers(tail) and max(cited_numbers(tail)) <= len(result["citations"])


def test_an_emergency_answer_that_ignores_the_emergency_is_not_shown(store):
    beside_the_point = grounded(store, EMERGENCY)
    result = pipeline(store, beside_the_point).run(EMERGENCY)
    assert result["urgency"] == "emergency" and result["verification"]["fallback_used"]
    assert result["verification"]["reason"] == "an emergency answer must open with its safety actions"
    led = "Urgency is EMERGENCY. Do not leave the patient alone and arrange same-day emergency evaluation [1]."
    shown = pipeline(store, led).run(EMERGENCY)
    assert shown["answer"] == led and not shown["verification"]["fallback_used"]


def test_a_dead_model_server_still_yields_a_complete_result(store):
    result = pipeline(store, chat=BrokenChat()).run(DEPRESSION)
    assert result["verification"]["fallback_used"]
    assert "connection refused" in result["verification"]["reason"]
    assert result["answer"] and result["citations"]


def test_an_emergency_carries_safety_actions_and_suicide_risk_guidance(store):
    result = pipeline(store, "Stay calm [1].").run(EMERGENCY)
    assert result["urgency"] == "emergency"
    assert result["red_flags"] and all(f["evidence"] in EMERGENCY["presentation"] for f in result["red_flags"])
    actions = " ".join(result["safety_actions"]).lower()
    assert "alone" in actions and "emergency" in actions
    assert result["citations"][0]["topic"] == "suicide-risk"


def test_the_model_cannot_lower_the_urgency(store):
    result = pipeline(store, "This is routine; no urgency [1]. Review in 4 weeks [1].").run(EMERGENCY)
    assert result["urgency"] == "emergency"


def test_the_pipeline_never_reads_expected(store):
    case = Tripwire({**DEPRESSION, "expected": {"urgency": "emergency"}})
    assert pipeline(store, "Offer CBT [1].").run(case)["urgency"] == "routine"


def test_tokens_are_streamed_to_the_caller(store):
    seen: list[str] = []
    pipeline(store, "Offer CBT [1].").run(DEPRESSION, on_token=seen.append)
    assert "".join(seen) == "Offer CBT [1]."


@pytest.mark.parametrize("case, message", [
    ([], "JSON object"),
    ({"id": "x", "question": "q"}, "presentation is required"),
    ({"id": "x", "presentation": "p", "question": 3}, "question must be text"),
    ({"id": "x", "presentation": "p", "question": "q", "patient": "old"}, "patient must be an object"),
])
def test_an_unusable_case_is_refused_with_the_reason(store, case, message):
    with pytest.raises(CaseError, match=message):
        pipeline(store, "x").run(case)


def test_timings_cover_every_stage_and_the_deterministic_part_is_recorded(store):
    result = pipeline(store, "Offer CBT [1].").run(DEPRESSION)
    assert set(result["timings_ms"]) == {"triage", "retrieval", "generation", "verification", "total"}
    assert all(v >= 0 for v in result["timings_ms"].values())


def test_assess_decides_urgency_and_scores_without_the_model(store):
    calls = []

    class Recorder:
        def stream(self, messages):
            calls.append(messages)
            yield from ()

    a = pipeline(store, chat=Recorder()).assess(EMERGENCY)
    assert a.findings.urgency == "emergency" and a.to_dict()["safety_actions"]
    assert calls == []


def test_run_reuses_a_given_assessment_and_reports_a_generation_error(store):
    p = pipeline(store, chat=BrokenChat())
    a = p.assess(DEPRESSION)
    result = p.run(DEPRESSION, assessment=a)
    assert result["instruments"]["phq9"]["score"] == 12
    assert result["timings_ms"]["triage"] == a.triage_ms
    assert "connection refused" in result["generation_error"]
    assert pipeline(store, "Start an SSRI [1].").run(DEPRESSION)["generation_error"] is None


def test_a_streaming_consult_yields_the_tokens_then_the_same_result(store):
    from app.consult import StreamingConsult

    p = pipeline(store, grounded(store, DEPRESSION))
    streaming = StreamingConsult(p, DEPRESSION, p.assess(DEPRESSION))
    text = "".join(streaming.tokens())
    result = streaming.result()
    assert text.strip() == result["answer"] and result["citations"]


def test_a_streaming_consult_raises_the_workers_error_on_result(store):
    from app.consult import StreamingConsult

    streaming = StreamingConsult(pipeline(store, "x"), {"id": "bad", "question": "q"})
    assert list(streaming.tokens()) == []
    with pytest.raises(CaseError, match="presentation is required"):
        streaming.result()
