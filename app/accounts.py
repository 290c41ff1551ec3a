"""Local accounts: argon2 password hashes, two roles, lockout after failed sign-ins, an audit event per change.

Every change and its audit event commit in one `BEGIN IMMEDIATE` transaction (when the audit log shares the
database, as it does in the app), so a change is never made unaudited and two admins never race past a rule
such as "keep one enabled admin". Passwords are hashed outside transactions: argon2 is slow on purpose.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from curbside.errors import CurbsideError

from .audit import AuditLog
from .database import migrate, opened, parse_timestamp, timestamp, utc_now

ROLES = ("clinician", "admin")
USERNAME = re.compile(r"[a-z0-9._-]{3,32}")
SYSTEM_ACTOR = "system"
INVALID_CREDENTIALS = "invalid username or password"
# no 0/O, 1/l/I: generated passwords are read off a screen or a file and typed in
PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_PASSWORD_LENGTH = 20

SCHEMA = (
    (
        """CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            last_login_at TEXT,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            must_change_password INTEGER NOT NULL DEFAULT 0,
            password_changed_at TEXT
        )""",
    ),
)


class AuthError(CurbsideError):
    """Sign-in refused; the message is safe to show on the sign-in page."""


class InvalidCredentials(AuthError):
    """Unknown user or wrong password: deliberately the same message for both."""


class AccountLocked(AuthError):
    """Too many failed sign-ins: the account is locked until `until` (UTC ISO-8601)."""

    def __init__(self, username: str, until: str):
        super().__init__(f"account {username!r} is locked after repeated failed sign-ins until {until} (UTC)")
        self.username, self.until = username, until


class AccountDisabled(AuthError):
    """The account exists and the password is right, but an admin disabled it."""


class AccountError(CurbsideError, ValueError):
    """A change to accounts was refused: bad username, password or role, unknown user, or the last admin."""


@dataclass(frozen=True)
class User:
    """An account as the app sees it (never the password hash); locked_until is None once a lock expires."""

    id: int
    username: str
    role: str
    disabled: bool
    created_at: str
    last_login_at: str | None
    failed_attempts: int
    locked_until: str | None
    must_change_password: bool


@dataclass(frozen=True)
class AccountPolicy:
    """Sign-in lockout and password rules (settings feed these)."""

    max_failed_logins: int = 5
    lockout_minutes: float = 15
    min_password_length: int = 12
    max_password_length: int = 1024  # argon2 takes any length; this bounds the work one request can ask for


def normalize_username(username: str) -> str:
    """The stored form of a username (trimmed, lower-cased), or AccountError naming what is wrong with it."""
    name = username.strip().lower() if isinstance(username, str) else ""
    if not USERNAME.fullmatch(name):
        raise AccountError(f"username {username!r} must be 3-32 characters of a-z, 0-9, '.', '_' or '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    return role


def generate_password(length: int = GENERATED_PASSWORD_LENGTH) -> str:
    """A random password from an unambiguous alphabet (about 5.8 bits a character)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def write_secret(path: Path, text: str) -> Path:
    """Write text to a file only its owner can read (0600), replacing any old file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class Accounts:
    """The users table; every method is safe to call from many threads and processes at once."""

    def __init__(
        self,
        db_path: Path,
        audit: AuditLog,
        policy: AccountPolicy = AccountPolicy(),  # noqa: B008 - frozen, so one shared default is safe
        clock: Callable[[], datetime] = utc_now,
        hasher: PasswordHasher | None = None,
    ):
        self.db_path = Path(db_path)
        self.audit = audit
        self.policy = policy
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        migrate(self.db_path, "accounts", SCHEMA)

    # --- signing in -----------------------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> User:
        """The user for a right username and password; else InvalidCredentials, AccountLocked or AccountDisabled."""
        name = username.strip().lower() if isinstance(username, str) else ""
        # a password typed into the username box must not land in the audit log
        target = name if USERNAME.fullmatch(name) else "(not a valid username)"
        row = self._find(name) if USERNAME.fullmatch(name) else None
        if row is None:
            self._verify(self._dummy(), password)  # an unknown user costs the same hash as a known one
            self._login_failed(target, "unknown user")
            raise InvalidCredentials(INVALID_CREDENTIALS)
        now = self.clock()
        if self._locked(row, now):
            self._login_failed(name, "locked")
            raise AccountLocked(name, row["locked_until"])
        if not self._verify(row["password_hash"], password):
            _, locked_until = self._count_failure(row["id"], now, audit_as=(name, "wrong password"))
            if locked_until:
                raise AccountLocked(name, locked_until)
            raise InvalidCredentials(INVALID_CREDENTIALS)
        if row["disabled"]:
            self._login_failed(name, "disabled")
            raise AccountDisabled(f"account {name!r} is disabled; ask an administrator")
        new_hash = self.hasher.hash(password) if self._needs_rehash(row["password_hash"]) else None
        with self._write() as (conn, record):
            conn.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = ?, "
                "password_hash = CASE WHEN ? IS NOT NULL AND password_hash = ? THEN ? ELSE password_hash END "
                "WHERE id = ?",
                (timestamp(now), new_hash, row["password_hash"], new_hash, row["id"]),
            )
            record(name, "login.success", name, "ok", {"rehashed": new_hash is not None})
        return self.get(name)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password if isinstance(password, str) else "")
        except (VerificationError, InvalidHashError):
            return False

    def _needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _locked(self, row: sqlite3.Row, now: datetime) -> bool:
        return bool(row["locked_until"]) and parse_timestamp(row["locked_until"]) > now

    def _login_failed(self, name: str, reason: str) -> None:
        self.audit.record(name, "login.failure", name, "denied", {"reason": reason})

    def _count_failure(
        self, user_id: int, now: datetime, audit_as: tuple[str, str] | None = None
    ) -> tuple[int, str | None]:
        """Count a failed password check, locking at the limit; (attempts, locked_until). audit_as: (name, reason)."""
        with self._write() as (conn, record):
            row = conn.execute("SELECT failed_attempts, locked_until FROM users WHERE id = ?", (user_id,)).fetchone()
            attempts = row["failed_attempts"]
            if row["locked_until"] and not self._locked(row, now):
                attempts = 0  # an expired lock starts a fresh count
            attempts += 1
            locked_until = row["locked_until"] if self._locked(row, now) else None
            if attempts >= self.policy.max_failed_logins and locked_until is None:
                locked_until = timestamp(now + timedelta(minutes=self.policy.lockout_minutes))
            conn.execute(
                "UPDATE users SET failed_attempts = ?, locked_until = ? WHERE id = ?", (attempts, locked_until, user_id)
            )
            if audit_as:
                name, reason = audit_as
                detail = {"reason": reason, "failed_attempts": attempts, "locked": locked_until is not None}
                record(name, "login.failure", name, "denied", detail)
        return attempts, locked_until

    # --- reading --------------------------------------------------------------------------------------------------

    def get(self, username: str) -> User:
        """The user by name, or AccountError when there is none."""
        row = self._find(username.strip().lower() if isinstance(username, str) else "")
        if row is None:
            raise AccountError(f"no user named {username!r}")
        return self._user(row)

    def list(self) -> list[User]:
        """Every user, by username."""
        with opened(self.db_path) as conn:
            return [self._user(r) for r in conn.execute("SELECT * FROM users ORDER BY username")]

    def _find(self, name: str, conn: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        if conn is not None:
            return conn.execute("SELECT * FROM users WHERE username = ?", (name,)).fetchone()
        with opened(self.db_path) as own:
            return own.execute("SELECT * FROM users WHERE username = ?", (name,)).fetchone()

    def _existing(self, conn: sqlite3.Connection, username: str) -> sqlite3.Row:
        row = self._find(username.strip().lower() if isinstance(username, str) else "", conn)
        if row is None:
            raise AccountError(f"no user named {username!r}")
        return row

    def _user(self, row: sqlite3.Row) -> User:
        locked_until = row["locked_until"] if self._locked(row, self.clock()) else None
        return User(
            id=row["id"],
            username=row["username"],
            role=row["role"],
            disabled=bool(row["disabled"]),
            created_at=row["created_at"],
            last_login_at=row["last_login_at"],
            failed_attempts=row["failed_attempts"],
            locked_until=locked_until,
            must_change_password=bool(row["must_change_password"]),
        )

    # --- changes --------------------------------------------------------------------------------------------------

    def create(self, actor: str, username: str, password: str, role: str) -> User:
        """A new enabled user; AccountError for a bad or taken username, a short password or an unknown role."""
        with self._refusals_audited(actor, "user.create", username):
            name = normalize_username(username)
            check_role(role)
            password_hash = self.hasher.hash(self._checked_password(password, name))
            with self._write() as (conn, record):
                self._insert(conn, name, password_hash, role, must_change_password=False)
                record(actor, "user.create", name, "ok", {"role": role})
        return self.get(name)

    def set_disabled(self, actor: str, username: str, disabled: bool) -> User:
        """Disable or enable a user; the last enabled admin cannot be disabled."""
        action = "user.disable" if disabled else "user.enable"
        with self._refusals_audited(actor, action, username), self._write() as (conn, record):
            row = self._existing(conn, username)
            if disabled and row["role"] == "admin" and not row["disabled"] and self._enabled_admins(conn) <= 1:
                raise AccountError(f"refusing to disable {row['username']!r}: it is the last enabled admin")
            conn.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), row["id"]))
            record(actor, action, row["username"], "ok", {"changed": bool(row["disabled"]) != disabled})
        return self.get(row["username"])

    def set_role(self, actor: str, username: str, role: str) -> User:
        """Give a user another role; the last enabled admin cannot be demoted."""
        with self._refusals_audited(actor, "user.set_role", username), self._write() as (conn, record):
            check_role(role)
            row = self._existing(conn, username)
            demoting = row["role"] == "admin" and role != "admin" and not row["disabled"]
            if demoting and self._enabled_admins(conn) <= 1:
                raise AccountError(f"refusing to demote {row['username']!r}: it is the last enabled admin")
            conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, row["id"]))
            record(actor, "user.set_role", row["username"], "ok", {"from": row["role"], "to": role})
        return self.get(row["username"])

    def reset_password(self, actor: str, username: str, new_password: str | None = None) -> str:
        """Set a new password (generated when None), to be changed at next sign-in; unlocks; returns it."""
        with self._refusals_audited(actor, "user.reset_password", username):
            name = username.strip().lower() if isinstance(username, str) else ""
            generated = new_password is None
            if new_password is None:
                new_password = generate_password(max(GENERATED_PASSWORD_LENGTH, self.policy.min_password_length))
            password_hash = self.hasher.hash(self._checked_password(new_password, name))
            with self._write() as (conn, record):
                row = self._existing(conn, username)
                conn.execute(
                    "UPDATE users SET password_hash = ?, must_change_password = 1, failed_attempts = 0, "
                    "locked_until = NULL, password_changed_at = ? WHERE id = ?",
                    (password_hash, timestamp(self.clock()), row["id"]),
                )
                record(actor, "user.reset_password", row["username"], "ok", {"generated": generated})
        return new_password

    def change_password(self, username: str, old_password: str, new_password: str) -> User:
        """The user's own change: the current password must be right; clears must_change_password."""
        name = username.strip().lower() if isinstance(username, str) else ""
        with self._refusals_audited(name, "user.change_password", name):
            row = self._find(name)
            if row is None:
                raise AccountError(f"no user named {username!r}")
            now = self.clock()
            if self._locked(row, now):
                raise AccountLocked(name, row["locked_until"])
            if row["disabled"]:
                raise AccountDisabled(f"account {name!r} is disabled; ask an administrator")
            if not self._verify(row["password_hash"], old_password):
                _, locked_until = self._count_failure(row["id"], now)  # audited as a denied user.change_password
                if locked_until:
                    raise AccountLocked(name, locked_until)
                raise InvalidCredentials("the current password is wrong")
            if new_password == old_password:
                raise AccountError("the new password must differ from the current one")
            password_hash = self.hasher.hash(self._checked_password(new_password, name))
            with self._write() as (conn, record):
                changed = conn.execute(
                    "UPDATE users SET password_hash = ?, must_change_password = 0, failed_attempts = 0, "
                    "password_changed_at = ? WHERE id = ? AND password_hash = ?",
                    (password_hash, timestamp(now), row["id"], row["password_hash"]),
                ).rowcount
                if not changed:
                    raise AccountError(f"the password of {name!r} was changed meanwhile; sign in again")
                record(name, "user.change_password", name, "ok", {})
        return self.get(name)

    def unlock(self, actor: str, username: str) -> User:
        """Clear a lockout and the failed sign-in count."""
        with self._refusals_audited(actor, "user.unlock", username), self._write() as (conn, record):
            row = self._existing(conn, username)
            conn.execute("UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = ?", (row["id"],))
            record(actor, "user.unlock", row["username"], "ok", {"was_locked": self._locked(row, self.clock())})
        return self.get(row["username"])

    def ensure_first_admin(self, password_file: Path, username: str = "admin") -> Path | None:
        """With no users at all, create an admin and write its generated password to a 0600 file; else None."""
        with opened(self.db_path) as conn:
            if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
                return None
        name = normalize_username(username)
        password = generate_password(max(GENERATED_PASSWORD_LENGTH, self.policy.min_password_length))
        password_hash = self.hasher.hash(password)
        password_file = Path(password_file)
        with self._write() as (conn, record):
            if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
                return None  # another process got there first
            self._insert(conn, name, password_hash, "admin", must_change_password=True)
            # written before COMMIT: if writing fails, no admin exists whose password nobody knows
            write_secret(password_file, f"username: {name}\npassword: {password}\n")
            detail = {"role": "admin", "first_admin": True, "password_file": str(password_file)}
            record(SYSTEM_ACTOR, "user.create", name, "ok", detail)
        return password_file

    # --- helpers --------------------------------------------------------------------------------------------------

    def _checked_password(self, password: str, name: str) -> str:
        if not isinstance(password, str):
            raise AccountError(f"a password must be text, got {type(password).__name__}")
        if len(password) < self.policy.min_password_length:
            raise AccountError(
                f"password is too short: {len(password)} characters, at least "
                f"{self.policy.min_password_length} needed"
            )
        if len(password) > self.policy.max_password_length:
            raise AccountError(
                f"password is too long: {len(password)} characters, at most {self.policy.max_password_length}"
            )
        if password.strip().lower() == name:
            raise AccountError("the password must not be the username")
        return password

    def _insert(self, conn: sqlite3.Connection, name: str, password_hash: str, role: str, must_change_password: bool):
        try:
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at, must_change_password, "
                "password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, password_hash, role, timestamp(self.clock()), int(must_change_password), None),
            )
        except sqlite3.IntegrityError:
            raise AccountError(f"username {name!r} is already taken") from None

    def _enabled_admins(self, conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetchone()[0]

    def _write(self):
        """A BEGIN IMMEDIATE transaction and a `record(...)` whose audit events commit with it."""
        return self.audit.transaction(self.db_path)

    @contextmanager
    def _refusals_audited(self, actor: str, action: str, target: str) -> Iterator[None]:
        """Record a refused change as a denied (AuthError) or failed (AccountError) audit event, then re-raise."""
        try:
            yield
        except AuthError as e:
            self.audit.record(actor, action, str(target), "denied", {"reason": str(e)})
            raise
        except AccountError as e:
            self.audit.record(actor, action, str(target), "failed", {"reason": str(e)})
            raise
