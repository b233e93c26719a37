"""The web chat: a static, build-free page served by the API app, and an embeddable widget script.

GET /            the chat page (mobile-friendly, Vietnamese); ``?embed=1`` hides the header for the widget
GET /widget.js   a script a provincial portal includes to get a chat button that opens the page in a frame
GET /static/...  the page's script and styles

The page talks to POST /api/chat (channel "web") and POST /api/rating, with a session id the server issued and
signed (POST /api/session, connectors/web/sessions.py) and the page keeps in localStorage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"


def mount_web(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(STATIC_DIR / "widget.js", media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "max-age=300", "Access-Control-Allow-Origin": "*"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
