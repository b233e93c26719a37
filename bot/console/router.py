"""The console's routes: sign-in, dashboard, review queue, FAQ, handed-over conversations, accounts, audit log.

Pages are server-rendered (Jinja2, autoescaped) and work without JavaScript; every form posts back and redirects
(post/redirect/get) with a short notice code. /console/api/* answers JSON. The least role of each route is in its
``Depends(staff(...))``; docs/console.md has the table.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from bot.console import audit
from bot.console.accounts import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, ROLES, AccountError, StaffSession
from bot.console.auth import (
    COOKIE,
    LOGIN_COOKIE,
    ConsoleError,
    clear_cookie,
    client_ip,
    safe_next,
    set_cookie,
    staff,
)
from bot.console.dashboard import QueryError, compute_args, dashboard_context, export_query, kpi_query
from bot.console.forms import (
    MAX_FILTER_CHARS,
    MAX_NEXT_CHARS,
    MAX_SEARCH_CHARS,
    faq_fields_error,
    faq_form_values,
    lf,
    too_long,
)
from bot.console.services import Console, console_of
from bot.console.signin import Decision, audit_name
from bot.console.store import PUSH_CHANNELS, AlreadyResolved
from bot.console.templating import CHANNEL_LABELS, render
from bot.faq import MAX_PROCEDURE_CHARS, FaqError, FaqStore
from bot.kpis import compute_kpis, kpis_csv
from bot.privacy import mask

router = APIRouter(prefix="/console", include_in_schema=False)

Viewer = Annotated[StaffSession, Depends(staff("viewer"))]
Editor = Annotated[StaffSession, Depends(staff("editor"))]
Admin = Annotated[StaffSession, Depends(staff("admin"))]
Services = Annotated[Console, Depends(console_of)]

PAGE_SIZE = 50
MAX_IMPORT_BYTES = 2 * 1024 * 1024  # an FAQ import file (bot.api.BodyLimit lets this path's bodies through)

# Notices after a form (?ok=<code>): fixed texts, so nothing from the address is echoed into the page
NOTICES = {
    "linked": "Đã gắn câu hỏi với thủ tục; trợ lý sẽ trả lời câu hỏi này bằng thủ tục đó sau ít giây.",
    "faq": "Đã lưu câu trả lời; trợ lý sẽ dùng nó sau ít giây.",
    "out_of_scope": "Đã đánh dấu câu hỏi ngoài phạm vi.",
    "already": "Câu hỏi này đã được người khác xử lý.",
    "faq_created": "Đã tạo câu hỏi thường gặp; trợ lý sẽ dùng nó sau ít giây.",
    "faq_saved": "Đã lưu thay đổi; trợ lý sẽ dùng nội dung mới sau ít giây.",
    "faq_retired": "Đã ngừng dùng câu hỏi thường gặp.",
    "faq_restored": "Đã dùng lại câu hỏi thường gặp.",
    "imported": "Đã nhập câu hỏi thường gặp từ tệp.",
    "replied": "Đã gửi câu trả lời cho công dân.",
    "reply_web": "Đã lưu câu trả lời; công dân sẽ thấy nó trên trang trò chuyện (trang tự kiểm tra 10 giây một lần).",
    "reply_stored": "Đã lưu câu trả lời nhưng CHƯA gửi được cho công dân (xem lý do bên dưới).",
    "assigned": "Bạn đã nhận xử lý yêu cầu này.",
    "closed": "Đã đóng yêu cầu hỗ trợ.",
    "user_created": "Đã tạo tài khoản.",
    "role_changed": "Đã đổi vai trò.",
    "user_disabled": "Đã khóa tài khoản; các phiên đăng nhập của tài khoản đó đã kết thúc.",
    "user_enabled": "Đã mở khóa tài khoản.",
}


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("ok", ""))


def back(path: str, code: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?ok={code}", status_code=303)


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 1


def reply_limit(request: Request) -> int:
    return int(request.app.state.settings.max_input_chars)


def viewed(request: Request, services: Console, target_type: str, target_id: object, **detail: object) -> None:
    """Audit a page that shows citizens' conversations (who read what, from where)."""
    me: StaffSession = request.state.staff
    audit.log(services.store.db, me.username, "transcript.view", target_type, target_id,
              {"ip": client_ip(request), **detail})


def pages(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def faqs_of(request: Request) -> FaqStore:
    store = getattr(request.app.state.assistant, "faqs", None)
    if store is None:
        raise ConsoleError(503, "Kho câu hỏi thường gặp chưa sẵn sàng trên máy chủ này.")
    return store


# bot.faq's messages are for developers; staff read these
_FAQ_MESSAGES: list[tuple[str, Callable[[re.Match], str]]] = [
    (r"at least one non-empty variant", lambda m: "Cần ít nhất một cách hỏi."),
    (r"variant (\d+) is longer than (\d+)", lambda m: f"Cách hỏi thứ {int(m[1]) + 1} dài quá {m[2]} ký tự."),
    (r"variant (\d+) has no words", lambda m: f"Cách hỏi thứ {int(m[1]) + 1} không có chữ nào."),
    (r"variant (\d+) is not a string", lambda m: f"Cách hỏi thứ {int(m[1]) + 1} không phải là văn bản."),
    (r"variants must be a list", lambda m: "“variants” phải là một danh sách câu hỏi."),
    (r"at most (\d+) variants", lambda m: f"Tối đa {m[1]} cách hỏi."),
    (r"answer is longer than (\d+)", lambda m: f"Câu trả lời dài quá {m[1]} ký tự."),
    (r"answer must be a string", lambda m: "Câu trả lời phải là văn bản."),
    (r"unknown procedure code '([^']*)'", lambda m: f"Không có thủ tục mã “{m[1]}”."),
    (r"procedure code is longer", lambda m: "Mã thủ tục quá dài."),
    (r"procedure must be a string", lambda m: "Mã thủ tục phải là văn bản."),
    (r"needs an answer, a linked procedure", lambda m: "Cần có câu trả lời, hoặc một thủ tục, hoặc cả hai."),
    (r"import expects a list", lambda m: "Tệp cần chứa một danh sách câu hỏi thường gặp (mảng JSON)."),
    (r"not an object", lambda m: "không phải một đối tượng JSON."),
    (r"unknown keys (.*)", lambda m: f"có trường không được hỗ trợ: {m[1]}."),
    (r"missing 'variants'", lambda m: "thiếu trường “variants”."),
    (r"status must be one of", lambda m: "“status” phải là “active” hoặc “retired”."),
    (r"source_turn_id", lambda m: "“source_turn_id” phải là số nguyên dương."),
]


def faq_message(exc: Exception) -> str:
    """A Vietnamese wording of a FaqError ("item 2: missing 'variants'" -> "Mục thứ 3 trong tệp: thiếu …")."""
    text, prefix = str(exc), ""
    item = re.match(r"item (\d+): (.*)", text, re.S)
    if item:
        prefix, text = f"Mục thứ {int(item[1]) + 1} trong tệp: ", item[2]
    for pattern, wording in _FAQ_MESSAGES:
        found = re.search(pattern, text)
        if found:
            return prefix + wording(found)
    return prefix + "Dữ liệu không hợp lệ: " + text


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# ---- signing in and out ---------------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, services: Services) -> Response:
    if services.staff.session(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return login_form(request)


def login_form(request: Request, *, status: int = 200, error: str | None = None, username: str = "",
               next_url: str | None = None, headers: dict | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, error=error, username=username[:MAX_USERNAME_CHARS],
                      login_token=token, next_url=safe_next((next_url or request.query_params.get("next", ""))[:MAX_NEXT_CHARS]))
    set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    response.headers.update(headers or {})
    return response


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} phút" if minutes < 120 else f"{math.ceil(minutes / 60)} giờ"


_LIMIT_SCOPES = {
    "account": "với tài khoản này từ địa chỉ mạng của bạn",
    "address": "từ địa chỉ mạng của bạn",
    "account_total": "với tài khoản này",
}
_INVALID = {
    "empty": "Bạn hãy nhập tên đăng nhập và mật khẩu.",
    "username_too_long": f"Tên đăng nhập dài quá {MAX_USERNAME_CHARS} ký tự.",
    "password_too_long": f"Mật khẩu dài quá {MAX_PASSWORD_CHARS} ký tự.",
}
_SIGN_IN_FAILED = "Tên đăng nhập hoặc mật khẩu không đúng, hoặc tài khoản đã bị khóa."


def sign_in_refusal(decision: Decision) -> tuple[int, str]:
    """The status and the Vietnamese message of a refused sign-in."""
    if decision.outcome == "limited" and decision.admission is not None:
        a = decision.admission
        return 429, (f"Đã có quá nhiều lần đăng nhập sai {_LIMIT_SCOPES.get(a.limit or '', '')} ({a.allowed} lần trong "
                     f"{_minutes(a.window_s)}). Vui lòng thử lại sau {_minutes(a.retry_after)} hoặc liên hệ quản "
                     "trị viên.")
    if decision.outcome == "busy":
        return 503, "Hệ thống đang kiểm tra nhiều lần đăng nhập cùng lúc. Vui lòng thử lại sau vài giây."
    if decision.outcome == "invalid":
        return 400, _INVALID.get(decision.reason or "", _SIGN_IN_FAILED)
    return 401, _SIGN_IN_FAILED  # wrong password, unknown account, locked account: one answer for all


@router.post("/login")
async def login(request: Request, services: Services, username: str = Form(""), password: str = Form(""),
                csrf_token: str = Form(""), next: str = Form("/console")) -> Response:  # noqa: A002 - the form field
    next = next[:MAX_NEXT_CHARS]  # noqa: A001
    ip = client_ip(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token[:128].encode()):
        await asyncio.to_thread(audit.log, services.store.db, audit_name(username), "login.invalid", "user",
                                audit_name(username), {"ip": ip, "reason": "stale_form"})
        return login_form(request, status=403, username=username, next_url=next,
                          error="Trang đăng nhập đã cũ. Bạn hãy nhập lại tên đăng nhập và mật khẩu.")
    decision = await services.signin.attempt(username, password, ip)
    if decision.user is None:
        status, message = sign_in_refusal(decision)
        headers = {"Retry-After": str(decision.retry_after)} if status in (429, 503) else None
        return login_form(request, status=status, username=username, next_url=next, error=message, headers=headers)
    token, _csrf = await asyncio.to_thread(services.staff.open_session, decision.user["id"])
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(request, response, COOKIE, token, max_age=int(services.staff.session_ttl_s))
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, me: Viewer, services: Services) -> Response:
    services.staff.close_session(request.cookies.get(COOKIE, ""))
    audit.log(services.store.db, me.username, "logout", "user", me.username)
    response = RedirectResponse("/console/login", status_code=303)
    clear_cookie(request, response, COOKIE)
    return response


# ---- dashboard and KPI exports ----------------------------------------------------------------------------------------


def report_for(request: Request, services: Console) -> tuple[dict, dict]:
    """The KPI report for the dashboard's choices in the address (bot.kpis; docs/kpis.md)."""
    try:
        query = kpi_query(request)
    except QueryError as exc:
        raise ConsoleError(400, str(exc)) from exc
    return compute_kpis(services.store.db, titles=services.procedure_title, **compute_args(query)), query


@router.get("")
def dashboard(request: Request, me: Viewer, services: Services) -> Response:
    report, query = report_for(request, services)
    return render(request, "dashboard.html", **dashboard_context(report, query),
                  open_tickets=services.store.tickets("open", limit=1)[1],
                  review_total=services.store.review_queue(limit=1)[1])


def _export(request: Request, services: Console, me: StaffSession, fmt: str) -> tuple[dict, dict]:
    report, query = report_for(request, services)
    audit.log(services.store.db, me.username, "kpi.export", "kpi", None, {"format": fmt, "query": export_query(query)})
    return report, {"Content-Disposition": f'attachment; filename="kpi-{query["period"]}-'
                                          f'{query["channel"] or "tat-ca-kenh"}.{fmt}"'}


@router.get("/export.csv")
def export_csv(request: Request, me: Viewer, services: Services) -> Response:
    report, headers = _export(request, services, me, "csv")
    # with a byte order mark, Excel opens the UTF-8 file with its Vietnamese letters intact
    return Response("\ufeff" + kpis_csv(report), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/export.json")
def export_json(request: Request, me: Viewer, services: Services) -> Response:
    report, headers = _export(request, services, me, "json")
    return Response(json.dumps(report, ensure_ascii=False, indent=1), media_type="application/json; charset=utf-8",
                    headers=headers)


@router.get("/api/kpis")
def api_kpis(request: Request, me: Viewer, services: Services) -> Response:
    report, _query = report_for(request, services)
    return JSONResponse(report)


# ---- review queue -------------------------------------------------------------------------------------------------


def _masked(row: dict) -> dict:
    return {**row, "question": mask(row["question"])}


@router.get("/review")
def review_queue(request: Request, me: Viewer, services: Services) -> Response:
    channel = request.query_params.get("channel", "")[:MAX_FILTER_CHARS] or None
    page = page_number(request)
    items, total = services.store.review_queue(channel=channel, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    viewed(request, services, "review_queue", None, page=page, turns=[i["id"] for i in items])
    return render(request, "review.html", items=[_masked(i) for i in items], total=total, page=page,
                  pages=pages(total), channel=channel, notice=notice(request))


@router.get("/api/review")
def api_review(request: Request, me: Viewer, services: Services) -> dict:
    page = page_number(request)
    items, total = services.store.review_queue(channel=request.query_params.get("channel", "")[:MAX_FILTER_CHARS]
                                               or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    viewed(request, services, "review_queue", None, page=page, turns=[i["id"] for i in items], api=True)
    keys = ("id", "channel", "question", "reply", "outcome", "confidence", "rating", "reasons", "created_at",
            "simulated")
    return {"total": total, "page": page, "items": [{k: _masked(i)[k] for k in keys} for i in items]}


@router.get("/api/procedures")
def api_procedures(request: Request, me: Viewer, services: Services) -> dict:
    return {"items": services.search_procedures(request.query_params.get("q", "")[:MAX_SEARCH_CHARS])}


def review_item_page(request: Request, services: Console, turn_id: int, *, status: int = 200,
                     error: str | None = None, form: dict | None = None) -> Response:
    item = services.store.turn(turn_id)
    if item is None:
        raise ConsoleError(404, "Không tìm thấy lượt hỏi đáp này.")
    item = _masked(item)
    q = request.query_params.get("q", "")[:MAX_SEARCH_CHARS]
    resolution = item["resolution"]
    if resolution:
        resolution = {**resolution, "title": services.procedure_title(resolution["procedure"])}
    form = form or {"variants": item["question"], "answer": "", "procedure": ""}
    context = [_masked(t) for t in services.store.session_turns(item["session_id"], turn_id)]
    viewed(request, services, "turn", turn_id, turns=[t["id"] for t in context])
    return render(request, "review_item.html", status=status, item=item, resolution=resolution, q=q,
                  found=services.search_procedures(q) if q else [], form=form, error=error, context=context,
                  procedure_title=services.procedure_title(form.get("procedure")))


@router.get("/review/{turn_id}")
def review_item(request: Request, turn_id: int, me: Viewer, services: Services) -> Response:
    return review_item_page(request, services, turn_id)


def _unresolved_turn(services: Console, turn_id: int) -> dict | None:
    item = services.store.turn(turn_id)
    if item is None:
        raise ConsoleError(404, "Không tìm thấy lượt hỏi đáp này.")
    return None if item["resolution"] else _masked(item)


@router.post("/review/{turn_id}/link")
def review_link(request: Request, turn_id: int, me: Editor, services: Services, procedure: str = Form("")) -> Response:
    error = too_long(procedure, MAX_PROCEDURE_CHARS, "Mã thủ tục")
    if error:
        return review_item_page(request, services, turn_id, status=400, error=error)
    item = _unresolved_turn(services, turn_id)
    if item is None:
        return back("/console/review", "already")
    code = procedure.strip()
    if services.procedure_title(code) is None:
        return review_item_page(request, services, turn_id, status=400,
                                error="Bạn hãy chọn một thủ tục trong danh sách (tìm theo tên hoặc mã).")
    try:
        faq_id = faqs_of(request).create([item["question"]], None, code, me.username, source_turn_id=turn_id)
    except FaqError as exc:
        return review_item_page(request, services, turn_id, status=400, error=faq_message(exc))
    return _resolve(request, services, turn_id, "linked", me, faq_id=faq_id, procedure=code)


@router.post("/review/{turn_id}/faq")
def review_faq(request: Request, turn_id: int, me: Editor, services: Services, variants: str = Form(""),
               answer: str = Form(""), procedure: str = Form("")) -> Response:
    form = faq_form_values(variants, answer, procedure)
    error = faq_fields_error(variants, answer, procedure)
    if error:
        return review_item_page(request, services, turn_id, status=400, form=form, error=error)
    item = _unresolved_turn(services, turn_id)
    if item is None:
        return back("/console/review", "already")
    variants, answer = form["variants"], form["answer"]
    code = procedure.strip() or None
    if code and services.procedure_title(code) is None:
        return review_item_page(request, services, turn_id, status=400, form=form,
                                error=f"Không có thủ tục mã “{code}”.")
    try:
        faq_id = faqs_of(request).create(lines(variants), answer.strip() or None, code, me.username,
                                         source_turn_id=turn_id)
    except FaqError as exc:
        return review_item_page(request, services, turn_id, status=400, form=form, error=faq_message(exc))
    return _resolve(request, services, turn_id, "faq", me, faq_id=faq_id, procedure=code)


@router.post("/review/{turn_id}/out-of-scope")
def review_out_of_scope(request: Request, turn_id: int, me: Editor, services: Services) -> Response:
    if _unresolved_turn(services, turn_id) is None:
        return back("/console/review", "already")
    return _resolve(request, services, turn_id, "out_of_scope", me)


def _resolve(request: Request, services: Console, turn_id: int, status: str, me: StaffSession, *,
             faq_id: int | None = None, procedure: str | None = None) -> Response:
    try:
        services.store.resolve(turn_id, status, me.username, faq_id=faq_id, procedure=procedure)
    except AlreadyResolved:
        if faq_id is not None:  # someone else was quicker: do not keep a second FAQ for the same question
            faqs_of(request).retire(faq_id, me.username)
        return back("/console/review", "already")
    return back("/console/review", status)


# ---- FAQ ----------------------------------------------------------------------------------------------------------


@router.get("/faq")
def faq_list(request: Request, me: Viewer, services: Services) -> Response:
    return faq_list_page(request, services)


def faq_list_page(request: Request, services: Console, *, status: int = 200, error: str | None = None,
                  import_errors: list[str] | None = None) -> Response:
    show = request.query_params.get("status", "active")
    show = show if show in ("active", "retired", "all") else "active"
    items = faqs_of(request).list(include_retired=show != "active")
    if show == "retired":
        items = [f for f in items if f["status"] == "retired"]
    items = [{**f, "title": services.procedure_title(f.get("procedure"))} for f in items]
    return render(request, "faq.html", status=status, items=items, show=show, error=error,
                  import_errors=import_errors or [], notice=notice(request))


@router.get("/faq/export.json")
def faq_export(request: Request, me: Viewer, services: Services) -> Response:
    items = faqs_of(request).export()
    audit.log(services.store.db, me.username, "faq.export", "faq", None, {"count": len(items)})
    return Response(json.dumps(items, ensure_ascii=False, indent=1), media_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="cau-hoi-thuong-gap.json"'})


@router.post("/faq/import")
async def faq_import(request: Request, me: Editor, services: Services,
                     file: UploadFile | None = File(None)) -> Response:  # noqa: B008 - FastAPI's way
    def failed(message: str, errors: list[str] | None = None) -> Response:
        return faq_list_page(request, services, status=400, error=message, import_errors=errors)

    if file is None or not file.filename:
        return await asyncio.to_thread(failed, "Bạn hãy chọn một tệp JSON để nhập.")
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        return await asyncio.to_thread(failed, "Tệp quá lớn (tối đa 2 MB một lần); hãy chia thành nhiều tệp.")
    try:
        items = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return await asyncio.to_thread(failed, f"Tệp không phải JSON hợp lệ (UTF-8): {exc}")
    if isinstance(items, dict):  # {"faqs": [...]} or {"items": [...]}
        items = items.get("faqs", items.get("items"))
    if not isinstance(items, list):
        return await asyncio.to_thread(failed, "Tệp cần chứa một danh sách câu hỏi thường gặp (mảng JSON).")
    try:
        count = await asyncio.to_thread(faqs_of(request).import_, items, me.username)
    except FaqError as exc:
        return await asyncio.to_thread(failed, "Chưa nhập mục nào: tệp có lỗi. Sửa lỗi sau rồi nhập lại.",
                                       [faq_message(exc)])
    await asyncio.to_thread(audit.log, services.store.db, me.username, "faq.import", "faq", None,
                            {"count": count, "file": (file.filename or "")[:100]})
    return back("/console/faq", "imported")


def faq_form_page(request: Request, services: Console, *, faq: dict | None, form: dict, status: int = 200,
                  error: str | None = None) -> Response:
    q = request.query_params.get("q", "")[:MAX_SEARCH_CHARS]
    return render(request, "faq_form.html", status=status, faq=faq, form=form, error=error, q=q,
                  found=services.search_procedures(q) if q else [],
                  procedure_title=services.procedure_title(form.get("procedure")))


@router.get("/faq/new")
def faq_new(request: Request, me: Editor, services: Services) -> Response:
    return faq_form_page(request, services, faq=None, form={"variants": "", "answer": "", "procedure": ""})


@router.post("/faq/new")
def faq_create(request: Request, me: Editor, services: Services, variants: str = Form(""), answer: str = Form(""),
               procedure: str = Form("")) -> Response:
    form = faq_form_values(variants, answer, procedure)
    error = faq_fields_error(variants, answer, procedure)
    if error:
        return faq_form_page(request, services, faq=None, form=form, status=400, error=error)
    variants, answer = form["variants"], form["answer"]
    code = procedure.strip() or None
    if code and services.procedure_title(code) is None:
        return faq_form_page(request, services, faq=None, form=form, status=400, error=f"Không có thủ tục mã “{code}”.")
    try:
        faq_id = faqs_of(request).create(lines(variants), answer.strip() or None, code, me.username)
    except FaqError as exc:
        return faq_form_page(request, services, faq=None, form=form, status=400, error=faq_message(exc))
    audit.log(services.store.db, me.username, "faq.create", "faq", faq_id, {})
    return back("/console/faq", "faq_created")


def _faq(request: Request, faq_id: int) -> dict:
    faq = faqs_of(request).get(faq_id)
    if faq is None:
        raise ConsoleError(404, "Không tìm thấy câu hỏi thường gặp này.")
    return faq


@router.get("/faq/{faq_id}/edit")
def faq_edit(request: Request, faq_id: int, me: Editor, services: Services) -> Response:
    faq = _faq(request, faq_id)
    form = {"variants": "\n".join(faq["variants"]), "answer": faq.get("answer") or "",
            "procedure": faq.get("procedure") or ""}
    return faq_form_page(request, services, faq=faq, form=form)


@router.post("/faq/{faq_id}/edit")
def faq_update(request: Request, faq_id: int, me: Editor, services: Services, variants: str = Form(""),
               answer: str = Form(""), procedure: str = Form("")) -> Response:
    form = faq_form_values(variants, answer, procedure)
    error = faq_fields_error(variants, answer, procedure)
    faq = _faq(request, faq_id)
    if error:
        return faq_form_page(request, services, faq=faq, form=form, status=400, error=error)
    variants, answer = form["variants"], form["answer"]
    code = procedure.strip() or None
    if code and services.procedure_title(code) is None:
        return faq_form_page(request, services, faq=faq, form=form, status=400, error=f"Không có thủ tục mã “{code}”.")
    try:
        faqs_of(request).update(faq_id, author=me.username, variants=lines(variants), answer=answer.strip() or None,
                                procedure=code)
    except FaqError as exc:
        return faq_form_page(request, services, faq=faq, form=form, status=400, error=faq_message(exc))
    audit.log(services.store.db, me.username, "faq.update", "faq", faq_id, {})
    return back("/console/faq", "faq_saved")


@router.post("/faq/{faq_id}/retire")
def faq_retire(request: Request, faq_id: int, me: Editor, services: Services) -> Response:
    _faq(request, faq_id)
    faqs_of(request).retire(faq_id, me.username)
    audit.log(services.store.db, me.username, "faq.retire", "faq", faq_id, {})
    return back("/console/faq", "faq_retired")


@router.post("/faq/{faq_id}/restore")
def faq_restore(request: Request, faq_id: int, me: Editor, services: Services) -> Response:
    _faq(request, faq_id)
    try:
        faqs_of(request).restore(faq_id, me.username)
    except FaqError as exc:
        return faq_list_page(request, services, status=400, error=faq_message(exc))
    audit.log(services.store.db, me.username, "faq.restore", "faq", faq_id, {})
    return back("/console/faq?status=retired", "faq_restored")


# ---- handed-over conversations ----------------------------------------------------------------------------------


@router.get("/handoff")
def handoff_queue(request: Request, me: Viewer, services: Services) -> Response:
    show = "closed" if request.query_params.get("status") == "closed" else "open"
    page = page_number(request)
    tickets, total = services.store.tickets(show, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    tickets = [{**t, "last_question": mask(t["last_question"])} for t in tickets]
    viewed(request, services, "handoff_queue", None, page=page, tickets=[t["id"] for t in tickets])
    return render(request, "handoff.html", tickets=tickets, total=total, show=show, page=page, pages=pages(total),
                  notice=notice(request))


def _ticket(services: Console, ticket_id: int) -> dict:
    ticket = services.store.ticket(ticket_id)
    if ticket is None:
        raise ConsoleError(404, "Không tìm thấy yêu cầu hỗ trợ này.")
    return ticket


def ticket_page(request: Request, services: Console, ticket_id: int, *, status: int = 200,
                error: str | None = None, draft: str = "") -> Response:
    ticket = _ticket(services, ticket_id)
    transcript = [{**m, "text": mask(str(m.get("text", "")))} for m in ticket["transcript"]]
    after = [{**e, "text": mask(e["text"])} if e["who"] != "staff" else e
             for e in services.store.conversation_after(ticket)]
    viewed(request, services, "ticket", ticket_id, channel=ticket["channel"])  # not the session id: a web one is a key
    return render(request, "ticket.html", status=status, ticket=ticket, transcript=transcript, after=after,
                  error=error, draft=draft, notice=notice(request), can_push=ticket["channel"] in PUSH_CHANNELS,
                  max_chars=reply_limit(request))


@router.get("/handoff/{ticket_id}")
def ticket_view(request: Request, ticket_id: int, me: Viewer, services: Services) -> Response:
    return ticket_page(request, services, ticket_id)


@router.post("/handoff/{ticket_id}/assign")
def ticket_assign(request: Request, ticket_id: int, me: Editor, services: Services) -> Response:
    _ticket(services, ticket_id)
    services.store.assign(ticket_id, me.username)
    return back(f"/console/handoff/{ticket_id}", "assigned")


@router.post("/handoff/{ticket_id}/close")
def ticket_close(request: Request, ticket_id: int, me: Editor, services: Services) -> Response:
    _ticket(services, ticket_id)
    services.store.close(ticket_id, me.username)
    return back("/console/handoff", "closed")


async def send_staff_reply(request: Request, services: Console, ticket: dict, author: str, text: str) -> dict:
    """Store a staff reply and send it to the citizen on their channel: Telegram and Zalo through the hub's
    outbox, the web chat by the page's polling of GET /api/messages; API and terminal sessions cannot be reached."""
    channel, label = ticket["channel"], CHANNEL_LABELS.get(ticket["channel"], ticket["channel"])
    outbox_ids, delivered, error = None, False, None
    if channel in PUSH_CHANNELS:
        user_id = ticket["session_id"].split(":", 1)[1] if ":" in ticket["session_id"] else ticket["session_id"]
        try:
            outbox_ids = await request.app.state.hub.send_text(channel, user_id, text)
            delivered = True
        except KeyError:
            error = f"Kênh {label} chưa được cấu hình trên máy chủ này nên tin nhắn chưa được gửi."
    elif channel != "web":
        error = f"Kênh {label} không nhận được tin nhắn gửi sau; câu trả lời chỉ được lưu lại."
    reply_id = await asyncio.to_thread(services.store.add_reply, ticket, author, text, delivered=delivered,
                                       error=error, outbox_ids=outbox_ids)
    return {"id": reply_id, "channel": channel, "delivered": delivered, "error": error}


def _reply_text(text: str, limit: int) -> str:
    """A reply to a citizen, bounded like what citizens send (settings.max_input_chars), before anything else."""
    clean = lf(text).strip()
    error = too_long(clean, limit, "Câu trả lời")
    if error:
        raise ConsoleError(400, error)
    if not clean:
        raise ConsoleError(400, "Bạn hãy nhập nội dung trả lời.")
    return clean


@router.post("/handoff/{ticket_id}/reply")
async def ticket_reply(request: Request, ticket_id: int, me: Editor, services: Services,
                       text: str = Form("")) -> Response:
    try:
        clean = _reply_text(text, reply_limit(request))
    except ConsoleError as exc:
        return await asyncio.to_thread(ticket_page, request, services, ticket_id, status=exc.status,
                                       error=exc.message, draft=text[:reply_limit(request)])
    ticket = await asyncio.to_thread(_ticket, services, ticket_id)
    result = await send_staff_reply(request, services, ticket, me.username, clean)
    code = "reply_stored" if result["error"] else "reply_web" if ticket["channel"] == "web" else "replied"
    return back(f"/console/handoff/{ticket_id}", code)


@router.post("/api/handoff/{ticket_id}/reply")
async def api_ticket_reply(request: Request, ticket_id: int, me: Editor, services: Services) -> dict:
    """JSON: {"text": "..."} with the X-CSRF-Token header; answers {"id", "channel", "delivered", "error"}."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ConsoleError(400, "Nội dung yêu cầu không phải JSON.") from exc
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ConsoleError(400, "Thiếu trường text.")
    clean = _reply_text(text, reply_limit(request))
    ticket = await asyncio.to_thread(_ticket, services, ticket_id)
    return await send_staff_reply(request, services, ticket, me.username, clean)


# ---- accounts and audit log (admin) ------------------------------------------------------------------------------


def users_page(request: Request, services: Console, *, status: int = 200, error: str | None = None,
               form: dict | None = None) -> Response:
    return render(request, "users.html", status=status, users=services.staff.users(), error=error,
                  form=form or {"username": "", "role": "viewer"}, notice=notice(request))


@router.get("/users")
def users(request: Request, me: Admin, services: Services) -> Response:
    return users_page(request, services)


@router.post("/users")
def user_create(request: Request, me: Admin, services: Services, username: str = Form(""), role: str = Form("viewer"),
                password: str = Form(""), password2: str = Form("")) -> Response:
    form = {"username": username[:MAX_USERNAME_CHARS], "role": role if role in ROLES else "viewer"}
    error = (too_long(username.strip(), MAX_USERNAME_CHARS, "Tên đăng nhập")
             or too_long(password, MAX_PASSWORD_CHARS, "Mật khẩu") or too_long(password2, MAX_PASSWORD_CHARS, "Mật khẩu"))
    if error:
        return users_page(request, services, status=400, form=form, error=error)
    if password != password2:
        return users_page(request, services, status=400, form=form, error="Hai lần nhập mật khẩu không khớp.")
    try:
        services.staff.create_user(username, password, role, me.username)
    except AccountError as exc:
        return users_page(request, services, status=400, form=form, error=str(exc))
    return back("/console/users", "user_created")


@router.post("/users/{user_id}/role")
def user_role(request: Request, user_id: int, me: Admin, services: Services, role: str = Form("")) -> Response:
    try:
        services.staff.set_role(user_id, role, me.username)
    except AccountError as exc:
        return users_page(request, services, status=400, error=str(exc))
    return back("/console/users", "role_changed")


@router.post("/users/{user_id}/active")
def user_active(request: Request, user_id: int, me: Admin, services: Services, active: str = Form("")) -> Response:
    try:
        services.staff.set_active(user_id, active == "1", me.username)
    except AccountError as exc:
        return users_page(request, services, status=400, error=str(exc))
    return back("/console/users", "user_enabled" if active == "1" else "user_disabled")


@router.get("/audit")
def audit_page(request: Request, me: Admin, services: Services) -> Response:
    actor = request.query_params.get("actor", "")[:MAX_FILTER_CHARS].strip() or None
    action = request.query_params.get("action", "")[:MAX_FILTER_CHARS].strip() or None
    page = page_number(request)
    entries, total = audit.entries(services.store.db, actor=actor, action=action, limit=PAGE_SIZE,
                                   offset=(page - 1) * PAGE_SIZE)
    return render(request, "audit.html", entries=entries, total=total, page=page, pages=pages(total), actor=actor,
                  action=action, actions=list(audit.ACTION_LABELS))
