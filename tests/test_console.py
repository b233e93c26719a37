"""The staff console (/console) through its HTTP interface: who may do what, sessions, CSRF, the sign-in limit,
escaping of citizen text, the review queue, the FAQ, handed-over conversations on each channel, accounts, the
audit log, the dashboard and its exports, and `python -m bot staff`.

The app is the real one over the engine-only test assistant (tests/conftest.py); staff accounts and sessions are
made directly with the console's store, so most requests skip the (deliberately slow) password hash.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from bot.api import create_app
from bot.config import Settings
from bot.console import router as console_router
from bot.console.accounts import IDLE_TIMEOUT_S, LoginLimits, StaffStore, hash_token
from bot.console.auth import COOKIE, LOGIN_COOKIE
from bot.console.signin import Decision, SignInGate
from bot.schema import audit_log, channel_tokens, conversations, login_attempts, review_items, staff_sessions, turns
from bot.service import Assistant
from connectors.core import ChannelStore
from tests.channel_peers import TelegramPeer, ZaloPeer, configured, wait_for

PASSWORD = "mật-khẩu-đủ-dài-123"
XSS = "<script>alert(1)</script>"
ROLES = ("viewer", "editor", "admin")

# Every console route and the least role it needs. A route added to bot/console without a line here fails
# test_every_console_route_is_in_the_table.
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/console/logout"): "viewer",
    ("GET", "/console"): "viewer",
    ("GET", "/console/export.csv"): "viewer",
    ("GET", "/console/export.json"): "viewer",
    ("GET", "/console/api/kpis"): "viewer",
    ("GET", "/console/review"): "viewer",
    ("GET", "/console/api/review"): "viewer",
    ("GET", "/console/api/procedures"): "viewer",
    ("GET", "/console/review/{turn_id}"): "viewer",
    ("POST", "/console/review/{turn_id}/link"): "editor",
    ("POST", "/console/review/{turn_id}/faq"): "editor",
    ("POST", "/console/review/{turn_id}/out-of-scope"): "editor",
    ("GET", "/console/faq"): "viewer",
    ("GET", "/console/faq/export.json"): "viewer",
    ("POST", "/console/faq/import"): "editor",
    ("GET", "/console/faq/new"): "editor",
    ("POST", "/console/faq/new"): "editor",
    ("GET", "/console/faq/{faq_id}/edit"): "editor",
    ("POST", "/console/faq/{faq_id}/edit"): "editor",
    ("POST", "/console/faq/{faq_id}/retire"): "editor",
    ("POST", "/console/faq/{faq_id}/restore"): "editor",
    ("GET", "/console/handoff"): "viewer",
    ("GET", "/console/handoff/{ticket_id}"): "viewer",
    ("POST", "/console/handoff/{ticket_id}/assign"): "editor",
    ("POST", "/console/handoff/{ticket_id}/close"): "editor",
    ("POST", "/console/handoff/{ticket_id}/reply"): "editor",
    ("POST", "/console/api/handoff/{ticket_id}/reply"): "editor",
    ("GET", "/console/users"): "admin",
    ("POST", "/console/users"): "admin",
    ("POST", "/console/users/{user_id}/role"): "admin",
    ("POST", "/console/users/{user_id}/active"): "admin",
    ("GET", "/console/audit"): "admin",
}
PUBLIC = {("GET", "/console/login"), ("POST", "/console/login")}
MISSING_ID = "987654"
# The console's cookies are Secure by default (sent over HTTPS only, as in production behind a TLS proxy): the
# test clients speak to the app as https://testserver so their cookie jar keeps and sends them.
# test_the_development_setting_drops_secure covers plain http with VNA_CONSOLE_SECURE_COOKIES=false.
HTTPS = "https://testserver"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def app(settings: Settings, assistant: Assistant, tg_peer: TelegramPeer, zalo_peer: ZaloPeer) -> Iterator[TestClient]:
    """The app with Telegram and Zalo configured against local contract servers (tests/channel_peers.py)."""
    channels = configured(settings, tg_peer, zalo_peer, "secret-for-console-tests", "oa-secret-for-console-tests")
    with assistant.store.db.begin() as conn:  # Zalo token pairs rotated by other test modules do not apply here
        conn.execute(delete(channel_tokens).where(channel_tokens.c.channel == "zalo"))
    with TestClient(create_app(channels, assistant), base_url=HTTPS, follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def plain(settings: Settings, assistant: Assistant) -> Iterator[TestClient]:
    """The app with no chat platform configured (web chat and API only)."""
    with TestClient(create_app(settings, assistant), base_url=HTTPS, follow_redirects=False) as client:
        yield client


@pytest.fixture(autouse=True)
def no_cookies(app: TestClient, plain: TestClient) -> None:
    app.cookies.clear()
    plain.cookies.clear()


@pytest.fixture(scope="module")
def staff(assistant: Assistant) -> StaffStore:
    return StaffStore(assistant.store.db)


@pytest.fixture(scope="module")
def users(staff: StaffStore) -> dict[str, int]:
    """One account per role (the password hash is made once per account)."""
    run = uuid.uuid4().hex[:6]
    return {role: staff.create_user(f"{role}-{run}", PASSWORD, role, "test") for role in ROLES}


class Login:
    """A signed-in staff member: the cookie header and the CSRF token of a fresh session."""

    def __init__(self, staff: StaffStore, user_id: int) -> None:
        self.token, self.csrf = staff.open_session(user_id)
        self.cookie = {"Cookie": f"{COOKIE}={self.token}"}

    def form(self, **fields: str) -> dict:
        return {"csrf_token": self.csrf, **fields}


@pytest.fixture
def as_role(staff: StaffStore, users: dict[str, int]):
    return lambda role: Login(staff, users[role])


def ask(client: TestClient, text: str, channel: str = "web", session: str | None = None) -> tuple[str, dict]:
    """A citizen's turn on ``channel``: the web chat and the API through POST /api/chat (a web conversation with
    a signed id from POST /api/session), Telegram and Zalo as their adapters record them (assistant.turn)."""
    if channel in ("web", "api"):
        if session is None:
            session = (client.post("/api/session").json()["session_id"] if channel == "web"
                       else f"console-{uuid.uuid4().hex[:10]}")
        r = client.post("/api/chat", json={"session_id": session, "text": text, "channel": channel})
        assert r.status_code == 200, r.text
        return session, r.json()
    session = session or f"{channel}:{uuid.uuid4().int % 10**9}"
    turn = asyncio.run(client.app.state.assistant.turn(session, text, channel))
    return session, turn.reply.contract()


def rate(client: TestClient, session: str, channel: str, score: int) -> None:
    """The citizen's rating: the web page's stars through POST /api/rating, a chat platform's in its dialogue."""
    if channel == "web":
        r = client.post("/api/rating", json={"session_id": session, "score": score, "channel": channel})
        assert r.status_code == 200, r.text
    else:
        client.app.state.assistant.store.rate(session, channel, score)


def last_turn_id(assistant: Assistant, session: str) -> int:
    with assistant.store.db.connect() as conn:
        return conn.execute(select(func.max(turns.c.id)).where(turns.c.session_id == session)).scalar_one()


def audited(assistant: Assistant, action: str, target_id: object) -> list[dict]:
    with assistant.store.db.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == action,
                                                    audit_log.c.target_id == str(target_id))).all()
    return [dict(r._mapping) for r in rows]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# ------------------------------------------------------------------------------------------------ who may do what


def console_routes(routes: list) -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI keeps an included router as one entry
            found |= console_routes(route.original_router.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/console"):
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


def test_every_console_route_is_in_the_table(app: TestClient) -> None:
    routes = console_routes(app.app.routes)
    assert routes >= PUBLIC
    assert routes - PUBLIC == set(ROUTES), "add the new console route (and its least role) to ROUTES"
    assert console_routes(console_router.router.routes) == routes


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", MISSING_ID, path)


def call(client: TestClient, method: str, path: str, headers: dict | None = None, data: dict | None = None):
    if method == "GET":
        return client.get(path, headers=headers or {})
    if "/api/" in path:
        token = (data or {}).get("csrf_token")
        return client.post(path, headers={**(headers or {}), **({"X-CSRF-Token": token} if token else {})},
                           content=b"{}" if token else b"", )
    return client.post(path, headers=headers or {}, data=data or {})


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_a_route_needs_a_session_and_its_role(app: TestClient, as_role, method: str, path: str) -> None:
    least = ROUTES[(method, path)]
    url = concrete(path)
    # no session: pages send to the sign-in page, the JSON API answers 401
    r = call(app, method, url)
    if path.startswith("/console/api/"):
        assert r.status_code == 401 and r.json()["detail"]
    else:
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    # a role below the least one: 403
    for role in ROLES[:ROLES.index(least)]:
        who = as_role(role)
        r = call(app, method, url, who.cookie, who.form())
        assert r.status_code == 403, (role, r.status_code)
    # the least role and above: let in (the made-up id is then a 404, an empty form a 400, …)
    for role in ROLES[ROLES.index(least):]:
        who = as_role(role)
        r = call(app, method, url, who.cookie, who.form())
        assert r.status_code not in (401, 403), (role, r.status_code, r.text[:300])


@pytest.mark.parametrize(("method", "path"), sorted(k for k in ROUTES if k[0] == "POST"))
def test_a_change_without_the_csrf_token_is_refused(app: TestClient, as_role, method: str, path: str) -> None:
    who = as_role("admin")
    url = concrete(path)
    assert call(app, method, url, who.cookie, {}).status_code == 403  # missing
    assert call(app, method, url, who.cookie, {"csrf_token": "x" * 43}).status_code == 403  # wrong
    other = as_role("admin")  # another session's token is wrong too
    assert call(app, method, url, who.cookie, {"csrf_token": other.csrf}).status_code == 403


def test_a_refused_page_says_why_in_vietnamese(app: TestClient, as_role) -> None:
    r = app.get("/console/users", headers=as_role("editor").cookie)
    assert r.status_code == 403
    assert "Không có quyền truy cập" in r.text
    r = app.get("/console/api/review")
    assert r.status_code == 401 and r.json() == {"detail": "Bạn cần đăng nhập."}


# ------------------------------------------------------------------------------------------------ signing in


def test_signing_in_and_out(app: TestClient, staff: StaffStore, users: dict[str, int]) -> None:
    username = staff.user(users["editor"])["username"]
    r = app.get("/console/review")
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=%2Fconsole%2Freview"
    page = app.get(r.headers["location"])
    assert page.status_code == 200 and "Đăng nhập" in page.text
    r = app.post("/console/login", data={"username": username.upper(), "password": PASSWORD,
                                         "csrf_token": csrf_of(page.text), "next": "/console/review"})
    assert r.status_code == 303 and r.headers["location"] == "/console/review"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" in cookie
    token = re.match(rf"{COOKIE}=([^;]+)", cookie).group(1)
    with staff.db.connect() as conn:  # the database has the token's hash, never the token
        assert conn.execute(select(staff_sessions.c.token_hash).where(
            staff_sessions.c.token_hash == hash_token(token))).first()
        assert not conn.execute(select(staff_sessions).where(staff_sessions.c.token_hash == token)).first()
    page = app.get("/console/review")
    assert page.status_code == 200 and username in page.text
    assert staff.user(users["editor"])["last_login_at"] is not None

    r = app.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert staff.session(token) is None
    assert app.get("/console/review").status_code == 303


def test_sign_in_refuses_an_old_form_a_wrong_password_and_a_foreign_next(app: TestClient, staff: StaffStore,
                                                                          users: dict[str, int]) -> None:
    username = staff.user(users["viewer"])["username"]
    first = csrf_of(app.get("/console/login").text)
    r = app.post("/console/login", data={"username": username, "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and "Trang đăng nhập đã cũ" in r.text
    assert csrf_of(r.text) != first  # a fresh form token (and cookie) each time
    r = app.post("/console/login", data={"username": username, "password": "sai-mat-khau-roi",
                                         "csrf_token": csrf_of(r.text)})
    assert r.status_code == 401 and "không đúng" in r.text
    token = csrf_of(r.text)
    r = app.post("/console/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                         "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/console"
    _clear_attempts(staff)


def _clear_attempts(staff: StaffStore) -> None:
    with staff.db.begin() as conn:  # every request of this module comes from one address ("testclient")
        conn.execute(delete(login_attempts))


def attempts(staff: StaffStore, username: str) -> list[dict]:
    with staff.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(login_attempts).where(login_attempts.c.username == username)).all()]


def sign_ins(assistant: Assistant, since_id: int) -> list[dict]:
    with assistant.store.db.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.id > since_id, audit_log.c.action.like("login%"))
                            .order_by(audit_log.c.id)).all()
    return [{**r._mapping, "detail": json.loads(r.detail)} for r in rows]


def last_audit_id(assistant: Assistant) -> int:
    with assistant.store.db.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one()


def test_five_wrong_passwords_block_that_account_from_that_address_only(app: TestClient, staff: StaffStore,
                                                                        users: dict[str, int]) -> None:
    username = staff.user(users["viewer"])["username"]
    other = staff.user(users["editor"])["username"]
    try:
        token = csrf_of(app.get("/console/login").text)
        for _ in range(5):
            r = app.post("/console/login", data={"username": username, "password": "doan-mo-mat-khau",
                                                 "csrf_token": token})
            assert r.status_code == 401 and "không đúng" in r.text
            token = csrf_of(r.text)
        r = app.post("/console/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 429  # even the right password, while blocked: it is never verified
        assert "quá nhiều lần đăng nhập sai với tài khoản này từ địa chỉ mạng của bạn (5 lần trong 15 phút)" in r.text
        assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
        assert app.get("/console").status_code == 303
        assert len(attempts(staff, username)) == 5  # refused attempts are not kept: they verified nothing
        # another account from this address, and this account from another address, still sign in
        r = app.post("/console/login", data={"username": other, "password": PASSWORD, "csrf_token": csrf_of(r.text)})
        assert r.status_code == 303
        assert staff.authenticate(username, PASSWORD, "198.51.100.20") is not None
        # the window expires: 15 minutes later this address may try again
        with staff.db.begin() as conn:
            conn.execute(update(login_attempts).values(created_at=login_attempts.c.created_at - 15 * 60 - 1))
        assert staff.authenticate(username, PASSWORD, "testclient") is not None
    finally:
        _clear_attempts(staff)


def test_one_address_trying_many_accounts_is_limited(staff: StaffStore) -> None:
    limits = LoginLimits.parse(address="20/15minute")
    try:
        for n in range(20):  # the attempts are recorded (as failures) before any password is verified
            assert staff.admit(f"ai-do-{n}", "203.0.113.9", limits).attempt_id is not None
        refused = staff.admit("quantri", "203.0.113.9", limits)
        assert refused.attempt_id is None and refused.limit == "address" and refused.allowed == 20
        assert staff.admit("quantri", "203.0.113.10", limits).attempt_id is not None
    finally:
        _clear_attempts(staff)


def test_an_ipv6_client_is_counted_by_its_64_network(app: TestClient, staff: StaffStore,
                                                     users: dict[str, int]) -> None:
    username = staff.user(users["viewer"])["username"]
    try:
        for n in range(5):  # five different addresses of one /64: one subscriber
            with TestClient(app.app, base_url=HTTPS, client=(f"2001:db8:7:1::{n + 1}", 50000),
                            follow_redirects=False) as client:
                token = csrf_of(client.get("/console/login").text)
                r = client.post("/console/login", data={"username": username, "password": "doan-mo-mat-khau",
                                                        "csrf_token": token})
                assert r.status_code == 401
        with TestClient(app.app, base_url=HTTPS, client=("2001:db8:7:1:ffff::9", 50000),
                        follow_redirects=False) as client:
            token = csrf_of(client.get("/console/login").text)
            r = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                    "csrf_token": token})
            assert r.status_code == 429
        assert {a["ip"] for a in attempts(staff, username)} == {"2001:db8:7:1::/64"}
        with TestClient(app.app, base_url=HTTPS, client=("2001:db8:7:2::1", 50000), follow_redirects=False) as client:
            token = csrf_of(client.get("/console/login").text)
            r = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                    "csrf_token": token})
            assert r.status_code == 303  # the next /64 is someone else
    finally:
        _clear_attempts(staff)


def test_many_addresses_cannot_lock_staff_out(staff: StaffStore, users: dict[str, int]) -> None:
    """Guessing one account from many addresses meets the loose total limit, but not where staff signed in from."""
    username = staff.user(users["admin"])["username"]
    limits = LoginLimits.parse(account="5/15minute", address="20/15minute", account_total="50/15minute")
    try:
        assert staff.authenticate(username, PASSWORD, "192.0.2.1", limits) is not None  # the office, yesterday
        with staff.db.begin() as conn:
            conn.execute(update(login_attempts).values(created_at=login_attempts.c.created_at - 86400))
        for n in range(50):  # a botnet: one wrong guess from each of 50 addresses
            assert staff.admit(username, f"198.51.100.{n + 1}", limits).attempt_id is not None
        refused = staff.admit(username, "203.0.113.77", limits)  # a 51st address: refused unverified
        assert refused.attempt_id is None and refused.limit == "account_total"
        assert staff.authenticate(username, PASSWORD, "192.0.2.1", limits) is not None  # the office is not
        # a success ends the total count: a new address may try again
        assert staff.admit(username, "203.0.113.78", limits).attempt_id is not None
    finally:
        _clear_attempts(staff)


@pytest.fixture(scope="module")
def live(settings: Settings, assistant: Assistant) -> Iterator[tuple[str, object]]:
    """The real app on uvicorn, on a free 127.0.0.1 port, in a background thread (real concurrent connections)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    web = create_app(settings, assistant)
    uv = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True, name="console-server")
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", web
    uv.should_exit = True
    thread.join(timeout=10)


def verifications(http: httpx.Client) -> float:
    """argon2 verifications so far, from the server's GET /metrics (loopback clients may read it)."""
    text = http.get("/metrics").text
    return float(re.search(r"^vna_console_password_verifications_total (\S+)$", text, re.M).group(1))


def test_a_burst_of_sixteen_wrong_passwords_runs_at_most_the_allowed_verifications(
        live: tuple[str, object], settings: Settings, staff: StaffStore) -> None:
    url, web = live
    name = f"burst-{uuid.uuid4().hex[:6]}"
    staff.create_user(name, PASSWORD, "editor", "test")
    allowed = int(settings.console_login_account_limit.split("/")[0])  # 5 in 15 minutes
    with httpx.Client(base_url=url, timeout=60) as http:
        token = csrf_of(http.get("/console/login").text)  # one sign-in form (its cookie is Secure: sent by hand)
        before = verifications(http)
    form = {"username": name, "password": "doan-bua-mat-khau", "csrf_token": token}
    start = threading.Barrier(16)

    def attacker(_n: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:  # one connection each, all from 127.0.0.1
            start.wait()
            return client.post("/console/login", data=form, headers={"Cookie": f"{LOGIN_COOKIE}={token}"}).status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(attacker, range(16)))
        with httpx.Client(base_url=url, timeout=60) as http:
            ran = verifications(http) - before
        assert set(statuses) <= {401, 429, 503}, statuses
        assert 1 <= ran <= allowed and statuses.count(401) == ran, (ran, statuses)
        assert statuses.count(429) >= 16 - allowed
        assert web.state.console.signin.peak <= settings.console_login_concurrency
        # the attacker's address stays blocked, even with the right password ... (on a loaded machine some of the
        # burst may have been refused as busy: those verified nothing and count for nothing, so the failures are
        # topped up one at a time to the limit first)
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(allowed - int(ran)):
                r = http.post("/console/login", data=form, headers={"Cookie": f"{LOGIN_COOKIE}={token}"})
                assert r.status_code == 401, r.status_code
            token = csrf_of(http.get("/console/login").text)
            r = http.post("/console/login", data={**form, "password": PASSWORD, "csrf_token": token},
                          headers={"Cookie": f"{LOGIN_COOKIE}={token}"})
            assert r.status_code == 429 and r.headers["retry-after"]
        # ... but the staff member signs in from another address
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, timeout=60, transport=other) as http:
            token = csrf_of(http.get("/console/login").text)
            r = http.post("/console/login", data={**form, "password": PASSWORD, "csrf_token": token},
                          headers={"Cookie": f"{LOGIN_COOKIE}={token}"}, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/console"
            session = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
            assert "Secure" in session and "HttpOnly" in session
    finally:
        _clear_attempts(staff)


def test_every_sign_in_decision_is_audited_with_the_address_and_never_the_password(
        app: TestClient, assistant: Assistant, staff: StaffStore, users: dict[str, int]) -> None:
    username = staff.user(users["editor"])["username"]
    locked = staff.create_user(f"nghi-viec-{uuid.uuid4().hex[:4]}", PASSWORD, "viewer", "test")
    staff.set_active(locked, False, "test")
    locked_name = staff.user(locked)["username"]
    wrong = "mật-khẩu-sai-bí-mật-42"
    since = last_audit_id(assistant)
    try:
        def post(name: str, password: str) -> int:
            token = csrf_of(app.get("/console/login").text)
            return app.post("/console/login", data={"username": name, "password": password,
                                                    "csrf_token": token}).status_code

        assert post(username, PASSWORD) == 303
        app.cookies.clear()
        assert post(username, wrong) == 401
        assert post("khong-ai-ten-nay", wrong) == 401
        assert post(locked_name, PASSWORD) == 401  # the same answer as a wrong password
        assert post(wrong + "x" * 64, wrong) == 400  # a username over 64 characters: refused before anything
        assert app.post("/console/login", data={"username": username, "password": wrong,
                                                "csrf_token": "cu"}).status_code == 403
        for _ in range(4):
            post(username, wrong)
        assert post(username, PASSWORD) == 429
        entries = sign_ins(assistant, since)
        by_action = {e["action"]: e for e in entries}
        assert by_action["login"]["actor"] == username and by_action["login"]["detail"]["ip"] == "testclient"
        assert by_action["login.wrong_password"]["target_id"] == username
        assert by_action["login.unknown_account"]["target_id"] == "khong-ai-ten-nay"
        assert by_action["login.disabled"]["target_id"] == locked_name
        assert by_action["login.invalid"]["detail"]["reason"] in ("username_too_long", "stale_form")
        assert {e["detail"]["reason"] for e in entries if e["action"] == "login.invalid"} == {
            "username_too_long", "stale_form"}
        limited = by_action["login.limited"]
        assert limited["detail"]["limit"] == "account" and limited["detail"]["retry_after"] > 0
        assert all(e["detail"]["ip"] == "testclient" for e in entries)
        assert len(entries) == 11  # one entry per decision
        with assistant.store.db.connect() as conn:  # the password is nowhere in the audit log
            rows = conn.execute(select(audit_log.c.actor, audit_log.c.target_id, audit_log.c.detail)
                                .where(audit_log.c.id > since)).all()
        assert rows and not any(wrong in (value or "") or PASSWORD in (value or "") for row in rows for value in row)
    finally:
        _clear_attempts(staff)


def test_a_sign_in_waiting_too_long_for_a_verification_slot_is_refused_as_busy(
        assistant: Assistant, staff: StaffStore, users: dict[str, int]) -> None:
    username = staff.user(users["viewer"])["username"]
    gate = SignInGate(staff, LoginLimits.parse(), concurrency=1, wait_s=0.05)
    since = last_audit_id(assistant)

    async def scenario() -> tuple[Decision, Decision]:
        slots = gate._semaphore()
        await slots.acquire()  # the only slot is taken (another verification is running)
        busy = await gate.attempt(username, PASSWORD, "192.0.2.50")
        slots.release()
        return busy, await gate.attempt(username, PASSWORD, "192.0.2.50")

    try:
        busy, signed_in = asyncio.run(scenario())
        assert busy.outcome == "busy" and busy.retry_after > 0
        assert signed_in.outcome == "success" and signed_in.user["username"] == username
        assert [e["action"] for e in sign_ins(assistant, since)] == ["login.busy", "login"]
        assert [a["success"] for a in attempts(staff, username)] == [True]  # the busy attempt is not counted
        assert gate.peak == 1
    finally:
        _clear_attempts(staff)


def test_the_development_setting_drops_secure(settings: Settings, assistant: Assistant, staff: StaffStore,
                                              users: dict[str, int]) -> None:
    username = staff.user(users["viewer"])["username"]
    dev = settings.model_copy(update={"console_secure_cookies": False})
    with TestClient(create_app(dev, assistant), follow_redirects=False) as client:  # plain http://testserver
        page = client.get("/console/login")
        assert "Secure" not in page.headers["set-cookie"]
        r = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                "csrf_token": csrf_of(page.text)})
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
        assert r.status_code == 303 and "Secure" not in cookie and "HttpOnly" in cookie
        assert client.get("/console").status_code == 200
    _clear_attempts(staff)


def test_a_session_ends_after_its_lifetime_and_when_idle(app: TestClient, staff: StaffStore, as_role) -> None:
    for column, value in (("expires_at", time.time() - 1), ("last_seen_at", time.time() - IDLE_TIMEOUT_S - 1)):
        who = as_role("admin")
        assert app.get("/console/users", headers=who.cookie).status_code == 200
        with staff.db.begin() as conn:
            conn.execute(update(staff_sessions).where(staff_sessions.c.token_hash == hash_token(who.token))
                         .values(**{column: value}))
        r = app.get("/console/users", headers=who.cookie)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        assert f"{COOKIE}=" in r.headers.get("set-cookie", "")  # the stale cookie is removed
        assert staff.session(who.token) is None
        with staff.db.connect() as conn:
            assert not conn.execute(select(staff_sessions).where(
                staff_sessions.c.token_hash == hash_token(who.token))).first()


def test_console_pages_carry_security_headers_and_no_inline_script(app: TestClient, as_role) -> None:
    who = as_role("admin")
    for path in ("/console", "/console/review", "/console/faq", "/console/handoff", "/console/users",
                 "/console/audit", "/console/login"):
        r = app.get(path, headers=who.cookie) if path != "/console/login" else app.get(path)
        assert r.status_code in (200, 303), path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        if r.status_code == 200:
            assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path  # every script is a file
            assert not re.search(r"\sstyle=", r.text), path  # no inline style either (CSP)
            assert not re.search(r"\son[a-z]+=", r.text), path
    assert "content-security-policy" not in app.get("/").headers  # the citizen's chat page is not touched


# ------------------------------------------------------------------------------------------------ review queue


def test_citizen_markup_is_shown_as_text_in_the_review_queue_and_the_ticket(app: TestClient, assistant: Assistant,
                                                                          as_role) -> None:
    session, answer = ask(app, f"{XSS} xin giấy phép bay flycam", "web")
    turn_id = last_turn_id(assistant, session)
    ticket = assistant.store.open_ticket(session, "web", "requested",
                                         [{"role": "user", "text": f"{XSS} xin giấy phép bay flycam"},
                                          {"role": "bot", "text": answer["reply"]}])
    ask(app, f"{XSS} còn nữa", "web", session)  # a later turn, shown after the handover
    who = as_role("viewer")
    for path in ("/console/review", f"/console/review/{turn_id}", f"/console/handoff/{ticket}", "/console/handoff"):
        html = app.get(path, headers=who.cookie).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html, path
    review = app.get("/console/api/review", headers=who.cookie).json()
    assert any(i["id"] == turn_id and i["question"].startswith(XSS) for i in review["items"])


def views(assistant: Assistant, since_id: int) -> list[dict]:
    with assistant.store.db.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.id > since_id, audit_log.c.action == "transcript.view")
                            .order_by(audit_log.c.id)).all()
    return [{**r._mapping, "detail": json.loads(r.detail)} for r in rows]


def test_every_page_showing_a_conversation_is_audited(app: TestClient, assistant: Assistant, staff: StaffStore,
                                                     as_role) -> None:
    session, answer = ask(app, "tôi bị mất sổ hộ khẩu giờ làm sao", "web")
    turn_id = last_turn_id(assistant, session)
    ticket = assistant.store.open_ticket(session, "web", "requested",
                                         [{"role": "user", "text": "tôi bị mất sổ hộ khẩu giờ làm sao"},
                                          {"role": "bot", "text": answer["reply"]}])
    who = as_role("viewer")
    name = staff.session(who.token).username
    since = last_audit_id(assistant)
    for path in (f"/console/review/{turn_id}", f"/console/handoff/{ticket}", "/console/review", "/console/handoff",
                 "/console/api/review"):
        assert app.get(path, headers=who.cookie).status_code == 200, path
    seen = views(assistant, since)
    assert [(v["target_type"], v["target_id"]) for v in seen] == [
        ("turn", str(turn_id)), ("ticket", str(ticket)), ("review_queue", None), ("handoff_queue", None),
        ("review_queue", None)]
    assert all(v["actor"] == name and v["detail"]["ip"] == "testclient" for v in seen)
    assert turn_id in seen[0]["detail"]["turns"]
    assert seen[1]["detail"]["channel"] == "web" and session not in json.dumps(seen)  # a web session id is a key
    assert ticket in seen[3]["detail"]["tickets"]
    # a page that shows no conversation is not a transcript view; a missing one neither
    since = last_audit_id(assistant)
    assert app.get("/console/faq", headers=who.cookie).status_code == 200
    assert app.get(f"/console/handoff/{MISSING_ID}", headers=who.cookie).status_code == 404
    assert views(assistant, since) == []
    admin = as_role("admin")
    page = app.get("/console/audit?action=transcript.view", headers=admin.cookie).text
    assert "Xem hội thoại của công dân" in page and f"ticket {ticket}" in page


def test_the_review_queue_lists_what_needs_a_person(app: TestClient, assistant: Assistant, as_role) -> None:
    declined, _ = ask(app, "dự báo thời tiết Hà Nội ngày mai thế nào", "zalo")
    answered, _ = ask(app, "lệ phí đăng ký khai sinh", "web")
    rated_low, _ = ask(app, "làm lại căn cước ở đâu", "telegram")
    rate(app, rated_low, "telegram", 1)
    phone, _ = ask(app, "gọi cho tôi số 0912 345 678 về việc nuôi chim bồ câu", "web")
    who = as_role("viewer")
    items = app.get("/console/api/review", headers=who.cookie).json()["items"]
    by_id = {i["id"]: i for i in items}
    assert last_turn_id(assistant, declined) in by_id
    assert last_turn_id(assistant, answered) not in by_id  # a plain answer needs nobody
    low = by_id[last_turn_id(assistant, rated_low)]
    assert any("1★" in reason for reason in low["reasons"])
    masked = by_id[last_turn_id(assistant, phone)]["question"]
    assert "0912" not in masked and "[số điện thoại]" in masked
    ids = [i["id"] for i in items]
    assert ids == sorted(ids, reverse=True)  # newest first
    html = app.get("/console/review?channel=zalo", headers=who.cookie).text
    assert "dự báo thời tiết" in html and "nuôi chim bồ câu" not in html
    # a viewer sees the item but no way to resolve it
    page = app.get(f"/console/review/{last_turn_id(assistant, declined)}", headers=who.cookie).text
    assert "chỉ được xem" in page and "/out-of-scope" not in page


def wait_for_reply(client: TestClient, question: str, contains: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, answer = ask(client, question, "web")
        if contains in answer["reply"] or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_resolving_with_a_curated_answer_makes_the_assistant_use_it(app: TestClient, assistant: Assistant,
                                                                     as_role) -> None:
    question = "trung tâm hành chính công có chỗ gửi xe máy miễn phí không"
    session, before = ask(app, question)
    turn_id = last_turn_id(assistant, session)
    editor = as_role("editor")
    page = app.get(f"/console/review/{turn_id}", headers=editor.cookie).text
    assert f">{question}</textarea>" in page  # the variants are prefilled with the question
    # an answer and a procedure both missing: refused with a Vietnamese message, nothing resolved
    r = app.post(f"/console/review/{turn_id}/faq", headers=editor.cookie,
                 data=editor.form(variants=question, answer=""))
    assert r.status_code == 400 and "Cần có câu trả lời, hoặc một thủ tục" in r.text
    answer_text = "Có. Trung tâm có bãi gửi xe máy miễn phí cho người đến làm thủ tục, mở cửa giờ hành chính."
    r = app.post(f"/console/review/{turn_id}/faq", headers=editor.cookie,
                 data=editor.form(variants=question, answer=answer_text))
    assert r.status_code == 303 and r.headers["location"] == "/console/review?ok=faq"
    with assistant.store.db.connect() as conn:
        item = conn.execute(select(review_items).where(review_items.c.turn_id == turn_id)).one()
    assert item.status == "faq" and item.resolved_by.startswith("editor-")
    faq = assistant.faqs.get(item.faq_id)
    assert faq["variants"] == [question] and faq["answer"] == answer_text and faq["source_turn_id"] == turn_id
    assert audited(assistant, "review.faq", turn_id)
    queue = app.get("/console/api/review", headers=editor.cookie).json()["items"]
    assert turn_id not in [i["id"] for i in queue]
    assert answer_text not in before["reply"]
    assert answer_text in wait_for_reply(app, question, answer_text)["reply"]  # live within seconds
    # resolving it again: "already done", no second FAQ
    count = len(assistant.faqs.list())
    r = app.post(f"/console/review/{turn_id}/out-of-scope", headers=editor.cookie, data=editor.form())
    assert r.headers["location"] == "/console/review?ok=already" and len(assistant.faqs.list()) == count


def test_resolving_by_linking_a_procedure_found_by_search(app: TestClient, assistant: Assistant, as_role) -> None:
    question = "con tôi mới sinh ở nhà thì đi khai báo cho cháu thế nào"
    session, _ = ask(app, question)
    turn_id = last_turn_id(assistant, session)
    editor = as_role("editor")
    found = app.get("/console/api/procedures?q=dang ky khai sinh", headers=editor.cookie).json()["items"]
    assert found and all("khai sinh" in p["title"].lower() for p in found)
    code = found[0]["code"]
    page = app.get(f"/console/review/{turn_id}?q=khai+sinh", headers=editor.cookie).text  # the no-script search
    assert f'value="{code}"' in page
    r = app.post(f"/console/review/{turn_id}/link", headers=editor.cookie, data=editor.form(procedure="9.999999"))
    assert r.status_code == 400 and "chọn một thủ tục" in r.text
    r = app.post(f"/console/review/{turn_id}/link", headers=editor.cookie, data=editor.form(procedure=code))
    assert r.headers["location"] == "/console/review?ok=linked"
    with assistant.store.db.connect() as conn:
        item = conn.execute(select(review_items).where(review_items.c.turn_id == turn_id)).one()
    assert item.status == "linked" and item.procedure == code
    faq = assistant.faqs.get(item.faq_id)
    assert faq["variants"] == [question] and faq["procedure"] == code and faq["answer"] is None
    answer = wait_for_reply(app, question, code)
    assert code in answer["reply"] or any(s["id"] == code for s in answer["sources"])
    page = app.get(f"/console/review/{turn_id}", headers=editor.cookie).text
    assert "Đã gắn với thủ tục" in page


def test_marking_out_of_scope(app: TestClient, assistant: Assistant, as_role) -> None:
    session, _ = ask(app, "giá vàng hôm nay bao nhiêu một chỉ")
    turn_id = last_turn_id(assistant, session)
    editor = as_role("editor")
    count = len(assistant.faqs.list(include_retired=True))
    r = app.post(f"/console/review/{turn_id}/out-of-scope", headers=editor.cookie, data=editor.form())
    assert r.headers["location"] == "/console/review?ok=out_of_scope"
    assert len(assistant.faqs.list(include_retired=True)) == count
    assert audited(assistant, "review.out_of_scope", turn_id)
    assert "Đã đánh dấu câu hỏi ngoài phạm vi" in app.get("/console/review?ok=out_of_scope",
                                                          headers=editor.cookie).text


# ------------------------------------------------------------------------------------------------ FAQ


def test_faq_create_edit_retire_restore(app: TestClient, assistant: Assistant, as_role) -> None:
    editor = as_role("editor")
    r = app.post("/console/faq/new", headers=editor.cookie,
                 data=editor.form(variants="giờ làm việc của trung tâm", answer="", procedure="0.000000"))
    assert r.status_code == 400 and "Không có thủ tục mã" in r.text
    r = app.post("/console/faq/new", headers=editor.cookie,
                 data=editor.form(variants="giờ làm việc của trung tâm\ntrung tâm mở cửa mấy giờ",
                                  answer="Sáng 7:30–11:30, chiều 13:30–17:00, từ thứ Hai đến thứ Sáu."))
    assert r.headers["location"] == "/console/faq?ok=faq_created"
    faq = next(f for f in assistant.faqs.list() if "giờ làm việc của trung tâm" in f["variants"])
    assert faq["created_by"].startswith("editor-")
    listing = app.get("/console/faq", headers=as_role("viewer").cookie).text
    assert "trung tâm mở cửa mấy giờ" in listing and f"/console/faq/{faq['id']}/edit" not in listing  # viewer
    edit = app.get(f"/console/faq/{faq['id']}/edit", headers=editor.cookie).text
    assert "Sáng 7:30–11:30" in edit
    r = app.post(f"/console/faq/{faq['id']}/edit", headers=editor.cookie,
                 data=editor.form(variants="giờ làm việc của trung tâm", answer="Sáng 7:00–11:30."))
    assert r.headers["location"] == "/console/faq?ok=faq_saved"
    assert assistant.faqs.get(faq["id"])["answer"] == "Sáng 7:00–11:30."
    app.post(f"/console/faq/{faq['id']}/retire", headers=editor.cookie, data=editor.form())
    assert assistant.faqs.get(faq["id"])["status"] == "retired"
    assert "Sáng 7:00–11:30." in app.get("/console/faq?status=retired", headers=editor.cookie).text
    app.post(f"/console/faq/{faq['id']}/restore", headers=editor.cookie, data=editor.form())
    assert assistant.faqs.get(faq["id"])["status"] == "active"
    assert [e["actor"] for e in audited(assistant, "faq.update", faq["id"])] == [editor_name(assistant, editor)]
    assert audited(assistant, "faq.retire", faq["id"]) and audited(assistant, "faq.restore", faq["id"])
    assert app.get(f"/console/faq/{MISSING_ID}/edit", headers=editor.cookie).status_code == 404


def editor_name(assistant: Assistant, who: Login) -> str:
    return StaffStore(assistant.store.db).session(who.token).username


def test_faq_export_and_all_or_nothing_import(app: TestClient, assistant: Assistant, as_role) -> None:
    editor = as_role("editor")
    r = app.get("/console/faq/export.json", headers=as_role("viewer").cookie)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    exported = r.json()
    assert isinstance(exported, list) and len(exported) == len(assistant.faqs.list(include_retired=True))
    before = len(assistant.faqs.list(include_retired=True))
    bad = [{"variants": ["phí photo hồ sơ"], "answer": "Miễn phí."}, {"answer": "thiếu cách hỏi"}]
    r = app.post("/console/faq/import", headers=editor.cookie, data=editor.form(),
                 files={"file": ("faq.json", json.dumps(bad).encode(), "application/json")})
    assert r.status_code == 400 and "Mục thứ 2 trong tệp: thiếu trường “variants”" in r.text
    assert len(assistant.faqs.list(include_retired=True)) == before  # nothing from the bad file
    r = app.post("/console/faq/import", headers=editor.cookie, data=editor.form(),
                 files={"file": ("faq.json", b"{not json", "application/json")})
    assert r.status_code == 400 and "không phải JSON" in r.text
    good = [{"variants": ["phí photo hồ sơ ở trung tâm"], "answer": "Miễn phí photo 10 trang đầu."},
            {"variants": ["wifi của trung tâm"], "answer": "Mạng TTHCC-Khach, không mật khẩu."}]
    r = app.post("/console/faq/import", headers=editor.cookie, data=editor.form(),
                 files={"file": ("faq.json", json.dumps(good).encode(), "application/json")})
    assert r.headers["location"] == "/console/faq?ok=imported"
    assert len(assistant.faqs.list(include_retired=True)) == before + 2
    # a real import is bigger than a chat message: 150 entries (~100 KB) pass the app's 64 KiB body limit…
    many = [{"variants": [f"câu hỏi nhập số {i} về giờ làm việc của bộ phận tiếp nhận"],
             "answer": "Bộ phận tiếp nhận làm việc từ 7 giờ 30 đến 17 giờ, thứ Hai đến thứ Sáu. " * 6}
            for i in range(150)]
    body = json.dumps(many, ensure_ascii=False).encode()
    assert 64 * 1024 < len(body) < 2 * 1024 * 1024
    r = app.post("/console/faq/import", headers=editor.cookie, data=editor.form(),
                 files={"file": ("faq.json", body, "application/json")})
    assert r.headers.get("location") == "/console/faq?ok=imported", r.text[:300]
    assert len(assistant.faqs.list(include_retired=True)) == before + 152
    # …and a file over the import limit is refused, as is an oversized body on any other route
    r = app.post("/console/faq/import", headers=editor.cookie, data=editor.form(),
                 files={"file": ("faq.json", b"[" + b" " * (3 * 1024 * 1024) + b"]", "application/json")})
    assert r.status_code == 413
    assert app.post("/console/faq/new", headers=editor.cookie, content=b"x" * 70_000).status_code == 413
    with assistant.store.db.begin() as conn:  # keep the shared test database small for later tests
        from sqlalchemy import text as sql

        conn.execute(sql("DELETE FROM faqs WHERE variants LIKE '%câu hỏi nhập số%'"))


# ------------------------------------------------------------------------------------------------ handoff


def test_a_reply_to_a_web_conversation_reaches_the_page_through_api_messages(app: TestClient, assistant: Assistant,
                                                                            as_role) -> None:
    session, _ = ask(app, "cho tôi gặp nhân viên", "web")
    ticket = assistant.store.open_ticket(session, "web", "requested", [{"role": "user", "text": "cho tôi gặp nhân viên"}])
    assert app.get(f"/api/messages?session_id={session}").json() == []
    editor = as_role("editor")
    r = app.post(f"/console/handoff/{ticket}/reply", headers=editor.cookie, data=editor.form(text="   "))
    assert r.status_code == 400 and "nhập nội dung" in r.text
    r = app.post(f"/console/handoff/{ticket}/reply", headers=editor.cookie,
                 data=editor.form(text="Chào bạn, cán bộ Trung tâm đây. Bạn cần hỗ trợ thủ tục nào?"))
    assert r.headers["location"] == f"/console/handoff/{ticket}?ok=reply_web"
    page = app.get(f"/console/handoff/{ticket}", headers=editor.cookie).text
    assert "Chờ công dân mở lại trang trò chuyện" in page
    messages = app.get(f"/api/messages?session_id={session}&after=0")
    assert messages.headers["cache-control"] == "no-store"
    [message] = messages.json()
    assert set(message) == {"id", "text", "author_display", "created_at"}
    assert message["author_display"] == "Nhân viên" and message["text"].startswith("Chào bạn")
    assert app.get(f"/api/messages?session_id={session}&after={message['id']}").json() == []
    assert "Công dân đã nhận trên trang web" in app.get(f"/console/handoff/{ticket}", headers=editor.cookie).text
    # an id the server did not issue (guessed, or another channel's) is refused, not answered with an empty list
    assert app.get(f"/api/messages?session_id={uuid.uuid4()}").status_code == 403
    assert app.get(f"/api/messages?session_id={session[:-1]}x").status_code == 403
    assert app.get("/api/messages").status_code == 422
    link = f'href="/console/handoff/{ticket}"'
    assert link in app.get("/console/handoff", headers=editor.cookie).text
    # the JSON API answers the same way
    r = app.post(f"/console/api/handoff/{ticket}/reply", json={"text": "Bạn còn cần gì nữa không?"},
                 headers={**editor.cookie, "X-CSRF-Token": editor.csrf})
    assert r.status_code == 200 and r.json()["channel"] == "web" and r.json()["error"] is None
    assert len(app.get(f"/api/messages?session_id={session}").json()) == 2
    assert len(audited(assistant, "handoff.reply", ticket)) == 2
    r = app.post(f"/console/handoff/{ticket}/close", headers=editor.cookie, data=editor.form())
    assert r.headers["location"] == "/console/handoff?ok=closed"
    assert link not in app.get("/console/handoff", headers=editor.cookie).text
    assert link in app.get("/console/handoff?status=closed", headers=editor.cookie).text
    assert audited(assistant, "handoff.close", ticket)


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
def test_a_reply_to_a_chat_platform_goes_out_through_the_hub(app: TestClient, assistant: Assistant, as_role,
                                                            tg_peer: TelegramPeer, zalo_peer: ZaloPeer,
                                                            channel: str) -> None:
    user_id = str(700000 + int(time.time() * 1000) % 100000)
    session = f"{channel}:{user_id}"
    ticket = assistant.store.open_ticket(session, channel, "requested", [{"role": "user", "text": "gặp cán bộ"}])
    editor = as_role("editor")
    text = f"Cán bộ Trung tâm trả lời bạn qua {channel}: hồ sơ của bạn đã đủ."
    r = app.post(f"/console/handoff/{ticket}/reply", headers=editor.cookie, data=editor.form(text=text))
    assert r.headers["location"] == f"/console/handoff/{ticket}?ok=replied"
    [row] = [o for o in ChannelStore(assistant.store.db).outbox_rows(channel) if o["user_id"] == user_id]
    if channel == "telegram":
        [sent] = wait_for(lambda: [p for p in tg_peer.of("sendMessage") if str(p["chat_id"]) == user_id],
                          what="the staff reply on Telegram")
        assert sent["text"] == text
    else:
        [sent] = wait_for(lambda: [p for p in zalo_peer.of("send") if p["recipient"]["user_id"] == user_id],
                          what="the staff reply on Zalo")
        assert sent["message"]["text"] == text
    wait_for(lambda: [o for o in ChannelStore(assistant.store.db).outbox_rows(channel)
                      if o["id"] == row["id"] and o["status"] == "sent"], what="the outbox row marked sent")
    assert row["payload"]  # what the adapter sends, queued like any reply
    page = app.get(f"/console/handoff/{ticket}", headers=editor.cookie).text
    assert "Đã gửi tới công dân" in page
    assert app.get(f"/api/messages?session_id={session}").status_code == 403  # a chat platform's id: refused


def test_a_reply_that_cannot_be_sent_is_kept_and_says_why(plain: TestClient, assistant: Assistant,
                                                          as_role) -> None:
    editor = as_role("editor")
    for channel, why in (("zalo", "chưa được cấu hình trên máy chủ này"), ("api", "chỉ được lưu lại")):
        ticket = assistant.store.open_ticket(f"{channel}:{uuid.uuid4().hex[:8]}", channel, "unanswered", [])
        r = plain.post(f"/console/handoff/{ticket}/reply", headers=editor.cookie,
                       data=editor.form(text="Cán bộ sẽ gọi lại cho bạn."))
        assert r.headers["location"] == f"/console/handoff/{ticket}?ok=reply_stored"
        page = plain.get(r.headers["location"], headers=editor.cookie).text
        assert "CHƯA gửi được" in page and why in page


# ------------------------------------------------------------------------------------------------ accounts, audit


def test_console_forms_are_bounded_before_any_work(app: TestClient, assistant: Assistant, settings: Settings,
                                                  as_role) -> None:
    editor, admin = as_role("editor"), as_role("admin")
    limit = settings.max_input_chars
    faqs_before = len(assistant.faqs.list(include_retired=True))
    # an FAQ answer over its bound (4000: longer than a chat message, documented), the wordings box, the code
    r = app.post("/console/faq/new", headers=editor.cookie, data=editor.form(
        variants="lệ phí cấp lại căn cước là bao nhiêu", answer="Lệ phí 30.000 đồng. " * 300))
    assert r.status_code == 400 and "Câu trả lời dài quá 4.000 ký tự (bạn đã nhập 6.000)" in r.text
    assert r.text.count("Lệ phí 30.000 đồng.") <= 4000 // 19 + 1  # shown again cut to the bound, not echoed whole
    r = app.post("/console/faq/new", headers=editor.cookie, data=editor.form(
        variants="đăng ký khai sinh cho con\n" * 1000, answer="Nộp tại UBND cấp xã."))
    assert r.status_code == 400 and "Phần cách hỏi dài quá" in r.text
    r = app.post("/console/faq/new", headers=editor.cookie, data=editor.form(
        variants="đăng ký khai sinh", procedure="1." * 40))
    assert r.status_code == 400 and "Mã thủ tục dài quá 32 ký tự" in r.text
    assert len(assistant.faqs.list(include_retired=True)) == faqs_before  # nothing was created
    # an answer of exactly 4000 characters, with Windows line breaks (a browser's), is accepted
    answer = "\r\n".join(["Nộp hồ sơ tại bộ phận một cửa của UBND cấp xã."] * 80)
    answer += "." * (4000 - (len(answer) - answer.count("\r\n")))
    r = app.post("/console/faq/new", headers=editor.cookie, data=editor.form(
        variants="nộp hồ sơ khai sinh ở đâu vậy", answer=answer))
    assert r.status_code == 303, r.text[-500:]
    # a reply to a citizen: settings.max_input_chars, on the page and in the JSON API
    session, _ = ask(app, "cho tôi gặp cán bộ", "web")
    ticket = assistant.store.open_ticket(session, "web", "requested", [{"role": "user", "text": "cho tôi gặp cán bộ"}])
    r = app.post(f"/console/handoff/{ticket}/reply", headers=editor.cookie, data=editor.form(text="ạ" * (limit + 1)))
    assert r.status_code == 400 and f"Câu trả lời dài quá {limit:,} ký tự".replace(",", ".") in r.text
    r = app.post(f"/console/api/handoff/{ticket}/reply", json={"text": "ạ" * (limit + 1)},
                 headers={**editor.cookie, "X-CSRF-Token": editor.csrf})
    assert r.status_code == 400 and "dài quá" in r.json()["detail"]
    assert app.get(f"/api/messages?session_id={session}").json() == []  # nothing stored or sent
    r = app.post(f"/console/api/handoff/{ticket}/reply", json={"text": "ạ" * limit},
                 headers={**editor.cookie, "X-CSRF-Token": editor.csrf})
    assert r.status_code == 200
    # account names and passwords
    r = app.post("/console/users", headers=admin.cookie, data=admin.form(
        username="a" * 65, role="viewer", password=PASSWORD, password2=PASSWORD))
    assert r.status_code == 400 and "Tên đăng nhập dài quá 64 ký tự" in r.text
    r = app.post("/console/users", headers=admin.cookie, data=admin.form(
        username="nguoi-moi", role="viewer", password="x" * 1025, password2="x" * 1025))
    assert r.status_code == 400 and "Mật khẩu dài quá 1.024 ký tự" in r.text
    token = csrf_of(app.get("/console/login").text)
    r = app.post("/console/login", data={"username": "quantri", "password": "p" * 1025, "csrf_token": token})
    assert r.status_code == 400 and "Mật khẩu dài quá 1024 ký tự" in r.text
    # search boxes and filters are cut, never a failure; a page number of thousands of digits too
    for path in (f"/console/api/procedures?q={'khai sinh ' * 2000}", f"/console/faq/new?q={'căn cước ' * 2000}",
                 f"/console/review?channel={'web' * 3000}&page={'9' * 5000}",
                 f"/console/audit?actor={'x' * 5000}&action={'y' * 5000}"):
        who = admin if path.startswith("/console/audit") else editor
        assert app.get(path, headers=who.cookie).status_code == 200, path[:40]
    page = app.get(f"/console/faq/new?q={'căn cước ' * 2000}", headers=editor.cookie).text
    assert 'maxlength="200"' in page and f'value="{("căn cước " * 2000)[:200]}"' in page


def test_an_admin_manages_accounts(app: TestClient, staff: StaffStore, as_role) -> None:
    admin = as_role("admin")
    name = f"canbo-{uuid.uuid4().hex[:6]}"
    r = app.post("/console/users", headers=admin.cookie,
                 data=admin.form(username=name, role="editor", password=PASSWORD, password2=PASSWORD + "x"))
    assert r.status_code == 400 and "không khớp" in r.text
    r = app.post("/console/users", headers=admin.cookie,
                 data=admin.form(username=name, role="editor", password="ngan", password2="ngan"))
    assert r.status_code == 400 and "ít nhất 10 ký tự" in r.text
    r = app.post("/console/users", headers=admin.cookie,
                 data=admin.form(username=name, role="editor", password=PASSWORD, password2=PASSWORD))
    assert r.headers["location"] == "/console/users?ok=user_created"
    r = app.post("/console/users", headers=admin.cookie,
                 data=admin.form(username=name, role="viewer", password=PASSWORD, password2=PASSWORD))
    assert r.status_code == 400 and "đã có" in r.text
    user_id = staff.user_id(name)
    assert staff.authenticate(name, PASSWORD, "198.51.100.1")["role"] == "editor"
    app.post(f"/console/users/{user_id}/role", headers=admin.cookie, data=admin.form(role="viewer"))
    assert staff.user(user_id)["role"] == "viewer"
    theirs = Login(staff, user_id)
    app.post(f"/console/users/{user_id}/active", headers=admin.cookie, data=admin.form(active="0"))
    assert not staff.user(user_id)["active"]
    assert app.get("/console", headers=theirs.cookie).status_code == 303  # signed out at once
    assert staff.authenticate(name, PASSWORD, "198.51.100.1") is None
    app.post(f"/console/users/{user_id}/active", headers=admin.cookie, data=admin.form(active="1"))
    assert staff.user(user_id)["active"]
    audit = app.get(f"/console/audit?actor={staff.session(admin.token).username}", headers=admin.cookie).text
    for label in ("Tạo tài khoản", "Đổi vai trò", "Khóa tài khoản", "Mở khóa tài khoản"):
        assert label in audit


def test_the_last_active_admin_cannot_be_demoted_or_disabled(tmp_path) -> None:
    from bot.conversation import ConversationStore

    store = StaffStore(ConversationStore(f"sqlite:///{tmp_path / 'a.db'}").db)
    only = store.create_user("quantri", PASSWORD, "admin", "test")
    for change in (lambda: store.set_role(only, "editor", "test"), lambda: store.set_active(only, False, "test")):
        with pytest.raises(ValueError, match="quản trị viên duy nhất"):
            change()
    second = store.create_user("quantri2", PASSWORD, "admin", "test")
    store.set_role(only, "viewer", "test")
    with pytest.raises(ValueError):
        store.set_active(second, False, "test")


# ------------------------------------------------------------------------------------------------ dashboard


def test_the_dashboard_compares_the_figures_with_the_targets(app: TestClient, assistant: Assistant, as_role) -> None:
    for text, channel, score in (("lệ phí đăng ký kết hôn", "web", 5), ("làm lại căn cước ở đâu", "zalo", 4),
                                 ("thủ tục nhập hộ khẩu cho con", "telegram", 2)):
        session, _ = ask(app, text, channel)
        rate(app, session, channel, score)
    viewer = as_role("viewer")
    html = app.get("/console", headers=viewer.cookie).text
    for expected in ("Tỷ lệ hài lòng (CSAT)", "Mục tiêu 2025 ≥ 90 %", "Mục tiêu 2030 ≥ 95 %", "Tổng đài 1022: 66,3 %",
                     "Tỷ lệ giải quyết", "Theo kênh", "Thủ tục được hỏi nhiều nhất",
                     "Câu hỏi chưa trả lời được nhiều nhất", "Telegram", "Zalo"):
        assert expected in html, expected
    assert html.count('<svg class="chart"') == 2 and "<title" in html
    assert "Có dữ liệu mô phỏng" not in html
    week = app.get("/console?period=week&channel=zalo", headers=viewer.cookie)
    assert week.status_code == 200 and re.search(r"W\d\d", week.text)
    assert app.get("/console?start=2026-02-01&end=2026-01-01", headers=viewer.cookie).status_code == 400

    csv_export = app.get("/console/export.csv?period=day", headers=viewer.cookie)
    assert csv_export.status_code == 200 and csv_export.headers["content-type"].startswith("text/csv")
    assert csv_export.text.startswith("\ufeffscope,period,conversations")
    report = app.get("/console/export.json?channel=web", headers=viewer.cookie).json()
    assert report["channel"] == "web" and report["targets"]["csat_2025"] == 0.9 and "summary" in report
    assert app.get("/console/api/kpis", headers=viewer.cookie).json()["summary"]["conversations"] >= 3
    assert audited(assistant, "kpi.export", "None") == []  # exports have no target id …
    with assistant.store.db.connect() as conn:  # … but are in the log
        assert conn.execute(select(func.count()).select_from(audit_log)
                            .where(audit_log.c.action == "kpi.export")).scalar_one() >= 2


def test_the_dashboard_says_when_simulated_data_is_included(app: TestClient, assistant: Assistant, as_role) -> None:
    session, _ = ask(app, "đăng ký thường trú cần giấy tờ gì", "web")
    with assistant.store.db.begin() as conn:
        conn.execute(update(conversations).where(conversations.c.session_id == session).values(simulated=True))
        conn.execute(update(turns).where(turns.c.session_id == session).values(simulated=True))
    try:
        viewer = as_role("viewer")
        assert "Có dữ liệu mô phỏng" in app.get("/console", headers=viewer.cookie).text
        assert "Có dữ liệu mô phỏng" not in app.get("/console?simulated=exclude", headers=viewer.cookie).text
    finally:
        with assistant.store.db.begin() as conn:
            conn.execute(update(conversations).where(conversations.c.session_id == session).values(simulated=False))
            conn.execute(update(turns).where(turns.c.session_id == session).values(simulated=False))


# ------------------------------------------------------------------------------------------------ CLI


def test_the_staff_command_works_on_a_fresh_machine(env_for: dict[str, str], tmp_path) -> None:
    env = {**env_for, "VNA_DATA_DIR": str(tmp_path / "fresh")}  # no database, no index

    def staff(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "staff", *args], input=stdin, env=env, text=True,
                              capture_output=True, timeout=120)

    r = staff("add", "QuanTri", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "Đã tạo tài khoản quantri (admin)" in r.stdout
    assert staff("add", "canbo1", "--role", "editor", "--password-stdin", stdin="ngan\n").returncode == 1
    assert staff("add", "canbo1", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    r = staff("list")
    assert re.search(r"canbo1\s+editor\s+active", r.stdout) and re.search(r"quantri\s+admin\s+active", r.stdout)
    assert staff("disable", "canbo1").returncode == 0
    assert re.search(r"canbo1\s+editor\s+disabled", staff("list").stdout)
    r = staff("set-password", "canbo1", "--password-stdin", stdin="một mật khẩu mới rất dài\n")
    assert r.returncode == 0
    r = staff("disable", "khong-co-ai")
    assert r.returncode == 1 and "Không có tài khoản" in r.stderr
    assert not (tmp_path / "fresh" / "index").exists()  # the index was never built
    from bot.conversation import ConversationStore

    store = StaffStore(ConversationStore(f"sqlite:///{tmp_path / 'fresh' / 'assistant.db'}").db)
    assert store.authenticate("canbo1", "một mật khẩu mới rất dài", "127.0.0.1") is None  # still disabled
    store.set_active(store.user_id("canbo1"), True, "test")
    assert store.authenticate("canbo1", "một mật khẩu mới rất dài", "127.0.0.1") is not None
