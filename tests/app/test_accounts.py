"""Local accounts: argon2 hashes, lockout, roles, the last admin, first-admin bootstrap, and an audit trail."""

import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from app.accounts import (
    ROLES,
    AccountDisabled,
    AccountError,
    AccountLocked,
    AccountPolicy,
    Accounts,
    AuthError,
    InvalidCredentials,
)
from curbside.errors import CurbsideError

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """A cheap argon2 hasher (tests must be fast) that counts verifications."""

    def __init__(self, time_cost=1):
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1)
        self.verifications = 0

    def verify(self, hash, password):
        self.verifications += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self):
        self.now = datetime(2024, 3, 12, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def hasher():
    return CountingHasher()


@pytest.fixture
def accounts(db, audit, clock, hasher):
    return Accounts(db, audit, AccountPolicy(max_failed_logins=3, lockout_minutes=15), clock=clock, hasher=hasher)


def all_audit_text(audit) -> str:
    return "\n".join(str(e.to_dict()) for e in audit.query(limit=10_000))


def test_a_created_user_signs_in_with_a_normalised_username(accounts, audit, clock):
    user = accounts.create("admin", "  Dr.Smith ", PASSWORD, "clinician")
    assert (user.username, user.role, user.disabled) == ("dr.smith", "clinician", False)
    assert not user.must_change_password
    signed_in = accounts.authenticate("DR.SMITH", PASSWORD)
    assert signed_in.last_login_at == "2024-03-12T09:00:00.000Z" and signed_in.failed_attempts == 0
    assert [(e.action, e.actor, e.target, e.outcome) for e in audit.query()] == [
        ("login.success", "dr.smith", "dr.smith", "ok"),
        ("user.create", "admin", "dr.smith", "ok"),
    ]


@pytest.mark.parametrize("username", ["ab", "x" * 33, "dr smith", "dr/smith", "émile", ""])
def test_usernames_must_be_3_to_32_of_lowercase_letters_digits_dot_underscore_dash(accounts, username):
    with pytest.raises(AccountError, match="must be 3-32 characters"):
        accounts.create("admin", username, PASSWORD, "clinician")


def test_bad_passwords_roles_and_duplicates_are_refused_with_the_offending_value(accounts):
    with pytest.raises(AccountError, match="too short: 5 characters, at least 12"):
        accounts.create("admin", "alice", "short", "clinician")
    with pytest.raises(AccountError, match="must not be the username"):
        accounts.create("admin", "alice.smith1", "Alice.Smith1", "clinician")
    with pytest.raises(AccountError, match="unknown role 'superuser'"):
        accounts.create("admin", "alice", PASSWORD, "superuser")
    accounts.create("admin", "alice", PASSWORD, "clinician")
    with pytest.raises(AccountError, match="'alice' is already taken"):
        accounts.create("admin", "Alice", PASSWORD, "admin")
    with pytest.raises(AccountError, match="no user named 'nobody'"):
        accounts.get("nobody")
    assert issubclass(AccountError, CurbsideError) and issubclass(AuthError, CurbsideError)
    assert ROLES == ("clinician", "admin")


def test_unknown_user_and_wrong_password_read_the_same_and_both_cost_a_hash_check(accounts, hasher):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    before = hasher.verifications
    with pytest.raises(InvalidCredentials) as unknown:
        accounts.authenticate("nobody", PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        accounts.authenticate("alice", "not the password")
    assert str(unknown.value) == str(wrong.value) == "invalid username or password"
    assert hasher.verifications - before == 2


def test_failed_sign_ins_are_audited_with_the_reason_and_never_the_password(accounts, audit):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for name, password in [("alice", "hunter2-wrong-guess"), ("nobody", "another-secret-guess"),
                           ("Secret Password 123!", "x")]:
        with pytest.raises(InvalidCredentials):
            accounts.authenticate(name, password)
    failures = audit.query(action="login.failure")
    assert [(e.target, e.detail["reason"], e.outcome) for e in reversed(failures)] == [
        ("alice", "wrong password", "denied"),
        ("nobody", "unknown user", "denied"),
        ("(not a valid username)", "unknown user", "denied"),
    ]
    text = all_audit_text(audit)
    for secret in (PASSWORD, "hunter2-wrong-guess", "another-secret-guess", "Secret Password"):
        assert secret not in text


def test_repeated_failures_lock_the_account_until_the_lockout_passes(accounts, clock):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            accounts.authenticate("alice", "wrong password!")
    assert accounts.get("alice").failed_attempts == 2
    with pytest.raises(AccountLocked, match=r"'alice' is locked .* until 2024-03-12T09:15:00.000Z") as locked:
        accounts.authenticate("alice", "wrong password!")  # the third failure locks
    assert locked.value.until == "2024-03-12T09:15:00.000Z"
    assert accounts.get("alice").locked_until == "2024-03-12T09:15:00.000Z"
    clock.now += timedelta(minutes=14)
    with pytest.raises(AccountLocked):
        accounts.authenticate("alice", PASSWORD)  # even the right password, while locked
    clock.now += timedelta(minutes=2)
    assert accounts.get("alice").locked_until is None
    user = accounts.authenticate("alice", PASSWORD)
    assert user.failed_attempts == 0 and user.locked_until is None


def test_an_expired_lock_starts_a_fresh_count(accounts, clock):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for _ in range(3):
        with pytest.raises(AuthError):
            accounts.authenticate("alice", "wrong password!")
    clock.now += timedelta(minutes=16)
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("alice", "wrong password!")
    assert accounts.get("alice").failed_attempts == 1


def test_an_admin_unlocks_a_locked_account(accounts, audit):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for _ in range(3):
        with pytest.raises(AuthError):
            accounts.authenticate("alice", "wrong password!")
    user = accounts.unlock("admin", "alice")
    assert user.locked_until is None and user.failed_attempts == 0
    accounts.authenticate("alice", PASSWORD)
    assert audit.query(action="user.unlock")[0].detail == {"was_locked": True}


def test_a_disabled_account_is_refused_but_only_told_so_with_the_right_password(accounts):
    accounts.create("admin", "root", PASSWORD, "admin")
    accounts.create("root", "alice", PASSWORD, "clinician")
    assert accounts.set_disabled("root", "alice", True).disabled
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("alice", "wrong password!")
    with pytest.raises(AccountDisabled, match="'alice' is disabled"):
        accounts.authenticate("alice", PASSWORD)
    assert not accounts.set_disabled("root", "alice", False).disabled
    accounts.authenticate("alice", PASSWORD)


def test_an_outdated_hash_is_upgraded_at_sign_in(db, audit, clock):
    old = Accounts(db, audit, clock=clock, hasher=CountingHasher(time_cost=1))
    old.create("admin", "alice", PASSWORD, "clinician")
    stronger = CountingHasher(time_cost=2)
    new = Accounts(db, audit, clock=clock, hasher=stronger)
    new.authenticate("alice", PASSWORD)
    from app.database import opened

    with opened(db) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE username = 'alice'").fetchone()[0]
    assert "t=2" in stored and not stronger.check_needs_rehash(stored)
    assert audit.query(action="login.success")[0].detail == {"rehashed": True}
    new.authenticate("alice", PASSWORD)


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(accounts):
    accounts.create("system", "root", PASSWORD, "admin")
    with pytest.raises(AccountError, match="refusing to disable 'root': it is the last enabled admin"):
        accounts.set_disabled("root", "root", True)
    with pytest.raises(AccountError, match="refusing to demote 'root': it is the last enabled admin"):
        accounts.set_role("root", "root", "clinician")
    accounts.create("root", "second", PASSWORD, "clinician")
    assert accounts.set_role("root", "second", "admin").role == "admin"
    assert accounts.set_role("second", "root", "clinician").role == "clinician"
    with pytest.raises(AccountError, match="unknown role 'owner'"):
        accounts.set_role("second", "root", "owner")


def test_two_admins_disabling_each_other_at_once_leave_one_enabled(db, audit, clock):
    accounts = Accounts(db, audit, clock=clock, hasher=CountingHasher())
    accounts.create("system", "ann", PASSWORD, "admin")
    accounts.create("system", "bob", PASSWORD, "admin")
    barrier, outcomes = threading.Barrier(2), []

    def disable(actor, target):
        barrier.wait()
        try:
            accounts.set_disabled(actor, target, True)
            outcomes.append("disabled")
        except AccountError:
            outcomes.append("refused")

    threads = [threading.Thread(target=disable, args=p) for p in (("ann", "bob"), ("bob", "ann"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["disabled", "refused"]
    assert sum(not u.disabled for u in accounts.list()) == 1


def test_a_reset_generates_a_strong_password_that_must_be_changed_and_unlocks(accounts, audit):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for _ in range(3):
        with pytest.raises(AuthError):
            accounts.authenticate("alice", "wrong password!")
    new = accounts.reset_password("admin", "alice")
    assert len(new) >= 20 and new != PASSWORD
    user = accounts.get("alice")
    assert user.must_change_password and user.locked_until is None and user.failed_attempts == 0
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("alice", PASSWORD)
    accounts.authenticate("alice", new)
    assert accounts.reset_password("admin", "alice", "chosen by the admin") == "chosen by the admin"
    assert [e.detail for e in audit.query(action="user.reset_password")] == [{"generated": False},
                                                                            {"generated": True}]
    assert new not in all_audit_text(audit)
    with pytest.raises(AccountError, match="too short"):
        accounts.reset_password("admin", "alice", "short")


def test_changing_ones_own_password_needs_the_current_one_and_clears_must_change(accounts, audit):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    temporary = accounts.reset_password("admin", "alice")
    with pytest.raises(InvalidCredentials, match="current password is wrong"):
        accounts.change_password("alice", "not it at all", "a brand new password")
    with pytest.raises(AccountError, match="must differ"):
        accounts.change_password("alice", temporary, temporary)
    with pytest.raises(AccountError, match="too short"):
        accounts.change_password("alice", temporary, "short")
    user = accounts.change_password("alice", temporary, "a brand new password")
    assert not user.must_change_password
    accounts.authenticate("alice", "a brand new password")
    outcomes = [(e.actor, e.outcome) for e in audit.query(action="user.change_password")]
    assert outcomes == [("alice", "ok"), ("alice", "failed"), ("alice", "failed"), ("alice", "denied")]


def test_wrong_current_passwords_count_towards_the_lockout(accounts):
    accounts.create("admin", "alice", PASSWORD, "clinician")
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            accounts.change_password("alice", "guess guess guess", "a brand new password")
    with pytest.raises(AccountLocked):
        accounts.change_password("alice", "guess guess guess", "a brand new password")
    with pytest.raises(AccountLocked):
        accounts.authenticate("alice", PASSWORD)


def test_every_change_is_audited_with_actor_and_target_and_refusals_too(accounts, audit):
    accounts.create("system", "root", PASSWORD, "admin")
    accounts.create("root", "alice", PASSWORD, "clinician")
    accounts.set_role("root", "alice", "admin")
    accounts.set_disabled("root", "alice", True)
    accounts.set_disabled("root", "alice", False)
    accounts.reset_password("root", "alice")
    accounts.unlock("root", "alice")
    with pytest.raises(AccountError):
        accounts.set_disabled("root", "ghost", True)
    rows = [(e.actor, e.action, e.target, e.outcome) for e in reversed(audit.query())]
    assert rows == [
        ("system", "user.create", "root", "ok"),
        ("root", "user.create", "alice", "ok"),
        ("root", "user.set_role", "alice", "ok"),
        ("root", "user.disable", "alice", "ok"),
        ("root", "user.enable", "alice", "ok"),
        ("root", "user.reset_password", "alice", "ok"),
        ("root", "user.unlock", "alice", "ok"),
        ("root", "user.disable", "ghost", "failed"),
    ]
    assert audit.query()[0].detail == {"reason": "no user named 'ghost'"}
    assert audit.query(action="user.set_role")[0].detail == {"from": "clinician", "to": "admin"}
    assert audit.verify().ok


def test_list_returns_every_user_by_name_without_hashes(accounts):
    for name in ("carol", "alice", "bob"):
        accounts.create("admin", name, PASSWORD, "clinician")
    users = accounts.list()
    assert [u.username for u in users] == ["alice", "bob", "carol"]
    assert not hasattr(users[0], "password_hash")


def test_the_first_admin_is_created_once_with_its_password_in_a_private_file(accounts, audit, tmp_path):
    path = tmp_path / "secrets" / "first-admin.txt"
    path.parent.mkdir()
    path.write_text("stale\n")
    assert accounts.ensure_first_admin(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0] == "username: admin" and lines[1].startswith("password: ")
    password = lines[1].removeprefix("password: ")
    admin = accounts.get("admin")
    assert admin.role == "admin" and admin.must_change_password
    accounts.authenticate("admin", password)
    event = audit.query(action="user.create")[0]
    assert (event.actor, event.target, event.detail["first_admin"]) == ("system", "admin", True)
    assert password not in all_audit_text(audit)
    assert accounts.ensure_first_admin(tmp_path / "again.txt") is None
    assert not (tmp_path / "again.txt").exists()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_no_first_admin_is_made_when_any_user_exists(accounts, tmp_path):
    accounts.create("system", "alice", PASSWORD, "clinician")
    assert accounts.ensure_first_admin(tmp_path / "first-admin.txt", username="boss") is None
    assert not (tmp_path / "first-admin.txt").exists()


def test_concurrent_first_starts_make_exactly_one_admin(db, audit, tmp_path):
    barrier, results = threading.Barrier(4), []

    def start(i):
        accounts = Accounts(db, audit, hasher=CountingHasher())
        barrier.wait()
        results.append(accounts.ensure_first_admin(tmp_path / f"admin-{i}.txt"))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert [u.username for u in Accounts(db, audit, hasher=CountingHasher()).list()] == ["admin"]
