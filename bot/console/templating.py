"""Jinja2 for the console: autoescaped templates, Vietnamese number and time formats, one render helper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.console.accounts import ROLE_LABELS, ROLES
from bot.console.audit import ACTION_LABELS
from bot.console.forms import LIMITS

TEMPLATES = Path(__file__).resolve().parent / "templates"
VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time

CHANNEL_LABELS = {"web": "Trang web", "telegram": "Telegram", "zalo": "Zalo", "api": "API", "cli": "Dòng lệnh",
                  "phone": "Điện thoại"}
NAV = [  # (path, label, least role)
    ("/console", "Tổng quan", "viewer"),
    ("/console/review", "Câu hỏi cần xử lý", "viewer"),
    ("/console/faq", "Câu hỏi thường gặp", "viewer"),
    ("/console/handoff", "Hỗ trợ trực tiếp", "viewer"),
    ("/console/users", "Tài khoản", "admin"),
    ("/console/audit", "Nhật ký", "admin"),
]


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, VIETNAM).strftime("%d/%m/%Y %H:%M")


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0, UTC).isoformat(timespec="seconds")


def number(value: float | None, digits: int = 0) -> str:
    """1234.5 -> "1.234,5" (Vietnamese separators)."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else number(value * 100, digits) + " %"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, iso=iso, number=number, percent=percent,
                       channel=lambda c: CHANNEL_LABELS.get(c, c), role=lambda r: ROLE_LABELS.get(r, r),
                       action=lambda a: ACTION_LABELS.get(a, a))
    env.globals.update(NAV=NAV, LIMITS=LIMITS, ROLES=ROLES, ROLE_LABELS=ROLE_LABELS, CHANNEL_LABELS=CHANNEL_LABELS,
                       UNIT="Trung tâm Phục vụ hành chính công")
    return env


ENV = _env()


def render(request: Request, name: str, *, status: int = 200, **context: object) -> HTMLResponse:
    me = getattr(request.state, "staff", None)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    html = ENV.get_template(name).render(request=request, me=me, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)
