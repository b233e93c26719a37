"""Staff accounts, sign-in and server-side sessions of the console, in the assistant's database.

Passwords are hashed with argon2id (argon2-cffi). A session is a random token in the browser's cookie; the
database keeps only its SHA-256, so a copy of the database does not sign anyone in. A session ends
`session_ttl_s` after sign-in (VNA_CONSOLE_SESSION_TTL_S, 8 h), after IDLE_TIMEOUT_S without a request, or at
sign-out. Every sign-in attempt is recorded in the database (login_attempts) before its password is verified, and
the limits are counted there, so they hold under concurrency and across worker processes and instances
(docs/console.md, "Signing in").
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse_many
from prometheus_client import Counter
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine

from bot.config import Settings
from bot.console.audit import record
from bot.metrics import REGISTRY
from bot.schema import login_attempts, staff_sessions, staff_users

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")  # each can do what the ones before it can
ROLE_LABELS = {"viewer": "Người xem", "editor": "Biên tập viên", "admin": "Quản trị viên"}

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
MAX_USERNAME_CHARS = 64
IDLE_TIMEOUT_S = 30 * 60
ATTEMPTS_KEPT_S = 30 * 86400  # sign-in attempts are deleted after this
KNOWN_ADDRESS_S = 30 * 86400  # an address an account signed in from within this time is not held by its total limit
_LAST_SEEN_EVERY_S = 60  # a request refreshes the idle clock at most this often (one write a minute)
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


# Counted in this process, exposed on GET /metrics (bot/metrics.py's registry); the sign-in burst test reads them.
PASSWORD_VERIFICATIONS = Counter(
    "vna_console_password_verifications", "argon2 password verifications run by console sign-ins (this process)",
    registry=REGISTRY)
SIGN_IN_DECISIONS = Counter(
    "vna_console_sign_ins", "Console sign-in decisions (this process): success, wrong_password, unknown_account, "
    "disabled, limited, busy, invalid", ["decision"], registry=REGISTRY)


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


def windows(spec: str) -> tuple[tuple[int, int], ...]:
    """A limit in the `limits` notation ("5/15minute;20/day") as (failures allowed, window in seconds) pairs."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(spec)) if spec.strip() else ()


@dataclass(frozen=True)
class LoginLimits:
    """How many failed sign-ins are allowed, per window: for one account from one address (strict), from one
    address whatever the account, and for one account from all addresses (loose; not applied to an address the
    account signed in from within KNOWN_ADDRESS_S)."""

    account: tuple[tuple[int, int], ...]
    address: tuple[tuple[int, int], ...]
    account_total: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, account: str = "5/15minute", address: str = "20/15minute",
              account_total: str = "50/15minute") -> LoginLimits:
        return cls(windows(account), windows(address), windows(account_total))

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls.parse(settings.console_login_account_limit, settings.console_login_address_limit,
                         settings.console_login_account_total_limit)


@dataclass(frozen=True)
class Admission:
    """The decision on an attempt before its password is verified: its attempt id, or the limit it exceeds."""

    attempt_id: int | None
    limit: str | None = None  # "account" | "address" | "account_total"
    retry_after: float = 0.0
    allowed: int = 0  # the failures that limit allows ...
    window_s: float = 0.0  # ... in this window


@dataclass(frozen=True)
class Verification:
    outcome: Literal["success", "wrong_password", "unknown_account", "disabled"]
    user: dict | None
    new_hash: str | None = None  # the password hashed again when argon2's parameters changed


def normal_username(username: str) -> str:
    return username.strip().lower()[:MAX_USERNAME_CHARS]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    name = username.strip().lower()
    if len(name) > MAX_USERNAME_CHARS or not _USERNAME_RE.fullmatch(name):
        raise AccountError("Tên đăng nhập gồm 3–64 ký tự: chữ thường không dấu, chữ số, dấu chấm, gạch ngang "
                           "hoặc gạch dưới.")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"Mật khẩu cần ít nhất {MIN_PASSWORD_CHARS} ký tự.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"Mật khẩu quá dài (tối đa {MAX_PASSWORD_CHARS} ký tự).")
    return password


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError("Vai trò phải là viewer, editor hoặc admin.")
    return role


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
    def _username(conn: Connection, user_id: int) -> str:
        row = conn.execute(select(staff_users.c.username).where(staff_users.c.id == user_id)).first()
        if row is None:
            raise AccountError("Không có tài khoản này.")
        return row[0]

    @staticmethod
    def _keep_an_admin(conn: Connection, user_id: int) -> None:
        """Refuse to demote or disable the last active administrator: nobody could manage accounts afterwards."""
        others = conn.execute(select(func.count()).select_from(staff_users).where(
            staff_users.c.role == "admin", staff_users.c.active.is_(True), staff_users.c.id != user_id)).scalar_one()
        target = conn.execute(select(staff_users.c.role, staff_users.c.active).where(staff_users.c.id == user_id)).one()
        if target.role == "admin" and target.active and others == 0:
            raise AccountError("Đây là quản trị viên duy nhất còn hoạt động; hãy tạo hoặc cấp quyền cho quản trị "
                               "viên khác trước.")

    # ---- signing in -----------------------------------------------------------------------------------------------
    # A sign-in is three steps (bot/console/signin.py runs them, with the concurrency gate around the second):
    #   admit()   records the attempt — committed, as a failure until proven otherwise — and only then counts the
    #             failures of its keys; over a limit, the row is removed again and the attempt refused.
    #   verify()  the argon2 verification (CPU and ~64 MB of memory: the part that must be bounded).
    #   finish()  marks a success (and the account's last sign-in, a rehash) or leaves the failure counted.
    # Because every attempt is committed before it counts, of k attempts racing for the same key the last one to
    # commit sees all k: no more than the limit can ever pass, in one process or many (the database is shared).

    def admit(self, username: str, address: str, limits: LoginLimits, now: float | None = None) -> Admission:
        """Record a sign-in attempt before its password is verified, then check the limits (docs/console.md)."""
        now = time.time() if now is None else now
        name, address = normal_username(username), address[:64]
        with self.db.begin() as conn:
            attempt_id = int(conn.execute(insert(login_attempts).values(
                username=name, ip=address, success=False, created_at=now)).inserted_primary_key[0])
        with self.db.connect() as conn:
            refusal = self._over_limit(conn, name, address, limits, now)
        if refusal is None:
            return Admission(attempt_id)
        self.forget(attempt_id)  # a refused attempt verified nothing: it does not count against anyone later
        return Admission(None, *refusal)

    def _over_limit(self, conn: Connection, name: str, address: str, limits: LoginLimits,
                    now: float) -> tuple[str, float, int, float] | None:
        """(which limit, seconds to wait, allowed failures, window) of the first limit this attempt exceeds."""
        failed = login_attempts.c.success.is_(False)
        ok = login_attempts.c.success.is_(True)
        mine = (login_attempts.c.username == name, login_attempts.c.ip == address)
        # strict: this account from this address, since its last success from here
        last_ok = conn.execute(select(func.max(login_attempts.c.created_at)).where(ok, *mine)).scalar_one()
        # (limit name, its windows, the conditions that select the failures it counts)
        keys: list[tuple[str, tuple[tuple[int, int], ...], tuple[Any, ...]]] = [
            ("account", limits.account, (failed, *mine, login_attempts.c.created_at > (last_ok or 0)))]
        # one address, whatever the accounts it tries
        keys.append(("address", limits.address, (failed, login_attempts.c.ip == address)))
        # loose: this account from every address, since its last success — not for an address it signed in from
        known = last_ok is not None and last_ok >= now - KNOWN_ADDRESS_S
        if not known:
            account_ok = conn.execute(select(func.max(login_attempts.c.created_at)).where(
                ok, login_attempts.c.username == name)).scalar_one()
            keys.append(("account_total", limits.account_total,
                         (failed, login_attempts.c.username == name, login_attempts.c.created_at > (account_ok or 0))))
        for key, windows, where in keys:
            for amount, seconds in windows:
                times = conn.execute(select(login_attempts.c.created_at).where(
                    *where, login_attempts.c.created_at >= now - seconds).order_by(login_attempts.c.created_at)
                ).scalars().all()
                if len(times) > amount:  # this attempt included: it would be failure number len(times)
                    wait = times[len(times) - amount - 1] + seconds - now
                    return key, max(1.0, math.ceil(wait)), amount, seconds
        return None

    def forget(self, attempt_id: int) -> None:
        """Remove an attempt that was refused before its password was verified."""
        with self.db.begin() as conn:
            conn.execute(delete(login_attempts).where(login_attempts.c.id == attempt_id))

    def verify(self, username: str, password: str) -> Verification:
        """Check the password (argon2, slow on purpose; an unknown account costs as much as a known one)."""
        name = normal_username(username)
        with self.db.connect() as conn:
            row = conn.execute(select(staff_users).where(staff_users.c.username == name)).first()
        user = dict(row._mapping) if row else None
        PASSWORD_VERIFICATIONS.inc()
        ok: bool
        try:
            ok = self.hasher.verify(user["password_hash"] if user else self._dummy(), password[:MAX_PASSWORD_CHARS])
        except (VerificationError, InvalidHashError):
            ok = False
        if user is None:
            return Verification("unknown_account", None)
        if not ok:
            return Verification("wrong_password", user)
        if not user["active"]:
            return Verification("disabled", user)
        new_hash = self.hasher.hash(password) if self.hasher.check_needs_rehash(user["password_hash"]) else None
        return Verification("success", user, new_hash)

    def finish(self, attempt_id: int, result: Verification, audit: tuple[str, str, str, dict] | None = None) -> None:
        """Store the outcome of a verified attempt (a success stops counting as a failure), with its audit entry
        (action, actor, target username, detail) in the same transaction."""
        now = time.time()
        with self.db.begin() as conn:
            if result.outcome == "success" and result.user is not None:
                conn.execute(update(login_attempts).where(login_attempts.c.id == attempt_id).values(success=True))
                values: dict = {"last_login_at": now}
                if result.new_hash:
                    values["password_hash"] = result.new_hash
                conn.execute(update(staff_users).where(staff_users.c.id == result.user["id"]).values(**values))
            conn.execute(delete(login_attempts).where(login_attempts.c.created_at < now - ATTEMPTS_KEPT_S))
            if audit is not None:
                action, actor, target, detail = audit
                record(conn, actor, action, "user", target, detail)

    def authenticate(self, username: str, password: str, address: str,
                     limits: LoginLimits | None = None) -> dict | None:
        """admit, verify and finish in one call, without the concurrency gate (for the shell and tests): the
        active account these credentials open, or None (also when a limit refuses the attempt)."""
        admission = self.admit(username, address, limits or LoginLimits.parse())
        if admission.attempt_id is None:
            return None
        result = self.verify(username, password)
        self.finish(admission.attempt_id, result)
        return result.user if result.outcome == "success" else None

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
