"""Who may do what in the console: the session cookie, role checks, CSRF tokens and the security headers.

Every console route declares the least role it needs with ``Depends(staff("editor"))``. Without a live session,
pages redirect to the sign-in page and /console/api/* answers 401 JSON; with a role too low, 403. A request that
changes something (any method but GET/HEAD) must also carry the session's CSRF token, as the form field
``csrf_token`` or the ``X-CSRF-Token`` header, else 403.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.console.accounts import Role, StaffSession
from bot.ratelimit import address_key, client_host

COOKIE = "vna_console"
LOGIN_COOKIE = "vna_console_login"  # the sign-in form's CSRF token (double submit: cookie and hidden field)
COOKIE_PATH = "/console"
API_PREFIX = "/console/api/"

# No inline script or style anywhere in the console: its JavaScript and CSS are static files; charts are SVG markup.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class ConsoleError(Exception):
    """A console request that cannot be served: 401 (no session), 403 (role or CSRF), 404, 400 …; the message is
    Vietnamese, for the staff member."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def client_ip(request: Request) -> str:
    """The client's address as the limits and the audit log count it: the TCP peer, or the address a trusted
    proxy (VNA_TRUSTED_PROXIES) forwarded; an IPv6 address reduced to its /64 (bot.ratelimit)."""
    peer = request.client.host if request.client else None
    host = client_host(peer, request.headers.get("x-forwarded-for"), request.app.state.settings.trusted_proxies)
    return address_key(host)


def secure_cookies(request: Request) -> bool:
    """Cookies carry Secure unless VNA_CONSOLE_SECURE_COOKIES=false (development on plain http); over https
    always."""
    return bool(request.app.state.settings.console_secure_cookies) or request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=secure_cookies(request))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure_cookies(request))


async def _sent_csrf(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


def staff(role: Role) -> Callable[[Request], Awaitable[StaffSession]]:
    """A dependency: the signed-in staff member, who has at least ``role`` (and sent the CSRF token on writes)."""

    async def dependency(request: Request) -> StaffSession:
        from bot.console.services import console_of

        console = console_of(request)
        session = await asyncio.to_thread(console.staff.session, request.cookies.get(COOKIE))
        if session is None:
            raise ConsoleError(401, "Bạn cần đăng nhập.")
        request.state.staff = session  # the error pages show who is signed in
        if not session.can(role):
            raise ConsoleError(403, "Tài khoản của bạn không có quyền dùng chức năng này.")
        if request.method not in ("GET", "HEAD"):
            sent = await _sent_csrf(request)
            if not sent or not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise ConsoleError(403, "Yêu cầu không hợp lệ (thiếu mã bảo vệ CSRF). Bạn hãy tải lại trang rồi "
                                        "thử lại.")
        return session

    dependency.role = role  # type: ignore[attr-defined]  # read by the tests' route table check
    return dependency


def login_redirect(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/login?next={quote(target, safe='')}" if request.method == "GET" else "/console/login"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console path (never another site)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


class SecurityHeaders:
    """Pure ASGI: security headers on every console response (and no caching of the web chat's staff messages)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/api/messages":
            extra = [(b"cache-control", b"no-store")]
        elif path == "/console" or path.startswith("/console/"):
            static = path.startswith("/console/static/")
            extra = [
                (b"content-security-policy", CSP.encode()),
                (b"x-frame-options", b"DENY"),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"),
                (b"cache-control", b"no-cache" if static else b"no-store"),
            ]
        else:
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
