"""The app's one SQLite file: connections safe across threads and processes, transactions, schema versions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

DB_NAME = "app.db"
BUSY_TIMEOUT_MS = 5000


def db_path(data_dir: Path) -> Path:
    """Where the app database lives under a data directory."""
    return Path(data_dir) / DB_NAME


def connect(path: Path) -> sqlite3.Connection:
    """A new connection: WAL, busy_timeout 5000 ms, foreign keys on, rows by name, transactions explicit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit BEGIN, so every write sequence states its own BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for one call, closed on exit."""
    with closing(connect(path)) as conn:
        yield conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A `BEGIN IMMEDIATE` transaction: the write lock is taken before the first read, so read-then-write is safe."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(path: Path, component: str, steps: Sequence[Sequence[str]]) -> int:
    """Apply a component's schema steps not yet applied (step i = version i + 1); return the version now."""
    with opened(path) as conn, immediate(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version WHERE component = ?", (component,)).fetchone()
        version = row["version"] if row else 0
        if version > len(steps):
            raise RuntimeError(f"{path}: {component} schema is version {version}, newer than this code ({len(steps)})")
        for statements in steps[version:]:
            for sql in statements:
                conn.execute(sql)
        conn.execute(
            "INSERT INTO schema_version (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (component, len(steps)),
        )
        return len(steps)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def timestamp(when: datetime) -> str:
    """The stored form of a time: UTC ISO-8601 with milliseconds and a Z, so text order is time order."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """A stored timestamp back as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
