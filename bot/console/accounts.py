"""Staff accounts, sign-in and server-side sessions of the console, in the assistant's database.

Passwords are hashed with argon2id (argon2-cffi). A session is a random token in the browser's cookie; the
database keeps only its SHA-256, so a copy of the database does not sign anyone in. A session ends
`session_ttl_s` after sign-in (VNA_CONSOLE_SESSION_TTL_S, 8 h), after IDLE_TIMEOUT_S without a request, or at
sign-out. Failed sign-ins are counted in the database (login_attempts), so the limit holds across worker processes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine as SqlEngine

from bot.console.audit import record
from bot.schema import login_attempts, staff_sessions, staff_users

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")  # each can do what the ones before it can
ROLE_LABELS = {"viewer": "Người xem", "editor": "Biên tập viên", "admin": "Quản trị viên"}

MIN_PASSWORD_CHARS = 10
IDLE_TIMEOUT_S = 30 * 60
LOGIN_WINDOW_S = 15 * 60
MAX_FAILED_LOGINS = 5  # per username and per address, within LOGIN_WINDOW_S
_LAST_SEEN_EVERY_S = 60  # a request refreshes the idle clock at most this often (one write a minute)
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


class AccountError(ValueError):
    """A request about an account that cannot be done; the message is Vietnamese, for the staff member."""


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member, as the console's routes see them."""

    token_hash: str
    user_id: int
    username: str
    role: Role
    csrf_token: str

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME_RE.match(name):
        raise AccountError("Tên đăng nhập gồm 3–64 ký tự: chữ thường không dấu, chữ số, dấu chấm, gạch ngang "
                           "hoặc gạch dưới.")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"Mật khẩu cần ít nhất {MIN_PASSWORD_CHARS} ký tự.")
    if len(password) > 1024:
        raise AccountError("Mật khẩu quá dài (tối đa 1024 ký tự).")
    return password


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError("Vai trò phải là viewer, editor hoặc admin.")
    return role  # type: ignore[return-value]


class StaffStore:
    """Accounts, sign-in attempts and sessions (tables staff_users, login_attempts, staff_sessions)."""

    def __init__(self, db: SqlEngine, session_ttl_s: float = 8 * 3600, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.session_ttl_s = session_ttl_s
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # ---- accounts -----------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, actor: str) -> int:
        name, role = check_username(username), check_role(role)
        password_hash = self.hasher.hash(check_password(password))
        with self.db.begin() as conn:
            if conn.execute(select(staff_users.c.id).where(staff_users.c.username == name)).first():
                raise AccountError(f"Tên đăng nhập “{name}” đã có.")
            user_id = int(conn.execute(insert(staff_users).values(
                username=name, password_hash=password_hash, role=role, active=True, created_at=time.time(),
            )).inserted_primary_key[0])
            record(conn, actor, "user.create", "user", name, {"role": role})
        return user_id

    def users(self) -> list[dict]:
        query = select(staff_users.c.id, staff_users.c.username, staff_users.c.role, staff_users.c.active,
                       staff_users.c.created_at, staff_users.c.last_login_at).order_by(staff_users.c.username)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def user(self, user_id: int) -> dict | None:
        with self.db.connect() as conn:
            row = conn.execute(select(staff_users).where(staff_users.c.id == user_id)).first()
        return dict(row._mapping) if row else None

    def user_id(self, username: str) -> int:
        with self.db.connect() as conn:
            row = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username.strip().lower())).first()
        if row is None:
            raise AccountError(f"Không có tài khoản “{username}”.")
        return int(row[0])

    def set_password(self, user_id: int, password: str, actor: str) -> None:
        password_hash = self.hasher.hash(check_password(password))
        with self.db.begin() as conn:
            name = self._username(conn, user_id)
            conn.execute(update(staff_users).where(staff_users.c.id == user_id).values(password_hash=password_hash))
            conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user_id))  # sign out everywhere
            record(conn, actor, "user.password", "user", name, {})

    def set_role(self, user_id: int, role: str, actor: str) -> None:
        role = check_role(role)
        with self.db.begin() as conn:
            name = self._username(conn, user_id)
            if role != "admin":
                self._keep_an_admin(conn, user_id)
            conn.execute(update(staff_users).where(staff_users.c.id == user_id).values(role=role))
            record(conn, actor, "user.role", "user", name, {"role": role})

    def set_active(self, user_id: int, active: bool, actor: str) -> None:
        with self.db.begin() as conn:
            name = self._username(conn, user_id)
            if not active:
                self._keep_an_admin(conn, user_id)
                conn.execute(delete(staff_sessions).where(staff_sessions.c.user_id == user_id))
            conn.execute(update(staff_users).where(staff_users.c.id == user_id).values(active=active))
            record(conn, actor, "user.enable" if active else "user.disable", "user", name, {})

    @staticmethod
    def _username(conn, user_id: int) -> str:  # noqa: ANN001 - a connection
        row = conn.execute(select(staff_users.c.username).where(staff_users.c.id == user_id)).first()
        if row is None:
            raise AccountError("Không có tài khoản này.")
        return row[0]

    @staticmethod
    def _keep_an_admin(conn, user_id: int) -> None:  # noqa: ANN001
        """Refuse to demote or disable the last active administrator: nobody could manage accounts afterwards."""
        others = conn.execute(select(func.count()).select_from(staff_users).where(
            staff_users.c.role == "admin", staff_users.c.active.is_(True), staff_users.c.id != user_id)).scalar_one()
        target = conn.execute(select(staff_users.c.role, staff_users.c.active).where(staff_users.c.id == user_id)).one()
        if target.role == "admin" and target.active and others == 0:
            raise AccountError("Đây là quản trị viên duy nhất còn hoạt động; hãy tạo hoặc cấp quyền cho quản trị "
                               "viên khác trước.")

    # ---- signing in -----------------------------------------------------------------------------------------------
    def rate_limited(self, username: str, ip: str, now: float | None = None) -> bool:
        """True after MAX_FAILED_LOGINS failures for this username (since its last success) or from this address,
        within LOGIN_WINDOW_S. Checked before the password, so a correct guess in a blocked window is refused too."""
        now = time.time() if now is None else now
        since = now - LOGIN_WINDOW_S
        name = username.strip().lower()[:64]
        failed = login_attempts.c.success.is_(False) & (login_attempts.c.created_at >= since)
        with self.db.connect() as conn:
            last_ok = conn.execute(select(func.max(login_attempts.c.created_at)).where(
                login_attempts.c.username == name, login_attempts.c.success.is_(True))).scalar_one()
            by_name = conn.execute(select(func.count()).select_from(login_attempts).where(
                failed, login_attempts.c.username == name, login_attempts.c.created_at > (last_ok or 0))).scalar_one()
            by_ip = conn.execute(select(func.count()).select_from(login_attempts).where(
                failed, login_attempts.c.ip == ip[:64])).scalar_one()
        return by_name >= MAX_FAILED_LOGINS or by_ip >= MAX_FAILED_LOGINS

    def authenticate(self, username: str, password: str, ip: str) -> dict | None:
        """The active account these credentials open, or None; every attempt is recorded."""
        name = username.strip().lower()[:64]
        with self.db.connect() as conn:
            row = conn.execute(select(staff_users).where(staff_users.c.username == name)).first()
        user = dict(row._mapping) if row else None
        ok = False
        try:
            # an unknown name costs the same time as a known one
            ok = self.hasher.verify(user["password_hash"] if user else self._dummy(), password[:1024])
        except (VerificationError, InvalidHashError):
            ok = False
        ok = ok and user is not None and bool(user["active"])
        now = time.time()
        with self.db.begin() as conn:
            conn.execute(insert(login_attempts).values(username=name, ip=ip[:64], success=ok, created_at=now))
            conn.execute(delete(login_attempts).where(login_attempts.c.created_at < now - 30 * 86400))
            if ok:
                values = {"last_login_at": now}
                if self.hasher.check_needs_rehash(user["password_hash"]):
                    values["password_hash"] = self.hasher.hash(password)
                conn.execute(update(staff_users).where(staff_users.c.id == user["id"]).values(**values))
        return user if ok else None

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # ---- sessions ---------------------------------------------------------------------------------------------------
    def open_session(self, user_id: int) -> tuple[str, str]:
        """A new session for the user: (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.db.begin() as conn:
            conn.execute(delete(staff_sessions).where(or_(
                staff_sessions.c.expires_at < now, staff_sessions.c.last_seen_at < now - IDLE_TIMEOUT_S)))
            conn.execute(insert(staff_sessions).values(
                token_hash=hash_token(token), user_id=user_id, csrf_token=csrf, created_at=now,
                expires_at=now + self.session_ttl_s, last_seen_at=now))
        return token, csrf

    def session(self, token: str | None) -> StaffSession | None:
        """The live session of this cookie token, its idle clock refreshed; None (and the row gone) when it ended."""
        if not token or len(token) > 128:
            return None
        token_hash = hash_token(token)
        query = (select(staff_sessions, staff_users.c.username, staff_users.c.role, staff_users.c.active)
                 .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
                 .where(staff_sessions.c.token_hash == token_hash))
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        now = time.time()
        if row.expires_at <= now or row.last_seen_at + IDLE_TIMEOUT_S <= now or not row.active:
            self.close_session(token)
            return None
        if now - row.last_seen_at >= _LAST_SEEN_EVERY_S:
            with self.db.begin() as conn:
                conn.execute(update(staff_sessions).where(staff_sessions.c.token_hash == token_hash)
                             .values(last_seen_at=now))
        return StaffSession(token_hash, row.user_id, row.username, row.role, row.csrf_token)

    def close_session(self, token: str) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == hash_token(token)))
