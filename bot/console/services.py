"""The console's objects for one app, made on first use from the assistant's database and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from bot.console.accounts import LoginLimits, StaffStore
from bot.console.signin import SignInGate
from bot.console.store import ConsoleStore
from bot.text.vietnamese import fold


@dataclass
class Console:
    staff: StaffStore
    store: ConsoleStore
    procedures: dict  # code -> procedure record (the engine's knowledge base)
    signin: SignInGate
    _folded: list[tuple[str, str, str]] = field(default_factory=list)  # (folded title, code, title)

    def procedure_title(self, code: str | None) -> str | None:
        proc = self.procedures.get(code) if code else None
        return proc.title if proc is not None else None

    def search_procedures(self, query: str, limit: int = 20) -> list[dict]:
        """Procedures whose title has every word of the query (diacritics optional), or whose code starts with it."""
        if not self._folded:
            self._folded = sorted(((fold(p.title), code, p.title) for code, p in self.procedures.items()),
                                  key=lambda t: (len(t[2]), t[2]))
        q = fold(query).strip()
        if not q:
            return []
        words = q.split()
        hits = [{"code": code, "title": title} for folded, code, title in self._folded
                if code.startswith(q) or all(w in folded for w in words)]
        return hits[:limit]


def console_of(request: Request) -> Console:
    app = request.app
    console = getattr(app.state, "console", None)
    if console is None:
        assistant = app.state.assistant
        db, settings = assistant.store.db, app.state.settings
        staff = StaffStore(db, settings.console_session_ttl_s)
        console = Console(staff, ConsoleStore(db), assistant.engine.kb.procedures,
                          SignInGate(staff, LoginLimits.from_settings(settings), settings.console_login_concurrency))
        app.state.console = console
    return console
