"""The audit log: who did what in the console (or with `python -m bot staff`), written in the same transaction
as the change it describes; also every sign-in decision (bot/console/signin.py) and every page that shows citizens'
conversations (``transcript.view``), with the client address. Passwords are never written here."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine

from bot.schema import audit_log

# What each action means, for the audit page
ACTION_LABELS = {
    "login": "Đăng nhập",
    "login.wrong_password": "Đăng nhập sai mật khẩu",
    "login.unknown_account": "Đăng nhập vào tài khoản không có",
    "login.disabled": "Đăng nhập vào tài khoản đã khóa",
    "login.limited": "Đăng nhập bị chặn (quá số lần sai)",
    "login.busy": "Đăng nhập bị từ chối (máy chủ bận)",
    "login.invalid": "Đăng nhập không hợp lệ",
    "logout": "Đăng xuất",
    "user.create": "Tạo tài khoản",
    "user.role": "Đổi vai trò",
    "user.password": "Đặt mật khẩu",
    "user.disable": "Khóa tài khoản",
    "user.enable": "Mở khóa tài khoản",
    "review.linked": "Xử lý câu hỏi: gắn thủ tục",
    "review.faq": "Xử lý câu hỏi: viết câu trả lời",
    "review.out_of_scope": "Xử lý câu hỏi: ngoài phạm vi",
    "faq.create": "Tạo câu hỏi thường gặp",
    "faq.update": "Sửa câu hỏi thường gặp",
    "faq.retire": "Ngừng dùng câu hỏi thường gặp",
    "faq.restore": "Dùng lại câu hỏi thường gặp",
    "faq.import": "Nhập câu hỏi thường gặp",
    "faq.export": "Xuất câu hỏi thường gặp",
    "handoff.assign": "Nhận xử lý yêu cầu hỗ trợ",
    "handoff.reply": "Trả lời công dân",
    "handoff.close": "Đóng yêu cầu hỗ trợ",
    "kpi.export": "Xuất số liệu",
    "transcript.view": "Xem hội thoại của công dân",
}


def record(conn: Connection, actor: str, action: str, target_type: str | None = None,
           target_id: object = None, detail: dict | None = None) -> None:
    conn.execute(insert(audit_log).values(
        at=time.time(), actor=actor[:64], action=action, target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:64],
        detail=json.dumps(detail or {}, ensure_ascii=False),
    ))


def log(db: SqlEngine, actor: str, action: str, target_type: str | None = None, target_id: object = None,
        detail: dict | None = None) -> None:
    """An entry on its own (an action with no other database change, e.g. an export)."""
    with db.begin() as conn:
        record(conn, actor, action, target_type, target_id, detail)


def entries(db: SqlEngine, *, actor: str | None = None, action: str | None = None, limit: int = 100,
            offset: int = 0) -> tuple[list[dict], int]:
    """Newest first, optionally one actor's or one action's; with the number of matching entries."""
    where = []
    if actor:
        where.append(audit_log.c.actor == actor)
    if action:
        where.append(audit_log.c.action == action)
    with db.connect() as conn:
        total = conn.execute(select(func.count()).select_from(audit_log).where(*where)).scalar_one()
        rows = conn.execute(select(audit_log).where(*where).order_by(audit_log.c.id.desc())
                            .limit(limit).offset(offset)).all()
    out = []
    for r in rows:
        item = dict(r._mapping)
        try:
            item["detail"] = json.loads(item["detail"] or "{}")
        except ValueError:
            item["detail"] = {"raw": item["detail"]}
        out.append(item)
    return out, total
