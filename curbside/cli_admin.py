"""`curbside audit verify|list` and `curbside users list|create|disable|enable|unlock|reset-password|set-role`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path


def _db(args) -> Path:
    from app.database import db_path

    from .settings import load_settings

    return db_path(load_settings(data_dir=getattr(args, "data_dir", None)).data_dir)


def _actor() -> str:
    """Who runs the command, for the audit log: cli:<OS user>."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _accounts(args):
    from app.accounts import Accounts
    from app.audit import AuditLog

    db = _db(args)
    return Accounts(db, AuditLog(db))


def _password_from_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_audit(args) -> int:
    from app.audit import AuditLog

    audit = AuditLog(_db(args))
    if args.action == "verify":
        report = audit.verify()
        if args.json:
            print(json.dumps({"ok": report.ok, "rows": report.rows, "first_bad_id": report.first_bad_id,
                              "reason": report.reason}, indent=2))
        elif report.ok:
            print(f"audit chain intact: {report.rows} rows")
        else:
            print(f"audit chain broken at row {report.first_bad_id}: {report.reason} "
                  f"({report.rows} rows intact before it)")
        return 0 if report.ok else 1
    events = audit.query(actor=args.actor, action=args.filter_action, outcome=args.outcome, text=args.text,
                         limit=args.limit)
    audit.record(_actor(), "audit.view", detail={"rows": len(events), "via": "cli"})
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2, ensure_ascii=False))
    else:
        for e in events:
            detail = json.dumps(e.detail, ensure_ascii=False, separators=(",", ":"))
            print(f"{e.id:6} {e.ts} {e.actor:16} {e.action:22} {e.outcome:7} {e.target or '-':20} {detail}")
        print(f"{len(events)} events (newest first)")
    return 0


def _user_line(u) -> str:
    state = "disabled" if u.disabled else ("locked until " + u.locked_until if u.locked_until else "active")
    change = "  must change password" if u.must_change_password else ""
    return f"{u.username:32} {u.role:10} {state:34} last sign-in {u.last_login_at or 'never'}{change}"


def cmd_users(args) -> int:
    accounts = _accounts(args)
    actor = _actor()
    if args.action == "list":
        users = accounts.list()
        if args.json:
            print(json.dumps([vars(u) for u in users], indent=2))
        else:
            for u in users:
                print(_user_line(u))
            print(f"{len(users)} users")
        return 0
    if args.action == "create":
        from app.accounts import generate_password

        password = _password_from_stdin() if args.password_stdin else generate_password()
        user = accounts.create(actor, args.username, password, args.role)
        print(f"created {user.username} ({user.role})")
        if not args.password_stdin:
            print(f"password (shown once): {password}")
    elif args.action in ("disable", "enable"):
        user = accounts.set_disabled(actor, args.username, args.action == "disable")
        print(f"{user.username}: {'disabled' if user.disabled else 'enabled'}")
    elif args.action == "unlock":
        user = accounts.unlock(actor, args.username)
        print(f"{user.username}: unlocked")
    elif args.action == "reset-password":
        given = _password_from_stdin() if args.password_stdin else None
        password = accounts.reset_password(actor, args.username, given)
        print(f"{args.username}: password reset; it must be changed at next sign-in")
        if given is None:
            print(f"password (shown once): {password}")
    elif args.action == "set-role":
        user = accounts.set_role(actor, args.username, args.role)
        print(f"{user.username}: role {user.role}")
    return 0


def _data_dir(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: without it the subcommand's None would overwrite `curbside --data-dir X audit ...`
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory (default var/, or CURBSIDE_DATA_DIR)")


def add_commands(sub) -> None:
    from app.accounts import ROLES

    a = sub.add_parser("audit", help="verify or list the app's audit log")
    a_sub = a.add_subparsers(dest="action", required=True)
    v = a_sub.add_parser("verify", help="walk the hash chain; exit 1 naming the first bad row")
    v.add_argument("--json", action="store_true")
    ls = a_sub.add_parser("list", help="events, newest first")
    ls.add_argument("--actor", help="only this user")
    ls.add_argument("--action", dest="filter_action", help="action or prefix, e.g. login. or user.create")
    ls.add_argument("--outcome", choices=["ok", "failed", "denied"])
    ls.add_argument("--text", help="substring of actor, target or detail")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    for p in (a, v, ls):
        _data_dir(p)
    a.set_defaults(func=cmd_audit)

    u = sub.add_parser("users", help="local accounts of the app: list, create, disable, reset passwords, roles")
    u_sub = u.add_subparsers(dest="action", required=True)
    leaves = [u]
    lst = u_sub.add_parser("list", help="every account")
    lst.add_argument("--json", action="store_true")
    leaves.append(lst)
    c = u_sub.add_parser("create", help="a new account; the password is read from stdin or generated and shown once")
    c.add_argument("username")
    c.add_argument("--role", choices=ROLES, default="clinician")
    c.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    leaves.append(c)
    for name, text in (("disable", "disable an account"), ("enable", "enable an account"),
                       ("unlock", "clear a lockout after failed sign-ins")):
        p = u_sub.add_parser(name, help=text)
        p.add_argument("username")
        leaves.append(p)
    r = u_sub.add_parser("reset-password", help="set a new password (generated unless --password-stdin)")
    r.add_argument("username")
    r.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    leaves.append(r)
    s = u_sub.add_parser("set-role", help="change an account's role")
    s.add_argument("username")
    s.add_argument("role", choices=ROLES)
    leaves.append(s)
    for p in leaves:
        _data_dir(p)
    u.set_defaults(func=cmd_users)
