"""The audit log: append-only, hash-chained, PHI-redacted, filterable, and one chain under concurrent writers."""

import hashlib
import json
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.audit import GENESIS_HASH, AuditLog, canonical_json
from app.database import opened


class StepClock:
    """A clock that starts at a fixed time and moves one minute per reading."""

    def __init__(self, start=datetime(2024, 3, 12, 9, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self):
        self.now += timedelta(minutes=1)
        return self.now


def tamper(db, *statements):
    """Run SQL with the append-only triggers dropped: what someone with the file could do."""
    with opened(db) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        for sql in statements:
            conn.execute(sql)


def test_each_event_chains_to_the_previous_hash_over_canonical_json(audit):
    first = audit.record("alice", "login.success", target="alice", detail={"b": 1, "a": [2]})
    second = audit.record("alice", "logout", target="alice")
    assert first.id == 1 and first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    body = {"id": 1, "ts": first.ts, "actor": "alice", "action": "login.success", "target": "alice", "outcome": "ok",
            "detail": {"a": [2], "b": 1}}
    assert first.hash == hashlib.sha256((GENESIS_HASH + canonical_json(body)).encode()).hexdigest()
    assert canonical_json(body).startswith('{"action":"login.success","actor":"alice","detail":{"a":[2],"b":1}')
    assert first.ts.endswith("Z") and len(first.ts) == len("2024-03-12T09:00:00.000Z")
    assert first.to_dict()["hash"] == first.hash


def test_update_and_delete_are_refused_by_the_database_itself(audit, db):
    audit.record("alice", "logout")
    with opened(db) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="audit log is append-only"):
            conn.execute("UPDATE audit_log SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="audit log is append-only"):
            conn.execute("DELETE FROM audit_log")


def test_targets_and_every_string_in_detail_are_redacted_but_numbers_and_actor_are_kept(audit):
    event = audit.record(
        "dr.smith",
        "consult.run",
        target="consult for Mrs Sarah Jones",
        detail={"question": "Should Sarah (DOB 14/07/1985) start sertraline?", "nested": {"ids": ["MRN 12345678"]},
                "rating": 1},
    )
    stored = audit.query()[0]
    assert stored == event
    assert stored.actor == "dr.smith"
    assert stored.target == "consult for Mrs [NAME]"
    assert stored.detail == {"question": "Should [NAME] (DOB [DATE]) start sertraline?",
                             "nested": {"ids": ["MRN [ID]"]}, "rating": 1}


def test_query_filters_by_actor_action_prefix_outcome_time_and_text_newest_first(db):
    audit = AuditLog(db, clock=StepClock())
    audit.record("alice", "login.success", target="alice")  # 09:01
    audit.record("bob", "login.failure", target="bob", outcome="denied", detail={"reason": "wrong password"})
    audit.record("admin", "user.create", target="carol", detail={"role": "clinician"})  # 09:03
    audit.record("admin", "user.set_role", target="carol", detail={"from": "clinician", "to": "admin"})
    audit.record("alice", "logout", target="alice")  # 09:05
    assert [e.id for e in audit.query()] == [5, 4, 3, 2, 1]
    assert [e.action for e in audit.query(actor="alice")] == ["logout", "login.success"]
    assert [e.action for e in audit.query(action="user.")] == ["user.set_role", "user.create"]
    assert [e.action for e in audit.query(action="login.failure")] == ["login.failure"]
    assert [e.actor for e in audit.query(outcome="denied")] == ["bob"]
    since, until = datetime(2024, 3, 12, 9, 2, tzinfo=UTC), datetime(2024, 3, 12, 9, 4, tzinfo=UTC)
    assert [e.id for e in audit.query(since=since, until=until)] == [4, 3, 2]
    assert [e.id for e in audit.query(text="WRONG PASS")] == [2]
    assert [e.id for e in audit.query(text="carol")] == [4, 3]
    assert [e.id for e in audit.query(text="50%_")] == []  # LIKE wildcards are literal
    assert [e.id for e in audit.query(limit=2)] == [5, 4]
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        audit.query(limit=0)
    assert audit.actions() == ["login.failure", "login.success", "logout", "user.create", "user.set_role"]


def test_verify_passes_an_untouched_chain_and_an_empty_log(audit):
    assert audit.verify().ok and audit.verify().rows == 0
    for i in range(5):
        audit.record("alice", "audit.view", detail={"rows": i})
    report = audit.verify()
    assert (report.ok, report.rows, report.first_bad_id, report.reason) == (True, 5, None, "")


@pytest.fixture
def five(audit, db):
    for i in range(1, 6):
        audit.record("alice", "audit.view", target=f"page{i}", detail={"rows": i})
    return audit


def test_verify_finds_an_edited_row(five, db):
    tamper(db, "UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    report = five.verify()
    assert not report.ok and report.first_bad_id == 3 and report.rows == 2 and "edited" in report.reason


def test_verify_finds_edited_detail_whether_or_not_it_is_still_json(five, db):
    tamper(db, "UPDATE audit_log SET detail = '{\"rows\": 99}' WHERE id = 4")
    assert five.verify().first_bad_id == 4
    with opened(db) as conn:
        conn.execute("UPDATE audit_log SET detail = 'not json' WHERE id = 2")
    report = five.verify()
    assert report.first_bad_id == 2 and "not valid JSON" in report.reason


def test_verify_finds_a_deleted_row_in_the_middle(five, db):
    tamper(db, "DELETE FROM audit_log WHERE id = 3")
    report = five.verify()
    assert not report.ok and report.first_bad_id == 4 and "missing" in report.reason


def test_verify_finds_a_deleted_row_renumbered_to_hide_the_gap(five, db):
    tamper(db, "DELETE FROM audit_log WHERE id = 3", "UPDATE audit_log SET id = id - 1 WHERE id > 3")
    report = five.verify()
    assert not report.ok and report.first_bad_id == 3 and "prev_hash" in report.reason


def test_verify_finds_deleted_newest_rows(five, db):
    tamper(db, "DELETE FROM audit_log WHERE id >= 4")
    report = five.verify()
    assert not report.ok and report.first_bad_id == 4 and "newest were deleted" in report.reason


def test_verify_finds_reordered_rows(five, db):
    tamper(db, "UPDATE audit_log SET id = 100 WHERE id = 2", "UPDATE audit_log SET id = 2 WHERE id = 3",
           "UPDATE audit_log SET id = 3 WHERE id = 100")
    report = five.verify()
    assert not report.ok and report.first_bad_id == 2


def test_an_event_recorded_inside_a_transaction_rolls_back_with_it(audit, db):
    with pytest.raises(RuntimeError), audit.transaction(db) as (conn, record):
        record("admin", "user.create", "carol", "ok", {})
        raise RuntimeError("the change failed")
    with audit.transaction(db) as (conn, record):
        record("admin", "user.create", "dave", "ok", {})
    assert [e.target for e in audit.query()] == ["dave"]
    assert audit.verify().ok


def test_eight_threads_recording_at_once_make_one_unbroken_chain(audit):
    errors = []

    def work(n):
        try:
            log = AuditLog(audit.db_path)
            for i in range(50):
                log.record(f"user{n}", "consult.run", detail={"i": i})
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = audit.verify()
    assert report.ok and report.rows == 400
    assert {e.actor for e in audit.query(limit=1000)} == {f"user{n}" for n in range(8)}


def _append_from_process(db_path, name, n, start):
    start.wait()
    log = AuditLog(db_path)
    for i in range(n):
        log.record(name, "document.upload", target=f"doc{i}")


def test_two_processes_appending_at_once_make_one_unbroken_chain(audit):
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_append_from_process, args=(audit.db_path, f"proc{k}", 100, start)) for k in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    report = audit.verify()
    assert report.ok and report.rows == 200
    actors = [e.actor for e in reversed(audit.query(limit=200))]
    assert actors.count("proc1") == actors.count("proc2") == 100


def test_detail_must_be_a_dict_and_action_is_required(audit):
    with pytest.raises(ValueError, match="detail must be a dict, got list"):
        audit.record("alice", "logout", detail=["x"])
    with pytest.raises(ValueError, match="needs an action"):
        audit.record("alice", "")
    assert json.loads(json.dumps(audit.record("alice", "logout").to_dict()))["action"] == "logout"
