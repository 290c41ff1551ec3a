"""Secrets never reach a log or a file beside the databases: the API key, every password typed in the session,
and the first admin's generated password (which lives only in its own 0600 file, deleted by the admin)."""

from __future__ import annotations

import stat

DATABASES = (".db", ".db-wal", ".db-shm", ".sqlite", ".sqlite-wal", ".sqlite-shm")


def readable_files(product):
    """Every log and every file under the data directory except the databases and the admin's password file."""
    files = [product.log_path, product.guard_log]
    for path in product.data.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.name.endswith(DATABASES):
            continue
        if "models" in path.relative_to(product.data).parts:
            continue
        if path.name == "first-admin-password.txt":
            continue
        files.append(path)
    return files


def test_no_log_or_data_file_holds_the_api_key_or_a_password(product):
    secrets = [product.api_key, *product.passwords]
    files = readable_files(product)
    assert product.log_path in files and len(files) > 5
    leaks = []
    for path in files:
        content = path.read_bytes()
        leaks += [(str(path), s[:6] + "…") for s in secrets if s.encode() in content]
    assert not leaks, leaks


def test_the_first_admin_password_is_only_in_its_own_owner_only_file(product):
    path = product.data / "first-admin-password.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    log = product.log_path.read_text()
    assert str(path.resolve()) in log  # where it is, is said; what it is, never
    assert product.first_admin_password not in log


def test_passwords_are_stored_only_as_argon2id_hashes(product):
    import sqlite3

    with sqlite3.connect(product.data / "app.db") as db:
        dump = "\n".join(db.iterdump())
    assert "$argon2id$" in dump
    for secret in [product.api_key, *product.passwords]:
        assert secret not in dump
