"""The append-only audit log: who did what, when and with what outcome, in a SHA-256 hash chain.

Each row's hash covers the previous row's hash and the row itself, so editing, deleting or reordering rows
breaks the chain where it happened; triggers refuse UPDATE and DELETE outright. Rows are appended under
`BEGIN IMMEDIATE`, so threads and processes sharing the database never fork the chain. Targets and every
string in `detail` are PHI-redacted before they are stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from .database import immediate, migrate, opened, timestamp, utc_now
from .redaction import redact, redact_value

GENESIS_HASH = "0" * 64
ACTIONS = (
    "login.success",
    "login.failure",
    "logout",
    "session.timeout",
    "consult.run",
    "consult.failed",
    "feedback.add",
    "document.upload",
    "document.delete",
    "document.reindex",
    "adapter.load",
    "adapter.unload",
    "user.create",
    "user.disable",
    "user.enable",
    "user.unlock",
    "user.reset_password",
    "user.set_role",
    "user.change_password",
    "page.denied",
    "audit.view",
)
OUTCOMES = ("ok", "failed", "denied")

SCHEMA = (
    (
        # AUTOINCREMENT keeps the highest id ever used in sqlite_sequence, so deleting the newest rows shows too
        """CREATE TABLE IF NOT EXISTS audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts)",
        "CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, id)",
        "CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, id)",
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
    ),
)


@dataclass(frozen=True)
class AuditEvent:
    """One audit row as stored (target and detail already redacted)."""

    id: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: dict
    prev_hash: str
    hash: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChainReport:
    """The outcome of walking the hash chain: ok, how many rows, and where and why it first breaks."""

    ok: bool
    rows: int
    first_bad_id: int | None
    reason: str


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: the form that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, row_id: int, ts: str, actor: str, action: str, target: str, outcome: str,
               detail: dict) -> str:
    """sha256 hex of prev_hash + the canonical JSON of the row's fields (id, ts, actor, ..., detail)."""
    body = {"id": row_id, "ts": ts, "actor": actor, "action": action, "target": target, "outcome": outcome,
            "detail": detail}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def _event(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        row["id"],
        row["ts"],
        row["actor"],
        row["action"],
        row["target"],
        row["outcome"],
        json.loads(row["detail"]),
        row["prev_hash"],
        row["hash"],
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AuditLog:
    """The audit log in one SQLite database; safe from many threads and processes at once."""

    def __init__(self, db_path: Path, clock: Callable[[], datetime] = utc_now):
        self.db_path = Path(db_path)
        self.clock = clock
        migrate(self.db_path, "audit", SCHEMA)

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        outcome: str = "ok",
        detail: dict | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> AuditEvent:
        """Append one event; `conn`: an open `BEGIN IMMEDIATE` transaction on this database to append within."""
        if not action:
            raise ValueError(f"an audit event needs an action, got {action!r}")
        if detail is not None and not isinstance(detail, dict):
            raise ValueError(f"audit detail must be a dict, got {type(detail).__name__}")
        clean_detail = redact_value(detail or {})
        # round-trip so the hash is computed over exactly what verify will read back
        clean_detail = json.loads(canonical_json(clean_detail))
        clean_target = redact(str(target or ""))
        if conn is not None:
            return self._append(conn, str(actor), action, clean_target, outcome, clean_detail)
        with opened(self.db_path) as own, immediate(own):
            return self._append(own, str(actor), action, clean_target, outcome, clean_detail)

    def _append(self, conn, actor: str, action: str, target: str, outcome: str, detail: dict) -> AuditEvent:
        if not conn.in_transaction:
            raise RuntimeError("AuditLog.record(conn=...) needs the caller's BEGIN IMMEDIATE transaction")
        last = conn.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
        new_id = max(last["id"] if last else 0, seq["seq"] if seq else 0) + 1
        prev_hash = last["hash"] if last else GENESIS_HASH
        ts = timestamp(self.clock())
        digest = chain_hash(prev_hash, new_id, ts, actor, action, target, outcome, detail)
        conn.execute(
            "INSERT INTO audit_log (id, ts, actor, action, target, outcome, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id, ts, actor, action, target, outcome, canonical_json(detail), prev_hash, digest),
        )
        return AuditEvent(new_id, ts, actor, action, target, outcome, detail, prev_hash, digest)

    @contextmanager
    def transaction(self, db_path: Path) -> Iterator[tuple[sqlite3.Connection, Callable[..., None]]]:
        """BEGIN IMMEDIATE on db_path, with a `record(actor, action, target, outcome, detail)` that commits with it."""
        # on another database file the events cannot share the transaction: they are appended right after it
        pending: list[tuple] = []
        same_db = Path(db_path).resolve() == self.db_path.resolve()
        with opened(db_path) as conn:
            with immediate(conn):
                yield conn, lambda *event: pending.append(event)
                if same_db:
                    for event in pending:
                        self.record(*event, conn=conn)
            if not same_db:
                for event in pending:
                    self.record(*event)

    def query(
        self,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        limit: int = 500,
    ) -> list[AuditEvent]:
        """Events newest first; `action` matches a prefix ("user." finds user.create), `text` any substring."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        where, params = [], []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action LIKE ? ESCAPE '\\'")
            params.append(_like_escape(action) + "%")
        if outcome:
            where.append("outcome = ?")
            params.append(outcome)
        if since is not None:
            where.append("ts >= ?")
            params.append(timestamp(since))
        if until is not None:
            where.append("ts <= ?")
            params.append(timestamp(until))
        if text:
            where.append("(actor || ' ' || target || ' ' || detail) LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(text) + "%")
        sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "")
        with opened(self.db_path) as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [_event(r) for r in rows]

    def actions(self) -> list[str]:
        """The distinct actions recorded so far, sorted."""
        with opened(self.db_path) as conn:
            return [r["action"] for r in conn.execute("SELECT DISTINCT action FROM audit_log ORDER BY action")]

    def verify(self) -> ChainReport:
        """Walk the chain from the first row: every id in sequence, every prev_hash and hash recomputed."""
        rows, prev_id, prev_hash = 0, 0, GENESIS_HASH
        with opened(self.db_path) as conn:
            # one read transaction: a consistent snapshot while writers go on appending
            conn.execute("BEGIN")
            try:
                for row in conn.execute("SELECT * FROM audit_log ORDER BY id"):
                    bad = _check_row(row, prev_id, prev_hash)
                    if bad:
                        return ChainReport(False, rows, row["id"], bad)
                    rows, prev_id, prev_hash = rows + 1, row["id"], row["hash"]
                seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
            finally:
                conn.execute("COMMIT")
        if seq and seq["seq"] > prev_id:
            return ChainReport(
                False, rows, prev_id + 1, f"rows {prev_id + 1} to {seq['seq']} are missing: the newest were deleted"
            )
        return ChainReport(True, rows, None, "")


def _check_row(row: sqlite3.Row, prev_id: int, prev_hash: str) -> str:
    """Why this row breaks the chain after (prev_id, prev_hash), or "" when it does not."""
    if row["id"] != prev_id + 1:
        return f"row {row['id']} follows row {prev_id}: rows in between are missing"
    if row["prev_hash"] != prev_hash:
        return f"row {row['id']} prev_hash does not match row {prev_id}'s hash (rows deleted or reordered)"
    try:
        detail = json.loads(row["detail"])
    except (TypeError, ValueError):
        return f"row {row['id']} detail is not valid JSON (edited)"
    fields = (row["id"], row["ts"], row["actor"], row["action"], row["target"], row["outcome"], detail)
    if chain_hash(prev_hash, *fields) != row["hash"]:
        return f"row {row['id']} content does not match its hash (edited)"
    return ""
