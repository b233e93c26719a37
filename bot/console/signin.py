"""Signing in to the console under concurrency: limits first, then a bounded number of password verifications.

An attempt goes through, in order:

1. its input is bounded (a username over 64 characters or a password over 1024 is refused before anything else);
2. it is recorded in the database and counted (StaffStore.admit): over a limit — per account from this address,
   per address, per account from all addresses — it is refused ("limited", HTTP 429 with Retry-After);
3. it waits for one of ``console_login_concurrency`` verification slots of this process, at most WAIT_S, and
   behind at most ``MAX_WAITING_PER_SLOT`` waiters per slot; otherwise it is refused ("busy", HTTP 503);
4. the argon2 verification runs in a worker thread, off the event loop (StaffStore.verify);
5. the outcome is stored and audited (StaffStore.finish).

Every decision writes an audit entry (action ``login`` for a success, ``login.<decision>`` otherwise) with the
client address; the password is never written anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.console.accounts import (
    _USERNAME_RE,
    MAX_PASSWORD_CHARS,
    MAX_USERNAME_CHARS,
    SIGN_IN_DECISIONS,
    Admission,
    LoginLimits,
    StaffStore,
    Verification,
    normal_username,
)
from bot.console.audit import log

WAIT_S = 5.0  # the longest an admitted attempt waits for a verification slot
MAX_WAITING_PER_SLOT = 8  # more waiters than this per slot are refused at once
RETRY_BUSY_S = 5


@dataclass(frozen=True)
class Decision:
    """What became of one sign-in attempt."""

    outcome: str  # success | wrong_password | unknown_account | disabled | limited | busy | invalid
    user: dict | None = None
    admission: Admission | None = None  # for "limited": which limit, how long to wait
    reason: str | None = None  # for "invalid": what was wrong with the input

    @property
    def retry_after(self) -> int:
        if self.outcome == "busy":
            return RETRY_BUSY_S
        return int(self.admission.retry_after) if self.admission else 0


def audit_name(username: str) -> str:
    """The typed username as the audit log shows it: only a well-formed username (never free text, so a password
    typed into the wrong box is not written down)."""
    name = normal_username(username)
    return name if _USERNAME_RE.fullmatch(name) else "(không hợp lệ)"


class SignInGate:
    """The console's sign-in of one app (one process): its limits and its verification slots."""

    def __init__(self, staff: StaffStore, limits: LoginLimits, concurrency: int, wait_s: float = WAIT_S) -> None:
        self.staff = staff
        self.limits = limits
        self.concurrency = max(1, concurrency)
        self.wait_s = wait_s
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waiting = 0
        self.running = 0
        self.peak = 0  # the most verifications that ran at once (for tests and measurements)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:  # a semaphore belongs to one event loop
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._slots

    async def attempt(self, username: str, password: str, address: str) -> Decision:
        """Decide one sign-in attempt from ``address`` (already reduced by bot.ratelimit.address_key)."""
        name = audit_name(username)
        if not username.strip() or not password:
            return await self._refuse(name, address, "invalid", reason="empty")
        if len(username.strip()) > MAX_USERNAME_CHARS:
            return await self._refuse(name, address, "invalid", reason="username_too_long")
        if len(password) > MAX_PASSWORD_CHARS:
            return await self._refuse(name, address, "invalid", reason="password_too_long")

        admission = await asyncio.to_thread(self.staff.admit, username, address, self.limits)
        if admission.attempt_id is None:
            return await self._refuse(name, address, "limited", admission=admission)

        slots = self._semaphore()
        if self.waiting >= self.concurrency * MAX_WAITING_PER_SLOT:
            await asyncio.to_thread(self.staff.forget, admission.attempt_id)
            return await self._refuse(name, address, "busy")
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), self.wait_s)
        except TimeoutError:
            await asyncio.to_thread(self.staff.forget, admission.attempt_id)
            return await self._refuse(name, address, "busy")
        finally:
            self.waiting -= 1

        self.running += 1
        self.peak = max(self.peak, self.running)

        def done(_task: asyncio.Future) -> None:  # the slot is given back when the thread is done, even if the
            self.running -= 1  # request was cancelled meanwhile: never more verifications than slots
            slots.release()

        task = asyncio.ensure_future(asyncio.to_thread(self.staff.verify, username, password))
        task.add_done_callback(done)
        result: Verification = await asyncio.shield(task)

        decision = "login" if result.outcome == "success" else f"login.{result.outcome}"
        actor = result.user["username"] if result.user else name
        await asyncio.to_thread(self.staff.finish, admission.attempt_id, result, (decision, actor, name, {"ip": address}))
        SIGN_IN_DECISIONS.labels(result.outcome).inc()
        return Decision(result.outcome, result.user if result.outcome == "success" else None, admission)

    async def _refuse(self, name: str, address: str, outcome: str, *, admission: Admission | None = None,
                      reason: str | None = None) -> Decision:
        detail: dict = {"ip": address}
        if admission is not None:
            detail.update(limit=admission.limit, retry_after=int(admission.retry_after))
        if reason is not None:
            detail["reason"] = reason
        await asyncio.to_thread(log, self.staff.db, name, f"login.{outcome}", "user", name, detail)
        SIGN_IN_DECISIONS.labels(outcome).inc()
        return Decision(outcome, None, admission, reason)
