"""The staff console at /console: KPIs, the review queue, the FAQ, handed-over conversations, accounts, audit log.

`mount_console(app)` adds its routes, its static files, the public GET /api/messages the web chat polls for staff
replies, the console's error pages and its security headers. Staff accounts are made with `python -m bot staff`
(bot/console/cli.py). docs/console.md is the guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def mount_console(app: FastAPI) -> None:
    from bot.console.app import mount_console as mount  # the web part; `python -m bot staff` does not need it

    mount(app)
