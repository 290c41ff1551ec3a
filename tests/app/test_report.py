"""The evaluation report: metrics.json, report.md and its plots, with no patient text beyond case ids."""

import json
import re

import pytest

from app.evaluation import compute_metrics
from app.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Two dev cases (data/eval/dev_cases.jsonl), reused under several ids.
DEV_001 = {
    "id": "dev-001",
    "patient": {"age": 34, "sex": "female"},
    "presentation": "34-year-old teacher with 2 months of low mood, poor sleep and less enjoyment since a relationship "
    "ended. Still working and seeing friends. Denies suicidal ideation, no plan or intent, no self-harm.",
    "question": "Does she need an antidepressant or is guided self-help reasonable first?",
    "instruments": {"phq9": [1, 1, 2, 1, 1, 1, 0, 0, 0]},
    "expected": {
        "urgency": "routine",
        "instruments": {"phq9": {"score": 7, "band": "mild", "positive": False, "flags": []}},
        "instrument_errors": [],
        "topics": ["depression"],
        "must_mention": [["guided self-help", "behavioural activation"], ["review", "follow-up"]],
        "must_not_mention": [],
    },
}
DEV_003 = {
    "id": "dev-003",
    "patient": {"age": 61, "sex": "female"},
    "presentation": "61-year-old woman with long-standing depression on sertraline 100 mg and zopiclone. Her daughter "
    "rang to say she has been stockpiling her pills in a drawer and has written goodbye cards.",
    "question": "What should happen with her this afternoon in the surgery?",
    "instruments": {"cssrs": {"q1": True, "q2": True, "q3": True, "q4": True, "q5": True, "q6": False}},
    "expected": {
        "urgency": "emergency",
        "instruments": {"cssrs": {"risk": "high", "flags": []}},
        "instrument_errors": [],
        "topics": ["suicide-risk"],
        "must_mention": [["do not leave", "stay with"], ["emergency department", "ambulance"]],
        "must_not_mention": ["review in 4 weeks"],
    },
}
ANSWER_001 = "Offer guided self-help [1] and review in a month [1]."
ANSWER_003 = "Do not leave her alone [1]; arrange the emergency department today [1]."


def result(case_id: str, urgency: str, answer: str, instruments: dict, topic: str, total_ms: float) -> dict:
    return {
        "id": case_id,
        "urgency": urgency,
        "red_flags": [{"kind": "x", "source": "presentation", "evidence": "written goodbye cards", "urgency": urgency}],
        "instruments": instruments,
        "instrument_errors": {},
        "citations": [{"n": 1, "doc_id": "d", "title": "T", "topic": topic, "section": "s", "page": None, "text": "t"}],
        "answer": answer,
        "verification": {"citations_valid": True, "uncited_recommendations": 0, "fallback_used": False},
        "model": {"name": "test-model", "adapter": None},
        "timings_ms": {"triage": 2.0, "retrieval": 15.0, "generation": total_ms - 20, "total": total_ms},
    }


def scenario() -> tuple[list[dict], list[dict]]:
    """A passing case, a missed emergency with a wrong instrument, a forbidden phrase, a crash, a missing result."""
    cases = [
        {**DEV_001, "id": "ok"},
        {**DEV_003, "id": "missed"},
        {**DEV_003, "id": "forbidden"},
        {**DEV_001, "id": "crashed"},
        {**DEV_003, "id": "absent"},
    ]
    phq9 = {"phq9": {"score": 7, "band": "mild", "positive": False, "flags": []}}
    results = [
        result("ok", "routine", ANSWER_001, phq9, "depression", 900.0),
        result("missed", "urgent", ANSWER_003 + " See [4].", {"cssrs": {"risk": "moderate"}}, "suicide-risk", 1500),
        result(
            "forbidden",
            "emergency",
            ANSWER_003 + " Review in 4 weeks.",
            {"cssrs": {"risk": "high", "flags": []}},
            "suicide-risk",
            40000.0,
        ),
        # A crash whose message echoes the patient's words must not carry them into the report.
        {"id": "crashed", "error": "prompt too long: " + DEV_001["presentation"], "timings_ms": {"triage": 1.0}},
    ]
    return cases, results


RUN_INFO = {
    "model": "qwen2.5-7b-instruct",
    "base_url": "http://gpu-box:8000/v1",
    "date": "2026-03-01",
    "case_file": "data/eval/dev_cases.jsonl",
    "git_commit": "abc1234",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One report shared by the tests that only read it: rendering plots takes about a second."""
    cases, results = scenario()
    metrics = compute_metrics(cases, results)
    report = write_report(tmp_path_factory.mktemp("run"), cases, results, metrics, RUN_INFO)
    return report, metrics, cases, results


def missed_section(text: str) -> str:
    return text.split("## Cases that missed", 1)[1]


def test_write_report_returns_report_md_and_writes_metrics_json(written):
    report, metrics, _, _ = written
    assert report.name == "report.md" and report.is_file()
    assert json.loads((report.parent / "metrics.json").read_text(encoding="utf-8")) == metrics


def test_every_plot_linked_from_the_report_is_a_non_empty_png(written):
    report, _, _, _ = written
    links = re.findall(r"!\[[^\]]*\]\((plots/[^)]+)\)", report.read_text(encoding="utf-8"))
    assert sorted(links) == [
        "plots/grounding.png",
        "plots/instruments.png",
        "plots/latency.png",
        "plots/triage.png",
        "plots/urgency_confusion.png",
        "plots/violations.png",
    ]
    for link in links:
        data = (report.parent / link).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_report_contains_no_presentation_question_or_answer_text(written):
    report, _, cases, _ = written
    text = report.read_text(encoding="utf-8")
    for case in cases:
        assert case["presentation"] not in text
        assert case["question"] not in text
        assert case["presentation"][:40] not in text
    for answer in (ANSWER_001, ANSWER_003):
        assert answer not in text
    assert "written goodbye cards" not in text  # red-flag evidence quotes the patient too


def test_metrics_json_carries_no_patient_text_either(written):
    report, _, cases, _ = written
    text = (report.parent / "metrics.json").read_text(encoding="utf-8")
    assert all(case["presentation"][:40] not in text for case in cases)


def test_header_shows_the_run_info(written):
    report, _, _, _ = written
    text = report.read_text(encoding="utf-8")
    for label, value in [
        ("Model", "qwen2.5-7b-instruct"),
        ("Base URL", "http://gpu-box:8000/v1"),
        ("Date", "2026-03-01"),
        ("Case file", "data/eval/dev_cases.jsonl"),
        ("Git commit", "abc1234"),
    ]:
        assert f"| {label} | {value} |" in text


def test_targets_table_marks_met_and_missed_targets(written):
    text = written[0].read_text(encoding="utf-8")
    assert "| emergency_recall | 0.333 | 1.000 | ✗ |" in text
    assert "| invalid_citation_count | 1 | 0 | ✗ |" in text
    assert "| forbidden_mention_violations | 1 | 0 | ✗ |" in text
    assert "emergency recall 0.333 < 1.0: missed missed, absent" in text


def test_confusion_matrix_is_also_a_markdown_table(written):
    text = written[0].read_text(encoding="utf-8")
    assert "| expected \\ got | routine | urgent | emergency | error | missing |" in text
    assert "| routine | 1 | 0 | 0 | 1 | 0 |" in text
    assert "| emergency | 0 | 1 | 1 | 0 | 1 |" in text


def test_cases_that_missed_lists_each_problem_with_expected_and_got(written):
    section = missed_section(written[0].read_text(encoding="utf-8"))
    assert "### ok" not in section
    assert "- urgency: expected emergency, got urgent (missed emergency)" in section
    assert '- instrument: cssrs.risk: expected "high", got "moderate"' in section
    assert "- invalid citation markers: 1" in section
    assert '- forbidden mention: "review in 4 weeks"' in section
    assert "- failed: [redacted: message quotes the case text]" in section
    assert '- missing mention: expected any of "guided self-help", "behavioural activation"' in section
    assert "### absent\n\n- failed: no result\n- urgency: expected emergency, got missing (no usable triage)" in section


def test_report_writes_leave_no_temporary_files(written):
    run_dir = written[0].parent
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.json", "plots", "report.md"]
    assert not [p for p in (run_dir / "plots").iterdir() if p.suffix != ".png"]


def test_plots_without_data_are_skipped_and_stale_copies_removed(tmp_path):
    case = {**DEV_001, "expected": {**DEV_001["expected"], "instruments": {}}}
    no_timings = {**result("dev-001", "routine", ANSWER_001, {}, "depression", 900.0), "timings_ms": {}}
    stale = tmp_path / "plots" / "latency.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    report = write_report(tmp_path, [case], [no_timings], compute_metrics([case], [no_timings]))
    text = report.read_text(encoding="utf-8")
    assert "plots/latency.png" not in text and "plots/instruments.png" not in text
    assert not stale.exists()
    assert "No timings reported." in text
    assert "None: every scored case passed every check." in text


def test_model_comes_from_the_results_when_run_info_omits_it(tmp_path):
    cases, results = scenario()
    report = write_report(tmp_path, cases, results, compute_metrics(cases, results))
    assert "| Model | test-model |" in report.read_text(encoding="utf-8")
