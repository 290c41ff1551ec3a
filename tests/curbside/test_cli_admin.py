"""`curbside audit verify|list` and `curbside users ...` against a data directory of their own."""

from __future__ import annotations

import io
import json
import sys

import pytest
from argon2 import PasswordHasher

from app.accounts import Accounts
from app.audit import AuditLog
from app.database import opened
from curbside.cli import main


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr("app.accounts.PasswordHasher", lambda: PasswordHasher(time_cost=1, memory_cost=8,
                                                                               parallelism=1))


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "var"


def run(capsys, data_dir, *argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["--data-dir", str(data_dir), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_are_created_listed_and_changed_from_the_command_line(data_dir, capsys, monkeypatch):
    code, out, _ = run(capsys, data_dir, "users", "create", "Root", "--role", "admin", "--password-stdin",
                       stdin="a long admin password\n", monkeypatch=monkeypatch)
    assert code == 0 and out == "created root (admin)\n"
    code, out, _ = run(capsys, data_dir, "users", "create", "alice")
    assert code == 0 and out.startswith("created alice (clinician)\npassword (shown once): ")
    generated = out.splitlines()[1].removeprefix("password (shown once): ")

    db = data_dir / "app.db"
    accounts = Accounts(db, AuditLog(db), hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.authenticate("root", "a long admin password")
    accounts.authenticate("alice", generated)

    assert run(capsys, data_dir, "users", "disable", "alice")[1] == "alice: disabled\n"
    assert run(capsys, data_dir, "users", "enable", "alice")[1] == "alice: enabled\n"
    assert run(capsys, data_dir, "users", "set-role", "alice", "admin")[1] == "alice: role admin\n"
    assert run(capsys, data_dir, "users", "unlock", "alice")[1] == "alice: unlocked\n"
    code, out, _ = run(capsys, data_dir, "users", "reset-password", "alice")
    new = out.splitlines()[1].removeprefix("password (shown once): ")
    assert code == 0 and accounts.authenticate("alice", new).must_change_password

    code, out, _ = run(capsys, data_dir, "users", "list", "--json")
    assert [(u["username"], u["role"]) for u in json.loads(out)] == [("alice", "admin"), ("root", "admin")]
    code, out, _ = run(capsys, data_dir, "users", "list")
    assert "must change password" in out and out.endswith("2 users\n")

    actors = {e.actor for e in AuditLog(db).query(action="user.")}
    assert len(actors) == 1 and actors.pop().startswith("cli")


def test_refused_changes_exit_2_with_the_reason(data_dir, capsys):
    code, _, err = run(capsys, data_dir, "users", "disable", "ghost")
    assert code == 2 and err == "curbside: error: no user named 'ghost'\n"
    run(capsys, data_dir, "users", "create", "root", "--role", "admin")
    code, _, err = run(capsys, data_dir, "users", "set-role", "root", "clinician")
    assert code == 2 and "last enabled admin" in err


def test_audit_verify_reports_an_intact_chain_and_names_the_first_bad_row(data_dir, capsys):
    run(capsys, data_dir, "users", "create", "alice")
    run(capsys, data_dir, "users", "disable", "alice")
    run(capsys, data_dir, "users", "enable", "alice")
    code, out, _ = run(capsys, data_dir, "audit", "verify")
    assert (code, out) == (0, "audit chain intact: 3 rows\n")

    with opened(data_dir / "app.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET target = 'bob' WHERE id = 2")
    code, out, _ = run(capsys, data_dir, "audit", "verify")
    assert code == 1 and out.startswith("audit chain broken at row 2: row 2 content does not match its hash")
    code, out, _ = run(capsys, data_dir, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_id"] == 2


def test_audit_list_filters_prints_json_and_is_itself_audited(data_dir, capsys):
    run(capsys, data_dir, "users", "create", "alice")
    run(capsys, data_dir, "users", "disable", "alice")
    code, out, _ = run(capsys, data_dir, "audit", "list", "--action", "user.", "--json")
    events = json.loads(out)
    assert code == 0 and [e["action"] for e in events] == ["user.disable", "user.create"]
    code, out, _ = run(capsys, data_dir, "audit", "list", "--limit", "1")
    assert code == 0 and "audit.view" in out and out.endswith("1 events (newest first)\n")
    code, out, _ = run(capsys, data_dir, "audit", "list", "--actor", "nobody")
    assert out == "0 events (newest first)\n"


def test_the_data_dir_may_follow_the_subcommand(data_dir, capsys):
    assert main(["users", "create", "alice", "--data-dir", str(data_dir)]) == 0
    assert main(["audit", "list", "--data-dir", str(data_dir), "--json"]) == 0
    capsys.readouterr()
    assert (data_dir / "app.db").exists()
