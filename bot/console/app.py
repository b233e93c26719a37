"""Mounting the console on the API app (see bot/console/__init__.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bot.console.auth import COOKIE, ConsoleError, SecurityHeaders, clear_cookie, is_api, login_redirect
from bot.console.router import router
from bot.console.services import console_of
from bot.console.templating import render

STATIC_DIR = Path(__file__).resolve().parent / "static"


def mount_console(app: FastAPI) -> None:
    """Routes, static files, GET /api/messages, error pages and security headers of the console."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_middleware(SecurityHeaders)
    app.exception_handler(ConsoleError)(console_error)  # the decorator's typing accepts a handler of a subclass

    @app.get("/api/messages", tags=["chat"], responses={403: {"description": "Not a signed web chat session id."}})
    async def staff_messages(request: Request, session_id: str = Query(min_length=1, max_length=128),
                             after: int = Query(0, ge=0)) -> list[dict]:
        """Staff replies to a web-chat conversation after reply ``after`` (the web page polls this while open):
        `[{"id", "text", "author_display", "created_at"}]`, oldest first; nothing else of the conversation.
        Only for the signed session id the server issued to that page (POST /api/session): 403 otherwise, so a
        conversation cannot be read by guessing its id."""
        if not request.app.state.web_sessions.verify(session_id):
            raise HTTPException(403, "This conversation's messages are read only with the session id the server "
                                     "issued for it (POST /api/session).")
        console = console_of(request)
        return await asyncio.to_thread(console.store.web_messages, session_id, after)


async def console_error(request: Request, exc: ConsoleError) -> Response:
    """JSON for the API; for pages, the sign-in page (401) or a Vietnamese error page."""
    if is_api(request) or exc.status not in (401, 403, 404, 400, 503):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    if exc.status == 401:
        response = RedirectResponse(login_redirect(request), status_code=303)
        clear_cookie(request, response, COOKIE)
        return response
    return render(request, "error.html", status=exc.status, message=exc.message, status_code=exc.status)
