"""Scoring consult results against evaluation cases: per-case verdicts, run metrics, targets and --strict."""

import copy
import json

import pytest

from app.evaluation import (
    REDACTED,
    TARGETS,
    citation_markers,
    compute_metrics,
    latency_summary,
    load_jsonl,
    score_case,
    strict_failures,
    target_report,
)

# Copied from data/eval/dev_cases.jsonl so these tests do not move when the dev set is edited.
DEV_001 = {
    "id": "dev-001",
    "patient": {"age": 34, "sex": "female"},
    "presentation": "34-year-old teacher with 2 months of low mood, poor sleep and less enjoyment since a relationship "
    "ended. Still working and seeing friends. Denies suicidal ideation, no plan or intent, no self-harm. No past "
    "psychiatric history; drinks 2-3 units a week.",
    "question": "Does she need an antidepressant or is guided self-help reasonable first?",
    "instruments": {"phq9": [1, 1, 2, 1, 1, 1, 0, 0, 0], "gad7": [1, 1, 1, 0, 0, 1, 0]},
    "expected": {
        "urgency": "routine",
        "instruments": {
            "phq9": {"score": 7, "band": "mild", "positive": False, "flags": []},
            "gad7": {"score": 4, "band": "minimal", "positive": False, "flags": []},
        },
        "instrument_errors": [],
        "topics": ["depression"],
        "must_mention": [
            ["guided self-help", "self-help", "behavioural activation", "behavioral activation", "cbt"],
            ["review", "follow-up", "follow up", "repeat the phq-9", "rescreen"],
        ],
        "must_not_mention": [],
    },
}
DEV_002 = {
    "id": "dev-002",
    "patient": {"age": 52, "sex": "male"},
    "presentation": "52-year-old man, made redundant 2 months ago, with 6 weeks of low mood, early waking and weight "
    "loss. PHQ-9 today 16 with item 9 scored 1: he has fleeting thoughts that he would be better off dead but no plan "
    "or intent, and says his children keep him going. No previous self-harm; no firearms at home.",
    "question": "How should I manage this today and what treatment would you start?",
    "instruments": {"phq9": [2, 2, 3, 2, 2, 2, 1, 1, 1]},
    "expected": {
        "urgency": "urgent",
        "instruments": {
            "phq9": {"score": 16, "band": "moderately severe", "positive": True, "flags": ["phq9_item9"]},
        },
        "instrument_errors": [],
        "topics": ["depression", "suicide-risk"],
        "must_mention": [["safety plan", "safety planning"], ["antidepressant", "ssri", "sertraline", "cbt"]],
        "must_not_mention": [],
    },
}
DEV_003 = {
    "id": "dev-003",
    "patient": {"age": 61, "sex": "female"},
    "presentation": "61-year-old woman with long-standing depression on sertraline 100 mg and zopiclone. Her daughter "
    "rang to say she has been stockpiling her pills in a drawer and has written goodbye cards. In clinic she admits "
    "she intends to take them all this weekend when her husband is away.",
    "question": "What do I do now?",
    "instruments": {
        "phq9": [3, 3, 3, 3, 2, 3, 2, 2, 3],
        "cssrs": {"q1": True, "q2": True, "q3": True, "q4": True, "q5": True, "q6": False, "q6_past_3_months": False},
    },
    "expected": {
        "urgency": "emergency",
        "instruments": {
            "phq9": {"score": 24, "band": "severe", "positive": True, "flags": ["phq9_item9"]},
            "cssrs": {"risk": "high", "flags": []},
        },
        "instrument_errors": [],
        "topics": ["suicide-risk", "depression"],
        "must_mention": [
            ["do not leave", "not be left alone", "stay with", "supervision"],
            ["emergency department", "ambulance", "crisis team", "same-day emergency"],
            ["stockpile", "lethal means", "means restriction", "remove the tablets"],
        ],
        "must_not_mention": ["review in 4 weeks", "review in four weeks"],
    },
}
DEV_013 = {
    "id": "dev-013",
    "patient": {"age": 25, "sex": "female", "pregnant": True},
    "presentation": "25-year-old, 28 weeks pregnant, with low mood and anxiety since a scan showed a growth concern. "
    "She says she sometimes wishes she could go to sleep and not wake up, but has no plan or intent. The midwife's "
    "EPDS was transcribed with one item missing.",
    "question": "How should I assess and treat her?",
    "instruments": {"epds": [2, 2, 2, 2, 1, 2, 2, 1, 1], "gad7": [2, 2, 2, 1, 1, 2, 1]},
    "expected": {
        "urgency": "urgent",
        "instruments": {"gad7": {"score": 11, "band": "moderate", "positive": True, "flags": []}},
        "instrument_errors": ["epds"],
        "topics": ["perinatal", "suicide-risk", "anxiety"],
        "must_mention": [["safety plan", "safety planning"], ["epds", "edinburgh"]],
        "must_not_mention": ["start paroxetine", "prescribe paroxetine", "switch to paroxetine"],
    },
}
TIMINGS = {"triage": 2.0, "retrieval": 10.0, "generation": 1000.0, "total": 1012.0}


def case_like(source: dict, case_id: str) -> dict:
    return {**copy.deepcopy(source), "id": case_id}


def perfect_result(case: dict) -> dict:
    """A result that passes every check of `case`: first phrase of each group, citations [1] and [2]."""
    expected = case["expected"]
    phrases = " and ".join(group[0] for group in expected["must_mention"])
    return {
        "id": case["id"],
        "urgency": expected["urgency"],
        "red_flags": [],
        "instruments": copy.deepcopy(expected["instruments"]),
        "instrument_errors": {name: "expected 10 items, got 9" for name in expected["instrument_errors"]},
        "citations": [
            {"n": 1, "doc_id": "doc-a", "title": "A", "topic": expected["topics"][0], "section": "s", "page": None},
            {"n": 2, "doc_id": "doc-b", "title": "B", "topic": "other", "section": "s", "page": 3},
        ],
        "answer": f"Advice: {phrases} [1]. More detail [2].",
        "verification": {"citations_valid": True, "uncited_recommendations": 0, "fallback_used": False},
        "model": {"name": "test-model", "adapter": None},
        "timings_ms": dict(TIMINGS),
    }


def with_changes(result: dict, **changes) -> dict:
    return {**copy.deepcopy(result), **changes}


# --- a run with one defect per case -----------------------------------------------------------------------


def run_cases() -> tuple[list[dict], list[dict]]:
    """Eleven scored cases, each perfect but for the defect its id names, one unscored case and a stray result."""
    cases = {
        "perfect": case_like(DEV_001, "perfect"),
        "missed-emergency": case_like(DEV_003, "missed-emergency"),
        "over-triage": case_like(DEV_002, "over-triage"),
        "wrong-phq9": case_like(DEV_002, "wrong-phq9"),
        "invalid-reported": case_like(DEV_013, "invalid-reported"),
        "invalid-unreported": case_like(DEV_013, "invalid-unreported"),
        "bad-citation": case_like(DEV_001, "bad-citation"),
        "forbidden": case_like(DEV_003, "forbidden"),
        "missing-mention": case_like(DEV_001, "missing-mention"),
        "errored": case_like(DEV_002, "errored"),
        "no-result": case_like(DEV_003, "no-result"),
    }
    unscored = {k: v for k, v in case_like(DEV_001, "unscored").items() if k != "expected"}
    good = {case_id: perfect_result(case) for case_id, case in cases.items()}
    wrong_phq9 = copy.deepcopy(good["wrong-phq9"]["instruments"])
    wrong_phq9["phq9"]["score"] = 15
    results = [
        good["perfect"],
        with_changes(good["missed-emergency"], urgency="urgent"),
        with_changes(good["over-triage"], urgency="emergency"),
        with_changes(good["wrong-phq9"], instruments=wrong_phq9),
        good["invalid-reported"],
        with_changes(
            good["invalid-unreported"],
            instruments={**good["invalid-unreported"]["instruments"], "epds": {"score": 15, "positive": True}},
            instrument_errors={},
        ),
        with_changes(good["bad-citation"], answer="Self-help [1, 2], review [1][2] and a made-up source [3]."),
        with_changes(good["forbidden"], answer=good["forbidden"]["answer"] + " Review in 4 weeks."),
        with_changes(
            good["missing-mention"],
            answer="Guided self-help [1].",
            verification={"citations_valid": True, "uncited_recommendations": 0, "fallback_used": True},
        ),
        # A failed case fails every check even though its partial fields would pass.
        with_changes(good["errored"], error="generation timed out", timings_ms={"triage": 1.0, "total": 5.0}),
        with_changes(perfect_result(DEV_001), id="unscored", timings_ms={"triage": 999.0}),
        with_changes(perfect_result(DEV_001), id="stray"),
    ]
    return [*cases.values(), unscored], results


@pytest.fixture(scope="module")
def metrics() -> dict:
    cases, results = run_cases()
    return compute_metrics(cases, results)


def test_counts_scored_failed_unscored_and_unmatched(metrics):
    assert (metrics["n_cases"], metrics["n_errors"], metrics["n_missing"]) == (11, 2, 1)
    assert (metrics["n_unscored_cases"], metrics["n_unmatched_results"]) == (1, 1)
    assert [c["id"] for c in metrics["per_case"]] == [c["id"] for c in run_cases()[0][:11]]


def test_urgency_metrics_count_failed_cases_as_wrong(metrics):
    assert metrics["urgency_accuracy"] == 7 / 11
    assert metrics["over_triage_rate"] == 1 / 11
    # missed-emergency, errored and no-result: a failure raised no alarm, so it counts as under-triage.
    assert metrics["under_triage_count"] == 3


def test_urgency_confusion_adds_error_and_missing_columns_only_when_they_occur(metrics):
    assert metrics["urgency_confusion"] == {
        "routine": {"routine": 3, "urgent": 0, "emergency": 0, "error": 0, "missing": 0},
        "urgent": {"routine": 0, "urgent": 3, "emergency": 1, "error": 1, "missing": 0},
        "emergency": {"routine": 0, "urgent": 1, "emergency": 1, "error": 0, "missing": 1},
    }


def test_emergency_recall_counts_a_case_without_result_as_missed(metrics):
    assert metrics["n_emergency"] == 3
    assert metrics["emergency_recall"] == 1 / 3
    assert metrics["emergency_missed"] == ["missed-emergency", "no-result"]


def test_instrument_accuracy_counts_expected_entries_and_expected_validation_errors(metrics):
    assert metrics["n_instrument_checks"] == 19
    assert metrics["instrument_accuracy"] == 14 / 19
    assert metrics["instrument_accuracy_by_name"] == {
        "cssrs": {"n": 3, "correct": 2, "accuracy": 2 / 3},
        "epds": {"n": 2, "correct": 1, "accuracy": 0.5},
        "gad7": {"n": 5, "correct": 5, "accuracy": 1.0},
        "phq9": {"n": 9, "correct": 6, "accuracy": 6 / 9},
    }


def test_instrument_mismatches_name_case_field_expected_and_got(metrics):
    assert metrics["instrument_mismatches"] == [
        "wrong-phq9: phq9.score: expected 16, got 15",
        "invalid-unreported: epds: expected a validation error, got a scored entry",
        "errored: phq9: expected a scored entry, got none",
        "no-result: phq9: expected a scored entry, got none",
        "no-result: cssrs: expected a scored entry, got none",
    ]


def test_answer_metrics_count_topics_mentions_forbidden_phrases_and_bad_markers(metrics):
    assert metrics["citation_topic_hit_rate"] == 9 / 11
    assert metrics["required_mention_recall"] == 19 / 25
    assert metrics["forbidden_mention_violations"] == 1
    assert metrics["forbidden_mentions"] == ["forbidden: review in 4 weeks"]
    assert metrics["invalid_citation_count"] == 1
    assert metrics["fallback_rate"] == 1 / 11


def test_latency_ignores_failed_and_unscored_results(metrics):
    expected = {stage: {"n": 9, "p50": v, "p90": v, "p99": v, "mean": v, "max": v} for stage, v in TIMINGS.items()}
    assert metrics["latency_ms"] == expected
    assert list(metrics["latency_ms"]) == ["triage", "retrieval", "generation", "total"]


def test_metrics_are_json_serialisable(metrics):
    assert json.loads(json.dumps(metrics)) == metrics


def test_strict_failures_name_the_failing_case_ids(metrics):
    assert strict_failures(metrics) == [
        "emergency recall 0.333 < 1.0: missed missed-emergency, no-result",
        "instrument accuracy 0.737 < 1.0: wrong in wrong-phq9, invalid-unreported, errored, no-result",
    ]


def test_target_report_marks_every_target_missed_on_the_defective_run(metrics):
    rows = target_report(metrics)
    assert [name for name, *_ in rows] == list(TARGETS)
    assert dict((name, (value, target, met)) for name, value, target, met in rows) == {
        "emergency_recall": (1 / 3, 1.0, False),
        "urgency_accuracy": (7 / 11, 0.9, False),
        "instrument_accuracy": (14 / 19, 1.0, False),
        "citation_topic_hit_rate": (9 / 11, 0.9, False),
        "invalid_citation_count": (1, 0, False),
        "forbidden_mention_violations": (1, 0, False),
    }


def test_perfect_run_meets_every_target_and_passes_strict():
    cases = [DEV_001, DEV_002, DEV_003, DEV_013]
    metrics = compute_metrics(cases, [perfect_result(c) for c in cases])
    assert all(met for *_, met in target_report(metrics))
    assert strict_failures(metrics) == []
    assert metrics["instrument_mismatches"] == []
    assert metrics["required_mention_recall"] == 1.0


def test_run_without_emergencies_has_recall_one_and_says_so():
    metrics = compute_metrics([DEV_001], [perfect_result(DEV_001)])
    assert (metrics["emergency_recall"], metrics["n_emergency"]) == (1.0, 0)


def test_empty_run_measures_nothing_and_meets_no_rate_target():
    metrics = compute_metrics([], [])
    assert metrics["urgency_accuracy"] is None
    assert metrics["instrument_accuracy"] is None
    met = {name: ok for name, _, _, ok in target_report(metrics)}
    assert met["urgency_accuracy"] is False and met["instrument_accuracy"] is False


def test_latency_summary_covers_every_key_with_interpolated_percentiles():
    summary = latency_summary(
        [{"generation": 100, "total": 120}, {"generation": 200, "rerank": 7.5}, {"generation": 1000}]
    )
    assert summary["generation"] == {"n": 3, "p50": 200.0, "p90": 840.0, "p99": 984.0, "mean": 433.333, "max": 1000.0}
    assert summary["rerank"] == {"n": 1, "p50": 7.5, "p90": 7.5, "p99": 7.5, "mean": 7.5, "max": 7.5}
    assert list(summary) == ["generation", "total", "rerank"]


# --- score_case -------------------------------------------------------------------------------------------


def test_perfect_result_passes_every_check():
    verdict = score_case(DEV_003, perfect_result(DEV_003))
    assert verdict == {
        "id": "dev-003",
        "error": None,
        "urgency_expected": "emergency",
        "urgency_got": "emergency",
        "urgency_correct": True,
        "emergency_missed": False,
        "over_triaged": False,
        "under_triaged": False,
        "instruments_correct": True,
        "instrument_checks": {"phq9": True, "cssrs": True},
        "instrument_mismatches": [],
        "topics_expected": ["suicide-risk", "depression"],
        "citation_topics": ["other", "suicide-risk"],
        "citation_topic_hit": True,
        "mention_groups": 3,
        "mentions_missing": [],
        "forbidden_found": [],
        "invalid_citations": 0,
        "fallback_used": False,
    }


def test_missed_emergency_is_under_triage_not_over_triage():
    verdict = score_case(DEV_003, with_changes(perfect_result(DEV_003), urgency="routine"))
    assert (verdict["emergency_missed"], verdict["under_triaged"], verdict["over_triaged"]) == (True, True, False)


def test_over_triage_is_flagged_and_is_not_a_missed_emergency():
    verdict = score_case(DEV_001, with_changes(perfect_result(DEV_001), urgency="urgent"))
    assert (verdict["over_triaged"], verdict["under_triaged"], verdict["emergency_missed"]) == (True, False, False)


@pytest.mark.parametrize(
    "result, label",
    [
        (None, "missing"),
        ({"id": "dev-001", "error": "boom", "urgency": "routine"}, "error"),
        ({"id": "dev-001", "answer": ""}, "missing"),
        ({"id": "dev-001", "urgency": "Routine"}, "invalid"),
    ],
)
def test_unusable_urgency_gets_a_failure_label_and_is_wrong(result, label):
    verdict = score_case(DEV_001, result)
    assert (verdict["urgency_got"], verdict["urgency_correct"], verdict["over_triaged"]) == (label, False, False)


def test_result_with_error_fails_every_check_that_needs_a_result():
    verdict = score_case(DEV_001, with_changes(perfect_result(DEV_001), error="model server unreachable"))
    assert verdict["error"] == "model server unreachable"
    assert verdict["instruments_correct"] is False
    assert verdict["citation_topic_hit"] is False
    assert verdict["mentions_missing"] == DEV_001["expected"]["must_mention"]
    assert verdict["fallback_used"] is None


def test_no_result_is_reported_as_such():
    assert score_case(DEV_001, None)["error"] == "no result"


def test_error_message_quoting_the_presentation_is_redacted():
    message = "tokenizer failed on: " + DEV_002["presentation"][:90]
    assert score_case(DEV_002, with_changes(perfect_result(DEV_002), error=message))["error"] == REDACTED


def test_wrong_score_names_instrument_field_expected_and_got():
    result = perfect_result(DEV_002)
    result["instruments"]["phq9"]["score"] = 13
    assert score_case(DEV_002, result)["instrument_mismatches"] == ["phq9.score: expected 16, got 13"]


def test_missing_field_and_string_values_are_shown_quoted():
    result = perfect_result(DEV_002)
    del result["instruments"]["phq9"]["band"]
    result["instruments"]["phq9"]["flags"] = []
    assert score_case(DEV_002, result)["instrument_mismatches"] == [
        'phq9.band: expected "moderately severe", got none',
        'phq9.flags: expected ["phq9_item9"], got []',
    ]


def test_flag_order_does_not_matter_but_positive_must_be_a_bool():
    result = perfect_result(DEV_003)
    result["instruments"]["phq9"]["flags"] = ["phq9_item9"]
    result["instruments"]["cssrs"]["flags"] = []
    assert score_case(DEV_003, result)["instruments_correct"] is True
    result["instruments"]["phq9"]["positive"] = 1
    assert score_case(DEV_003, result)["instrument_mismatches"] == ["phq9.positive: expected true, got 1"]


def test_expected_invalid_instrument_reported_as_error_passes():
    verdict = score_case(DEV_013, perfect_result(DEV_013))
    assert (verdict["instruments_correct"], verdict["instrument_checks"]) == (True, {"gad7": True, "epds": True})


def test_expected_invalid_instrument_not_reported_fails():
    verdict = score_case(DEV_013, with_changes(perfect_result(DEV_013), instrument_errors={}))
    assert verdict["instrument_checks"] == {"gad7": True, "epds": False}
    assert verdict["instrument_mismatches"] == ["epds: expected a validation error, got none"]


def test_validation_error_on_an_instrument_expected_valid_fails():
    result = with_changes(perfect_result(DEV_001), instrument_errors={"gad7": "expected 7 items, got 6"})
    del result["instruments"]["gad7"]
    assert score_case(DEV_001, result)["instrument_mismatches"] == [
        'gad7: expected a scored entry, got validation error "expected 7 items, got 6"'
    ]


def test_validation_error_nobody_expected_is_a_mismatch():
    result = with_changes(perfect_result(DEV_001), instrument_errors={"asq": "unexpected field q9"})
    verdict = score_case(DEV_001, result)
    assert verdict["instrument_mismatches"] == ['asq: unexpected validation error "unexpected field q9"']
    assert verdict["instruments_correct"] is False


def test_instruments_correct_is_none_when_no_instrument_is_expected():
    case = copy.deepcopy(DEV_001)
    case["expected"]["instruments"] = {}
    assert score_case(case, perfect_result(case))["instruments_correct"] is None


@pytest.mark.parametrize(
    "answer, invalid",
    [
        ("See [1] and [2].", 0),
        ("See [1, 2].", 0),
        ("See [1][2].", 0),
        ("See [3].", 1),
        ("See [1, 3] and [2][4].", 2),
        ("See [ 3 ,4 ].", 2),
        ("No markers, PHQ-9 [score 7] and [a].", 0),
    ],
)
def test_invalid_citations_count_markers_naming_no_citation(answer, invalid):
    result = with_changes(perfect_result(DEV_001), answer=answer)
    assert score_case(DEV_001, result)["invalid_citations"] == invalid


def test_citation_markers_split_grouped_and_adjacent_markers():
    assert citation_markers("a [1], b [2, 3] and c [1][2]") == [1, 2, 3, 1, 2]


def test_mentions_match_case_insensitively_across_line_breaks():
    result = with_changes(perfect_result(DEV_001), answer="Offer GUIDED\nself-help, then Follow-Up.")
    assert score_case(DEV_001, result)["mentions_missing"] == []


def test_unsatisfied_mention_group_is_returned_whole():
    result = with_changes(perfect_result(DEV_001), answer="Offer CBT [1].")
    assert score_case(DEV_001, result)["mentions_missing"] == [DEV_001["expected"]["must_mention"][1]]


def test_forbidden_phrase_is_found_case_insensitively():
    result = with_changes(perfect_result(DEV_003), answer=perfect_result(DEV_003)["answer"] + " Review In 4 Weeks.")
    assert score_case(DEV_003, result)["forbidden_found"] == ["review in 4 weeks"]


def test_citation_topic_hit_is_none_without_expected_topics():
    case = copy.deepcopy(DEV_001)
    case["expected"]["topics"] = []
    assert score_case(case, {"id": "dev-001", "urgency": "routine", "citations": []})["citation_topic_hit"] is None


def test_citation_topic_miss_when_no_citation_has_an_expected_topic():
    result = perfect_result(DEV_001)
    result["citations"][0]["topic"] = "alcohol"
    assert score_case(DEV_001, result)["citation_topic_hit"] is False


def test_case_with_an_unknown_expected_urgency_is_rejected():
    case = copy.deepcopy(DEV_001)
    case["expected"]["urgency"] = "soon"
    with pytest.raises(ValueError, match="dev-001"):
        score_case(case, perfect_result(DEV_001))


# --- load_jsonl -------------------------------------------------------------------------------------------


def test_load_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n', encoding="utf-8")
    assert load_jsonl(path) == [{"id": "a"}, {"id": "b"}]


def test_load_jsonl_names_file_and_line_of_bad_json(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b",\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\.jsonl:2: invalid JSON"):
        load_jsonl(path)


def test_load_jsonl_rejects_a_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\.jsonl:1: expected a JSON object"):
        load_jsonl(path)


def test_dev_cases_load_and_score_perfectly_against_their_own_expectations(repo_root):
    cases = load_jsonl(repo_root / "data" / "eval" / "dev_cases.jsonl")
    metrics = compute_metrics(cases, [perfect_result(c) for c in cases])
    assert metrics["n_cases"] == len(cases) > 0
    assert metrics["instrument_mismatches"] == [] and metrics["forbidden_mentions"] == []
    assert all(met for *_, met in target_report(metrics))
