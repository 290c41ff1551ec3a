"""Consult history and feedback: the clinician's own record, a result or an error, and an audit trail
that carries the redacted question and findings but never the presentation."""

import pytest

from app.audit import AuditLog
from app.records import ConsultRecords, RecordError, RecordNotFound
from curbside.errors import CurbsideError

CASE = {
    "id": "ui-1",
    "patient": {"age": 38, "sex": "female"},
    "presentation": "Mrs Sarah Jones, DOB 14/07/1985, 6 weeks of low mood; lives at 12 Acacia Avenue.",
    "question": "Should Sarah start sertraline?",
    "instruments": {"phq9": [2, 2, 2, 2, 2, 2, 2, 1, 1]},
}
RESULT = {
    "urgency": "urgent",
    "red_flags": [{"kind": "passive_death_wish", "source": "phq9"}, {"kind": "self_harm", "source": "text"}],
    "citations": [{"n": 1, "doc_id": "depression-adult"}, {"n": 2, "doc_id": "suicide-risk-assessment"},
                  {"n": 3, "doc_id": "depression-adult"}],
    "answer": "Offer an SSRI [1].",
    "verification": {"fallback_used": False},
}


@pytest.fixture
def audit(tmp_path):
    return AuditLog(tmp_path / "app.db")


@pytest.fixture
def records(tmp_path, audit):
    return ConsultRecords(tmp_path / "app.db", audit)


def test_a_started_consult_is_pending_and_keeps_the_clinicians_own_text(records):
    consult_id = records.start("dr.smith", CASE)
    record = records.get(consult_id)
    assert record.status == "pending" and record.username == "dr.smith"
    assert record.question == CASE["question"] and record.presentation == CASE["presentation"]
    assert record.case == CASE and record.result is None and record.urgency is None and record.feedback == []


def test_a_finished_consult_is_answered_and_audited_without_the_presentation(records, audit):
    consult_id = records.start("dr.smith", CASE)
    record = records.finish(consult_id, RESULT)
    assert record.status == "answered" and record.urgency == "urgent" and record.result == RESULT
    assert record.finished_at is not None
    event = audit.query(action="consult.run")[0]
    assert (event.actor, event.target, event.outcome) == ("dr.smith", f"consult:{consult_id}", "ok")
    assert event.detail == {
        "consult_id": consult_id,
        "urgency": "urgent",
        "red_flags": ["passive_death_wish", "self_harm"],
        "citations": ["depression-adult", "suicide-risk-assessment"],
        "fallback_used": False,
        "question": "Should [NAME] start sertraline?",
    }
    logged = str([e.to_dict() for e in audit.query()])
    assert "Acacia" not in logged and "low mood" not in logged and "Sarah" not in logged


def test_a_failed_consult_is_never_marked_answered(records, audit):
    consult_id = records.start("dr.smith", CASE)
    record = records.fail(consult_id, "generation failed: ConnectError for Sarah")
    assert record.status == "failed" and record.error == "generation failed: ConnectError for Sarah"
    with pytest.raises(RecordError, match=f"consult {consult_id} is already failed; it cannot be marked answered"):
        records.finish(consult_id, RESULT)
    assert records.get(consult_id).status == "failed"
    event = audit.query(action="consult.failed")[0]
    assert event.outcome == "failed" and event.detail["error"] == "generation failed: ConnectError for [NAME]"
    assert audit.query(action="consult.run") == []


def test_an_answered_consult_cannot_be_failed_or_finished_again(records):
    consult_id = records.start("dr.smith", CASE)
    records.finish(consult_id, RESULT)
    with pytest.raises(RecordError, match="already answered"):
        records.fail(consult_id, "late error")
    with pytest.raises(RecordError, match="already answered"):
        records.finish(consult_id, RESULT)


def test_history_is_one_clinicians_consults_newest_first(records):
    ids = [records.start("dr.smith", {**CASE, "question": f"question {i}"}) for i in range(4)]
    records.start("dr.jones", CASE)
    records.finish(ids[1], RESULT)
    history = records.history("dr.smith")
    assert [r.id for r in history] == ids[::-1]
    assert [r.status for r in history] == ["pending", "pending", "answered", "pending"]
    assert [r.id for r in records.history("dr.smith", limit=2)] == ids[:1:-1]
    assert records.history("nobody") == []


def test_a_consult_is_not_found_when_missing_or_someone_elses(records):
    consult_id = records.start("dr.smith", CASE)
    assert records.get(consult_id, "dr.smith").id == consult_id
    with pytest.raises(RecordNotFound, match=f"no consult {consult_id} for 'dr.jones'"):
        records.get(consult_id, "dr.jones")
    with pytest.raises(RecordNotFound, match="no consult 999"):
        records.get(999)
    with pytest.raises(RecordNotFound):
        records.finish(999, RESULT)
    assert issubclass(RecordNotFound, CurbsideError)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not a dict", "a case must be a dict, got str"),
        ({"presentation": "x"}, "case question is required"),
        ({"question": "q", "presentation": 3}, "case presentation must be text, got int"),
    ],
)
def test_unusable_cases_are_refused(records, case, message):
    with pytest.raises(RecordError, match=message):
        records.start("dr.smith", case)


def test_feedback_is_stored_as_written_shown_with_the_consult_and_audited_redacted(records, audit):
    consult_id = records.start("dr.smith", CASE)
    records.finish(consult_id, RESULT)
    saved = records.add_feedback(consult_id, "dr.smith", -1, "  Missed that Sarah is pregnant  ")
    assert {k: saved[k] for k in ("consult_id", "username", "rating", "comment")} == {
        "consult_id": consult_id, "username": "dr.smith", "rating": -1, "comment": "Missed that Sarah is pregnant"}
    records.add_feedback(consult_id, "dr.smith", 1)
    assert [(f["rating"], f["comment"]) for f in records.get(consult_id).feedback] == [
        (-1, "Missed that Sarah is pregnant"), (1, None)]
    assert records.history("dr.smith")[0].feedback == records.get(consult_id).feedback
    event = audit.query(action="feedback.add")[-1]
    assert event.actor == "dr.smith" and event.detail == {
        "consult_id": consult_id, "rating": -1, "comment": "Missed that [NAME] is pregnant"}


@pytest.mark.parametrize("rating", [0, 2, -2, True, "1", 1.5])
def test_feedback_ratings_are_plus_or_minus_one(records, rating):
    consult_id = records.start("dr.smith", CASE)
    records.finish(consult_id, RESULT)
    with pytest.raises(RecordError, match="rating must be \\+1 or -1"):
        records.add_feedback(consult_id, "dr.smith", rating)


def test_feedback_is_only_for_ones_own_answered_consults(records):
    pending = records.start("dr.smith", CASE)
    with pytest.raises(RecordError, match="is pending; feedback is for answered consults"):
        records.add_feedback(pending, "dr.smith", 1)
    records.finish(pending, RESULT)
    with pytest.raises(RecordNotFound):
        records.add_feedback(pending, "dr.jones", 1)
    with pytest.raises(RecordError, match="at most 2000"):
        records.add_feedback(pending, "dr.smith", 1, "x" * 2001)
    assert records.get(pending).feedback == []
