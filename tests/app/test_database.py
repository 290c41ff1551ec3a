"""The app database: WAL, a busy timeout, foreign keys, explicit transactions and versioned schemas."""

import pytest

from app.database import connect, immediate, migrate, opened, parse_timestamp, timestamp


def test_a_connection_creates_the_directory_and_uses_wal_busy_timeout_and_foreign_keys(tmp_path):
    path = tmp_path / "nested" / "app.db"
    with opened(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1
    assert path.exists()


def test_a_failed_immediate_transaction_leaves_nothing_behind(tmp_path):
    conn = connect(tmp_path / "app.db")
    conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), immediate(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with immediate(conn):
        conn.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in conn.execute("SELECT x FROM t")] == [2]
    conn.close()


def test_migrations_apply_once_in_order_and_newer_schemas_are_refused(tmp_path):
    path = tmp_path / "app.db"
    steps = [["CREATE TABLE IF NOT EXISTS t (x INTEGER)"], ["ALTER TABLE t ADD COLUMN y TEXT"]]
    assert migrate(path, "demo", steps[:1]) == 1
    assert migrate(path, "demo", steps) == 2
    assert migrate(path, "demo", steps) == 2  # the ALTER is not run twice
    with opened(path) as conn:
        assert [r["name"] for r in conn.execute("PRAGMA table_info(t)")] == ["x", "y"]
    with pytest.raises(RuntimeError, match="version 2, newer than this code"):
        migrate(path, "demo", steps[:1])


def test_timestamps_are_utc_iso_with_milliseconds_and_round_trip():
    from datetime import UTC, datetime, timedelta, timezone

    when = datetime(2024, 3, 12, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(when) == "2024-03-12T08:00:00.123Z"
    assert parse_timestamp(timestamp(when)) == datetime(2024, 3, 12, 8, 0, 0, 123000, tzinfo=UTC)
