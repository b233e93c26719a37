"""The web chat page (GET /) and the embeddable widget (GET /widget.js) in a real headless Chromium.

The real app (engine-only assistant over the small test index) is served by uvicorn on a free local port and
driven with Playwright: questions, source links, option buttons, star ratings stored in the database, markup
typed by a citizen shown as text, the typing indicator, a network failure, and the widget on another site.

Debian's /usr/bin/chromium is used (never a downloaded browser); without it the tests are skipped locally and
fail under CI. Set VNA_SCREENSHOT=<path.png> to save a screenshot of a conversation on a phone-sized screen
(docs/web-chat.png is made that way).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from bot.api import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
SESSION_KEY = "vna.chat.session"

ANSWERS = "#log .msg-bot:not(.msg-greeting):not(.msg-error)"
USER_BUBBLES = "#log .msg-user .bubble"

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def server(settings, assistant) -> Iterator[str]:  # the session fixtures of conftest.py
    """The real app on a free 127.0.0.1 port, in a background thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # ws="none": the chat needs no websockets, and Rasa pins a websockets older than uvicorn's "auto" expects
    config = uvicorn.Config(create_app(settings, assistant), log_level="warning", lifespan="on", ws="none")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True, name="web-chat-server")
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the browser tests
        pytest.skip(message)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="vi-VN", device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


def ask(page: Page, text: str):  # a Locator
    """Type a question, press Enter, and return the bot message that answers it."""
    answers = page.locator(ANSWERS)
    before = answers.count()
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")
    expect(answers).to_have_count(before + 1)
    return answers.nth(before)


def session_of(page: Page) -> str:
    """The conversation's id the page keeps: one the server issued (POST /api/session), once it has arrived."""
    page.wait_for_function(f"() => /^web:/.test(localStorage.getItem('{SESSION_KEY}') || '')")
    session_id = page.evaluate(f"localStorage.getItem('{SESSION_KEY}')")
    assert isinstance(session_id, str) and re.fullmatch(r"web:[A-Za-z0-9_-]{24}\.[A-Za-z0-9_-]{43}", session_id)
    return session_id


def test_a_conversation_with_sources_options_and_a_rating(page: Page, server: str, assistant) -> None:
    page.goto(server + "/")
    expect(page.get_by_role("heading", name="Trợ lý thủ tục hành chính")).to_be_visible()
    examples = page.locator(".msg-greeting").get_by_role("button")
    expect(examples).to_have_count(3)
    expect(page.get_by_role("button", name="Làm lại căn cước ở đâu?")).to_be_visible()
    assert page.locator("#log").get_attribute("aria-live") == "polite"
    assert page.locator("#input").get_attribute("maxlength") == "2000"
    session_id = session_of(page)

    # An example question (a chip in the greeting): an answer with its source link
    page.get_by_role("button", name="Làm lại căn cước ở đâu?").click()
    answer = page.locator(ANSWERS).first
    expect(answer).to_be_visible()
    expect(page.locator(USER_BUBBLES).last).to_have_text("Làm lại căn cước ở đâu?")
    expect(answer.locator(".bubble")).to_contain_text("Cấp lại thẻ căn cước")
    source = answer.get_by_role("link", name=re.compile(r"^Nguồn: "))
    expect(source.first).to_be_visible()
    assert re.match(r"^https?://", source.first.get_attribute("href") or "")
    assert source.first.get_attribute("target") == "_blank"
    assert "noopener" in (source.first.get_attribute("rel") or "")
    assert source.count() <= 2
    expect(answer.get_by_role("button", name="5 sao")).to_be_visible()  # "was this useful?"
    if os.environ.get("VNA_SCREENSHOT"):  # an answer with its source, options and rating on a phone
        expect(answer.locator(".options").get_by_role("button").first).to_be_visible()
        page.locator("#scroller").evaluate("el => { el.style.scrollBehavior = 'auto'; el.scrollTop = el.scrollHeight; }")
        page.screenshot(path=os.environ["VNA_SCREENSHOT"])

    # A question with several variants: option buttons; choosing one sends its payload, shows its title
    answer = ask(page, "đăng ký kết hôn")
    options = answer.locator(".options").get_by_role("button")
    expect(options.first).to_be_visible()
    assert options.count() >= 2
    chosen = answer.locator(".options").get_by_role("button", name=re.compile("có yếu tố nước ngoài$"))
    title = chosen.inner_text()
    assert re.match(r"^\d+\. Thủ tục đăng ký kết hôn có yếu tố nước ngoài$", title)
    answers = page.locator(ANSWERS)
    before = answers.count()
    chosen.click()
    expect(answers).to_have_count(before + 1)
    expect(page.locator(USER_BUBBLES).last).to_have_text(title)
    for i in range(options.count()):
        expect(options.nth(i)).to_be_disabled()  # the group is used up
    chosen_answer = answers.nth(before)
    expect(chosen_answer.locator(".bubble")).to_contain_text("2.000806")  # the foreign-element marriage record
    expect(chosen_answer.get_by_role("link", name="Nguồn: Thủ tục đăng ký kết hôn có yếu tố nước ngoài")).to_be_visible()
    history = assistant.store.history(session_id)
    assert [h["question"] for h in history][-3:] == ["Làm lại căn cước ở đâu?", "đăng ký kết hôn", title.split(".")[0]]

    # Rating an answer: 4 stars, stored for this session and channel
    chosen_answer.get_by_role("button", name="4 sao").click()
    expect(chosen_answer.get_by_text("Cảm ơn bạn đã đánh giá!")).to_be_visible()
    expect(chosen_answer.get_by_role("button", name="4 sao")).to_have_count(0)
    assert {"session_id": session_id, "channel": "web", "score": 4} in assistant.store.rating_list(session_id)

    # A reload continues the same conversation: the transcript is shown again and a follow-up is understood
    page.reload()
    assert session_of(page) == session_id
    expect(page.locator(USER_BUBBLES).first).to_have_text("Làm lại căn cước ở đâu?")
    follow_up = ask(page, "còn lệ phí thì sao?")
    expect(follow_up.get_by_role("link", name="Nguồn: Thủ tục đăng ký kết hôn có yếu tố nước ngoài")).to_be_visible()
    assert assistant.store.history(session_id)[-1]["intent"] == "ask_fee"

    # "New conversation": a fresh session and an empty transcript
    page.get_by_role("button", name="Cuộc trò chuyện mới").click()
    expect(page.locator(USER_BUBBLES)).to_have_count(0)
    expect(page.locator(".msg-greeting")).to_have_count(1)
    assert session_of(page) != session_id
    page.reload()
    expect(page.locator(".msg-greeting")).to_have_count(1)
    expect(page.locator(USER_BUBBLES)).to_have_count(0)


def test_a_session_the_server_does_not_accept_is_replaced(page: Page, server: str, assistant) -> None:
    """A stored id with a wrong signature (a forged one, or the deployment's secret changed) is refused by the
    server; the page gets a new one and the question is answered. An id of an older page version (a bare UUID)
    is dropped with its transcript."""
    forged = "web:" + "a" * 24 + "." + "b" * 43
    page.add_init_script(f"""if (!sessionStorage.getItem('seeded')) {{
        sessionStorage.setItem('seeded', '1');
        localStorage.setItem('{SESSION_KEY}', '{forged}');
    }}""")
    page.goto(server + "/")
    assert page.evaluate(f"localStorage.getItem('{SESSION_KEY}')") == forged
    answer = ask(page, "làm lại căn cước ở đâu")
    expect(answer.get_by_role("link", name=re.compile(r"^Nguồn: ")).first).to_be_visible()
    session_id = session_of(page)
    assert session_id != forged
    assert assistant.store.history(forged) == []
    assert [h["question"] for h in assistant.store.history(session_id)] == ["làm lại căn cước ở đâu"]

    page.evaluate(f"""localStorage.setItem('{SESSION_KEY}', '0b6f3c7e-8d1a-4c2b-9e5f-1a2b3c4d5e6f');
                      localStorage.setItem('vna.chat.transcript', JSON.stringify([{{who: 'user', text: 'câu cũ'}}]));""")
    page.reload()
    expect(page.locator(".msg-greeting")).to_have_count(1)
    expect(page.locator(USER_BUBBLES)).to_have_count(0)  # the old conversation's transcript is gone with its id
    assert session_of(page) not in (session_id, "0b6f3c7e-8d1a-4c2b-9e5f-1a2b3c4d5e6f")


def test_too_many_messages_are_explained_with_the_wait(page: Page, server: str) -> None:
    page.route("**/api/chat", lambda route: route.fulfill(status=429, headers={"Retry-After": "7"},
                                                          json={"detail": "Bạn gửi quá nhiều yêu cầu"}))
    page.goto(server + "/")
    page.locator("#input").fill("đăng ký khai sinh cho con")
    page.locator("#input").press("Enter")
    error = page.locator("#log .msg-error")
    expect(error).to_contain_text("đợi 7 giây")
    expect(error.get_by_role("button", name="Thử lại")).to_be_visible()
    expect(page.locator("#input")).to_have_value("đăng ký khai sinh cho con")


def test_a_rating_request_from_the_bot_is_a_star_control(page: Page, server: str) -> None:
    """Buttons with /rate payloads (the dialogue layer asks for a rating) are stars that answer through /api/chat."""
    rate_request = {
        "question": "tạm biệt", "reply": "Bạn đánh giá câu trả lời hôm nay thế nào?", "intent": "goodbye",
        "fallback": False, "sources": [],
        "buttons": [{"title": f"{n} - điểm {n}", "payload": f'/rate{{"score": "{n}"}}'} for n in range(5, 0, -1)],
    }
    thanks = {"question": "", "reply": "Cảm ơn bạn đã đánh giá!", "intent": "rate", "fallback": False,
              "sources": [], "buttons": []}
    sent: list[dict] = []

    def fake_chat(route: Route) -> None:
        sent.append(route.request.post_data_json)
        route.fulfill(json=rate_request if len(sent) == 1 else thanks)

    page.route("**/api/chat", fake_chat)
    page.goto(server + "/")
    answer = ask(page, "tạm biệt")
    stars = answer.locator(".stars").get_by_role("button")
    expect(stars).to_have_count(5)
    expect(answer.locator(".options")).to_have_count(0)  # not plain buttons
    answer.get_by_role("button", name="5 sao").click()
    expect(page.locator(ANSWERS)).to_have_count(2)
    expect(page.locator(USER_BUBBLES).last).to_have_text("5 - điểm 5")
    assert sent[-1]["text"] == '/rate{"score": "5"}' and sent[-1]["channel"] == "web"
    for i in range(5):
        expect(stars.nth(i)).to_be_disabled()


def test_markup_typed_by_a_citizen_is_shown_as_text(page: Page, server: str) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server + "/")
    payload = "<img src=x onerror=alert(1)> <script>alert(2)</script> <b>đậm</b>"
    answer = ask(page, payload)
    bubble = page.locator(USER_BUBBLES).last
    expect(bubble).to_have_text(payload)
    assert bubble.evaluate("el => el.textContent") == payload
    assert bubble.evaluate("el => el.children.length") == 0
    expect(answer.locator(".bubble")).not_to_be_empty()
    assert page.locator("#log img, #log script, #log b").count() == 0
    assert dialogs == []


def test_typing_indicator_enter_and_shift_enter(page: Page, server: str) -> None:
    held: list[Route] = []
    page.route("**/api/chat", lambda route: held.append(route))  # hold the request until released below
    page.goto(server + "/")
    box = page.locator("#input")
    send = page.get_by_role("button", name="Gửi")
    typing = page.locator("#typing")
    expect(typing).to_be_hidden()

    # Whitespace is not sent
    box.fill("   \n  ")
    box.press("Enter")
    expect(send).to_be_disabled()
    expect(page.locator(USER_BUBBLES)).to_have_count(0)

    # Shift+Enter breaks the line, Enter sends; while the answer is pending: the indicator, no sending
    box.fill("")
    box.press_sequentially("đăng ký khai tử")
    box.press("Shift+Enter")
    box.press_sequentially("cần giấy tờ gì")
    expect(box).to_have_value("đăng ký khai tử\ncần giấy tờ gì")
    expect(page.locator(USER_BUBBLES)).to_have_count(0)
    box.press("Enter")
    expect(page.locator(USER_BUBBLES)).to_have_count(1)
    assert page.locator(USER_BUBBLES).evaluate("el => el.textContent") == "đăng ký khai tử\ncần giấy tờ gì"
    expect(typing).to_be_visible()
    expect(typing).to_contain_text("Đang soạn câu trả lời…")
    expect(send).to_be_disabled()
    box.fill("câu hỏi tiếp theo")
    box.press("Enter")
    expect(send).to_be_disabled()
    expect(page.locator(USER_BUBBLES)).to_have_count(1)  # nothing sent while pending
    expect(box).to_have_value("câu hỏi tiếp theo")  # and nothing lost
    page.wait_for_function("() => true")  # let Playwright dispatch the held route
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator(ANSWERS)).to_have_count(1)
    expect(typing).to_be_hidden()
    expect(send).to_be_enabled()

    # The counter appears near the 2000-character limit
    counter = page.locator("#counter")
    expect(counter).to_be_hidden()
    box.fill("a" * 1900)
    expect(counter).to_be_visible()
    expect(counter).to_have_text("1900/2000")


def test_a_network_failure_shows_an_error_and_keeps_the_text(page: Page, server: str) -> None:
    failures = {"left": 1}

    def flaky(route: Route) -> None:
        if failures["left"]:
            failures["left"] -= 1
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/chat", flaky)
    page.goto(server + "/")
    page.locator("#input").fill("làm lại căn cước ở đâu")
    page.locator("#input").press("Enter")
    error = page.locator("#log .msg-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Xin lỗi")
    expect(page.locator("#input")).to_have_value("làm lại căn cước ở đâu")  # the typed text is not lost
    expect(page.locator("#typing")).to_be_hidden()

    error.get_by_role("button", name="Thử lại").click()
    expect(error).to_have_count(0)
    answer = page.locator(ANSWERS)
    expect(answer).to_have_count(1)
    expect(answer.get_by_role("link", name=re.compile(r"^Nguồn: ")).first).to_be_visible()
    expect(page.locator(USER_BUBBLES)).to_have_count(1)
    expect(page.locator("#input")).to_have_value("")

    # A refusal (413) is explained, and the text is given back to shorten it
    page.unroute("**/api/chat")
    page.route("**/api/chat", lambda route: route.fulfill(status=413, json={"detail": "Request body too large"}))
    page.locator("#input").fill("một câu hỏi rất dài")
    page.locator("#input").press("Enter")
    expect(page.locator("#log .msg-error")).to_contain_text("quá dài")
    expect(page.locator("#input")).to_have_value("một câu hỏi rất dài")


def test_a_retry_after_a_lost_answer_gets_that_answer_without_a_second_turn(page: Page, server: str,
                                                                               assistant) -> None:
    """The server answered but the answer never reached the page (the connection dropped on the way back): the
    "Thử lại" button sends the message again with its id, gets the first answer, and the turn is stored once."""
    import json

    bodies: list[dict] = []
    lost = {"left": 1}

    def answered_then_dropped(route: Route) -> None:
        bodies.append(json.loads(route.request.post_data or "{}"))
        if lost["left"]:
            lost["left"] -= 1
            route.fetch()  # the server runs and records the turn ...
            route.abort("connectionreset")  # ... and its answer is lost on the way back
        else:
            route.continue_()

    page.route("**/api/chat", answered_then_dropped)
    page.goto(server + "/")
    page.locator("#input").fill("đăng ký khai sinh cho con")
    page.locator("#input").press("Enter")
    error = page.locator("#log .msg-error")
    expect(error).to_be_visible()
    error.get_by_role("button", name="Thử lại").click()
    expect(page.locator(ANSWERS)).to_have_count(1)
    assert len(bodies) == 2
    assert bodies[0]["message_id"] == bodies[1]["message_id"] and re.fullmatch(r"[0-9a-f]{24}",
                                                                                bodies[0]["message_id"])
    history = assistant.store.history(bodies[0]["session_id"])
    assert [h["question"] for h in history] == ["đăng ký khai sinh cho con"]  # stored once

    page.locator("#input").fill("lệ phí bao nhiêu")  # the next message is a new one: a new id
    page.locator("#input").press("Enter")
    expect(page.locator(ANSWERS)).to_have_count(2)
    assert bodies[2]["message_id"] != bodies[0]["message_id"]
    assert len(assistant.store.history(bodies[0]["session_id"])) == 2


@contextmanager
def portal_site(html: str) -> Iterator[str]:
    """Another site (a different origin on the same machine) whose every page is ``html``."""
    body = html.encode()

    class Portal(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True, name="portal")
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_widget_on_another_site_opens_the_compact_chat(page: Page, server: str) -> None:
    # A portal with unfriendly global styles; the widget must neither be hidden by them nor leak globals.
    html = f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1"><title>Cổng thông tin tỉnh</title>
      <style>button {{ display: none !important; }} iframe {{ width: 1px !important; }} div {{ color: red; }}</style>
      <script>window.__before = Object.keys(window);</script></head>
      <body><h1>Cổng thông tin điện tử tỉnh</h1><p>Nội dung trang.</p>
      <script src="{server}/widget.js" async></script></body></html>"""
    with portal_site(html) as portal:
        page.goto(portal)
        launcher = page.get_by_role("button", name="Mở trợ lý thủ tục hành chính")
        expect(launcher).to_be_visible()  # the portal's "button { display: none }" does not reach it
        box = launcher.bounding_box()
        assert box is not None
        assert box["x"] > PHONE["width"] / 2 and box["y"] > PHONE["height"] / 2  # bottom-right
        leaked = page.evaluate("Object.keys(window).filter(k => !window.__before.includes(k) && k !== '__before')")
        assert leaked == ["VnaChatWidget"]

        launcher.click()
        frame_el = page.locator("iframe[title='Trợ lý thủ tục hành chính']")
        expect(frame_el).to_be_visible()
        src = frame_el.get_attribute("src") or ""
        assert src == f"{server}/?embed=1"
        toggle = page.locator("button[aria-label='Mở trợ lý thủ tục hành chính']")  # hidden too (full screen)
        assert toggle.get_attribute("aria-expanded") == "true"

        chat = page.frame_locator("iframe[title='Trợ lý thủ tục hành chính']")
        expect(chat.locator("#input")).to_be_visible()
        expect(chat.get_by_role("heading", name="Trợ lý thủ tục hành chính")).to_be_hidden()  # compact mode
        chat.locator("#input").fill("làm lại căn cước ở đâu")
        chat.locator("#input").press("Enter")
        expect(chat.locator(ANSWERS).get_by_role("link", name=re.compile(r"^Nguồn: ")).first).to_be_visible()

        page.get_by_role("button", name="Đóng trợ lý thủ tục hành chính").click()
        expect(frame_el).to_be_hidden()
        assert toggle.get_attribute("aria-expanded") == "false"

        # On a wide screen the panel sits above the button, which toggles it
        page.set_viewport_size({"width": 1280, "height": 800})
        launcher.click()
        expect(frame_el).to_be_visible()
        panel = frame_el.bounding_box()
        assert panel is not None and panel["width"] < 500 and panel["x"] > 640
        expect(launcher).to_be_visible()
        launcher.click()
        expect(frame_el).to_be_hidden()
