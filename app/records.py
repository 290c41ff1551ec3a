"""Consult history and feedback: each clinician's consults as they wrote them, their results and ratings.

The consult row keeps the clinician's own text (it is their record); the audit log gets only the redacted
question, the urgency, red-flag kinds and cited documents, never the presentation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from curbside.errors import CurbsideError

from .audit import AuditLog
from .database import migrate, opened, timestamp, utc_now

STATUSES = ("pending", "answered", "failed")
MAX_COMMENT_CHARS = 2000

SCHEMA = (
    (
        """CREATE TABLE IF NOT EXISTS consults (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'failed')),
            question TEXT NOT NULL,
            presentation TEXT NOT NULL,
            case_json TEXT NOT NULL,
            urgency TEXT,
            result TEXT,
            error TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS consults_by_user ON consults (username, id)",
        """CREATE TABLE IF NOT EXISTS consult_feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            consult_id INTEGER NOT NULL REFERENCES consults (id) ON DELETE CASCADE,
            username TEXT NOT NULL,
            created_at TEXT NOT NULL,
            rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
            comment TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS consult_feedback_by_consult ON consult_feedback (consult_id, id)",
    ),
)


class RecordError(CurbsideError, ValueError):
    """A consult record change was refused: bad input, or a consult no longer pending."""


class RecordNotFound(CurbsideError, LookupError):
    """No such consult, or not the asking clinician's (the two read the same, on purpose)."""


@dataclass(frozen=True)
class ConsultRecord:
    """One consult: the clinician's question and presentation, its status, and the result or error."""

    id: int
    username: str
    created_at: str
    status: str  # pending | answered | failed
    question: str
    presentation: str
    urgency: str | None
    result: dict | None
    error: str | None
    feedback: list[dict]
    finished_at: str | None = None
    case: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _feedback(row: sqlite3.Row) -> dict:
    return {k: row[k] for k in ("id", "consult_id", "username", "created_at", "rating", "comment")}


def _record(row: sqlite3.Row, feedback: list[dict]) -> ConsultRecord:
    return ConsultRecord(
        id=row["id"],
        username=row["username"],
        created_at=row["created_at"],
        status=row["status"],
        question=row["question"],
        presentation=row["presentation"],
        urgency=row["urgency"],
        result=json.loads(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        feedback=feedback,
        finished_at=row["finished_at"],
        case=json.loads(row["case_json"]),
    )


def _text(case: dict, key: str, required: bool) -> str:
    value = case.get(key, "")
    if not isinstance(value, str):
        raise RecordError(f"case {key} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(f"case {key} is required")
    return value


def audit_summary(question: str, result: dict) -> dict:
    """What the audit log keeps of an answered consult: urgency, red-flag kinds, cited documents, the question."""
    flags = [f.get("kind") for f in result.get("red_flags") or [] if isinstance(f, dict)]
    cited = [c.get("doc_id") for c in result.get("citations") or [] if isinstance(c, dict)]
    verification = result.get("verification") if isinstance(result.get("verification"), dict) else {}
    return {
        "urgency": result.get("urgency"),
        "red_flags": flags,
        "citations": list(dict.fromkeys(d for d in cited if d)),
        "fallback_used": bool(verification.get("fallback_used")),
        "question": question,
    }


class ConsultRecords:
    """Consults and feedback in the app database; safe from many threads and processes at once."""

    def __init__(self, db_path: Path, audit: AuditLog, clock: Callable[[], datetime] = utc_now):
        self.db_path = Path(db_path)
        self.audit = audit
        self.clock = clock
        migrate(self.db_path, "records", SCHEMA)

    def start(self, username: str, case: dict) -> int:
        """A pending consult holding the case as the clinician wrote it; returns its id."""
        if not isinstance(username, str) or not username:
            raise RecordError(f"a consult needs the clinician's username, got {username!r}")
        if not isinstance(case, dict):
            raise RecordError(f"a case must be a dict, got {type(case).__name__}")
        question, presentation = _text(case, "question", True), _text(case, "presentation", False)
        with opened(self.db_path) as conn:
            cur = conn.execute(
                "INSERT INTO consults (username, created_at, status, question, presentation, case_json) "
                "VALUES (?, ?, 'pending', ?, ?, ?)",
                (username, timestamp(self.clock()), question, presentation, json.dumps(case, default=str)),
            )
            return cur.lastrowid

    def finish(self, consult_id: int, result: dict) -> ConsultRecord:
        """Mark a pending consult answered with its result; audits consult.run (no presentation)."""
        if not isinstance(result, dict):
            raise RecordError(f"a consult result must be a dict, got {type(result).__name__}")
        with self.audit.transaction(self.db_path) as (conn, record):
            row = self._pending(conn, consult_id, "answered")
            urgency = result.get("urgency")
            conn.execute(
                "UPDATE consults SET status = 'answered', finished_at = ?, urgency = ?, result = ? WHERE id = ?",
                (timestamp(self.clock()), urgency, json.dumps(result, default=str), consult_id),
            )
            detail = {"consult_id": consult_id, **audit_summary(row["question"], result)}
            record(row["username"], "consult.run", f"consult:{consult_id}", "ok", detail)
        return self.get(consult_id)

    def fail(self, consult_id: int, error: str) -> ConsultRecord:
        """Mark a pending consult failed (it is never answered after); audits consult.failed."""
        with self.audit.transaction(self.db_path) as (conn, record):
            row = self._pending(conn, consult_id, "failed")
            conn.execute(
                "UPDATE consults SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                (timestamp(self.clock()), str(error), consult_id),
            )
            detail = {"consult_id": consult_id, "error": str(error), "question": row["question"]}
            record(row["username"], "consult.failed", f"consult:{consult_id}", "failed", detail)
        return self.get(consult_id)

    def _pending(self, conn: sqlite3.Connection, consult_id: int, to: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM consults WHERE id = ?", (consult_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"no consult {consult_id!r}")
        if row["status"] != "pending":
            raise RecordError(f"consult {consult_id} is already {row['status']}; it cannot be marked {to}")
        return row

    def history(self, username: str, limit: int = 50) -> list[ConsultRecord]:
        """A clinician's consults, newest first."""
        if limit < 1:
            raise RecordError(f"limit must be at least 1, got {limit}")
        with opened(self.db_path) as conn:
            conn.execute("BEGIN")  # consults and their feedback from one snapshot
            try:
                rows = conn.execute(
                    "SELECT * FROM consults WHERE username = ? ORDER BY id DESC LIMIT ?", (username, limit)
                ).fetchall()
                feedback = self._feedback_for(conn, [r["id"] for r in rows])
            finally:
                conn.execute("COMMIT")
        return [_record(r, feedback.get(r["id"], [])) for r in rows]

    def get(self, consult_id: int, username: str | None = None) -> ConsultRecord:
        """One consult; RecordNotFound when missing or, with username, not that clinician's."""
        with opened(self.db_path) as conn:
            row = conn.execute("SELECT * FROM consults WHERE id = ?", (consult_id,)).fetchone()
            if row is None or (username is not None and row["username"] != username):
                who = f" for {username!r}" if username is not None else ""
                raise RecordNotFound(f"no consult {consult_id!r}{who}")
            return _record(row, self._feedback_for(conn, [row["id"]]).get(row["id"], []))

    def _feedback_for(self, conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        sql = f"SELECT * FROM consult_feedback WHERE consult_id IN ({marks}) ORDER BY id"
        for row in conn.execute(sql, ids):
            out.setdefault(row["consult_id"], []).append(_feedback(row))
        return out

    def add_feedback(self, consult_id: int, username: str, rating: int, comment: str | None = None) -> dict:
        """A clinician's +1/-1 (and optional comment) on their own answered consult; audits feedback.add."""
        if isinstance(rating, bool) or rating not in (1, -1):
            raise RecordError(f"rating must be +1 or -1, got {rating!r}")
        if comment is not None and not isinstance(comment, str):
            raise RecordError(f"a feedback comment must be text, got {type(comment).__name__}")
        comment = (comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT_CHARS:
            raise RecordError(f"feedback comment is {len(comment)} characters; at most {MAX_COMMENT_CHARS}")
        with self.audit.transaction(self.db_path) as (conn, record):
            row = conn.execute("SELECT username, status FROM consults WHERE id = ?", (consult_id,)).fetchone()
            if row is None or row["username"] != username:
                raise RecordNotFound(f"no consult {consult_id!r} for {username!r}")
            if row["status"] != "answered":
                raise RecordError(f"consult {consult_id} is {row['status']}; feedback is for answered consults")
            cur = conn.execute(
                "INSERT INTO consult_feedback (consult_id, username, created_at, rating, comment) "
                "VALUES (?, ?, ?, ?, ?)",
                (consult_id, username, timestamp(self.clock()), rating, comment),
            )
            saved = _feedback(conn.execute("SELECT * FROM consult_feedback WHERE id = ?", (cur.lastrowid,)).fetchone())
            detail = {"consult_id": consult_id, "rating": rating, "comment": comment}
            record(username, "feedback.add", f"consult:{consult_id}", "ok", detail)
        return saved
