"""`python -m bot staff …`: staff accounts of the console from the server's shell (the first admin is made here).

    python -m bot staff add <username> --role admin|editor|viewer [--password-stdin]
    python -m bot staff list
    python -m bot staff set-password <username> [--password-stdin]
    python -m bot staff disable <username>
    python -m bot staff enable <username>

Only the database is opened (and migrated): no index, no model, so it works on a fresh machine in a second.
Passwords are asked twice without echo, or read from the first line of stdin with --password-stdin (scripts).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.console.accounts import MIN_PASSWORD_CHARS, ROLES, AccountError, StaffStore

ACTOR = "cli"


def register(sub: argparse._SubParsersAction) -> None:
    staff = sub.add_parser("staff", help="staff accounts of the console (/console): add, list, set-password, disable")
    actions = staff.add_subparsers(dest="staff_command", required=True)
    add = actions.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    actions.add_parser("list", help="list the accounts")
    password = actions.add_parser("set-password", help="set a new password (signs the account out everywhere)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    for name, text in (("disable", "lock an account (signs it out)"), ("enable", "unlock an account")):
        p = actions.add_parser(name, help=text)
        p.add_argument("username")
    staff.set_defaults(func=cmd_staff)


def _store() -> StaffStore:
    from bot.config import get_settings
    from bot.conversation import ConversationStore

    settings = get_settings()
    return StaffStore(ConversationStore(settings.resolved_database_url).db, settings.console_session_ttl_s)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Mật khẩu (ít nhất {MIN_PASSWORD_CHARS} ký tự): ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise AccountError("Hai lần nhập mật khẩu không khớp.")
    return first


def cmd_staff(args: argparse.Namespace) -> int:
    try:
        store = _store()
        if args.staff_command == "list":
            users = store.users()
            if not users:
                print("Chưa có tài khoản nào. Tạo quản trị viên đầu tiên: python -m bot staff add <tên> --role admin")
            for u in users:
                print(f"{u['username']:<24} {u['role']:<7} {'active' if u['active'] else 'disabled'}")
            return 0
        if args.staff_command == "add":
            store.create_user(args.username, _password(args), args.role, ACTOR)
            print(f"Đã tạo tài khoản {args.username.strip().lower()} ({args.role}).")
        elif args.staff_command == "set-password":
            user_id = store.user_id(args.username)
            store.set_password(user_id, _password(args), ACTOR)
            print(f"Đã đặt mật khẩu mới cho {args.username}; các phiên đăng nhập cũ đã kết thúc.")
        else:
            store.set_active(store.user_id(args.username), args.staff_command == "enable", ACTOR)
            print(f"Đã {'mở khóa' if args.staff_command == 'enable' else 'khóa'} tài khoản {args.username}.")
        return 0
    except AccountError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
