"""Fixtures for the app's storage tests: one SQLite database per test and its audit log."""

import pytest

from app.audit import AuditLog


@pytest.fixture
def db(tmp_path):
    return tmp_path / "app.db"


@pytest.fixture
def audit(db):
    return AuditLog(db)
