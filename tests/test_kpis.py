"""KPIs from recorded conversations (docs/kpis.md), personal-data masking, /metrics and the demo data.

The KPI tests write a small, known history through the same store the assistant uses and check every figure
against its formula, on SQLite and on the local PostgreSQL service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from bot.api import create_app
from bot.config import Settings
from bot.conversation import ConversationStore
from bot.domain import ConversationState, Reply, Source
from bot.kpis import bucket_of, compute_kpis, kpis_csv, question_key
from bot.privacy import mask
from bot.schema import conversations, handoff_tickets, ratings, turns
from bot.service import Assistant
from tests.services import pg_schema

DAY = 86400
T0 = 1_763_856_000.0  # 2025-11-23 00:00 UTC = 07:00 in Vietnam


def reply(question: str, outcome: str, fallback: bool = False, procedure: str | None = None) -> Reply:
    sources = [Source(procedure, "procedure", "Thủ tục", "https://dichvucong.gov.vn/x", 1.0)] if procedure else []
    return Reply(question, "…", "ask_documents", fallback, sources, ["documents"], outcome=outcome)


def history(store: ConversationStore) -> None:
    """Five conversations on two days and two channels:

    a (web, day 1): answered, answered, rated 5            → resolved, satisfied
    b (web, day 1): answered, declined, rated 2            → not resolved (a decline), not satisfied
    c (zalo, day 1): unknown, handoff ticket, rated 4 then 1 → not resolved, handoff, last rating 1
    d (zalo, day 2): answered, not rated                   → resolved
    e (zalo, day 2): small talk only (greeting)            → not resolved, contained, no service turn
    """
    def turn(session: str, channel: str, r: Reply, latency: float, procedure: str | None = None) -> None:
        store.record(session, channel, r, ConversationState(procedure=procedure), latency, procedure=procedure)

    turn("a", "web", reply("giấy tờ làm căn cước", "answered", procedure="1.1"), 40, "1.1")
    turn("a", "web", reply("lệ phí bao nhiêu", "answered", procedure="1.1"), 60, "1.1")
    turn("b", "web", reply("đăng ký khai sinh", "answered", procedure="2.2"), 80, "2.2")
    turn("b", "web", reply("thời tiết hôm nay", "declined", fallback=True), 20)
    turn("c", "zalo", reply("Xin giấy phép bay flycam?", "unknown", fallback=True), 100)
    store.open_ticket("c", "zalo", "unanswered", [{"role": "user", "text": "xin giấy phép bay flycam"}])
    turn("d", "zalo", reply("giấy tờ làm căn cước", "answered", procedure="1.1"), 50, "1.1")
    turn("e", "zalo", reply("xin chào", "small_talk"), 10)
    store.rate("a", "web", 5)
    store.rate("b", "web", 2)
    store.rate("c", "zalo", 4)
    store.rate("c", "zalo", 1)
    with store.db.begin() as conn:  # put the conversations on two days
        for table in (conversations, turns, ratings, handoff_tickets):
            conn.execute(update(table).where(table.c.session_id.in_(["a", "b", "c"])).values(created_at=T0 + 3600))
            conn.execute(update(table).where(table.c.session_id.in_(["d", "e"])).values(created_at=T0 + DAY + 3600))


def check(db) -> None:
    report = compute_kpis(db, start=T0, end=T0 + 2 * DAY, titles=lambda c: {"1.1": "Cấp căn cước"}.get(c))
    s = report["summary"]
    assert s["conversations"] == 5 and s["turns"] == 7 and s["rated_conversations"] == 3
    assert s["csat"] == pytest.approx(1 / 3)  # last ratings 5, 2, 1
    assert s["resolution_rate"] == pytest.approx(2 / 5)  # a and d
    assert s["containment"] == pytest.approx(4 / 5) and s["handoff_rate"] == pytest.approx(1 / 5)
    assert s["fallback_rate"] == pytest.approx(2 / 6)  # 6 service turns (the greeting is not one)
    # latencies 10 20 40 50 60 80 100: median 50; p95 interpolated between 80 and 100
    assert s["latency_p50_ms"] == pytest.approx(50) and s["latency_p95_ms"] == pytest.approx(94)
    assert s["conversations_per_day"] == pytest.approx(2.5)
    assert [p["period"] for p in report["series"]] == ["2025-11-23", "2025-11-24"]
    assert [p["conversations"] for p in report["series"]] == [3, 2]
    assert report["series"][1]["resolution_rate"] == pytest.approx(1 / 2)
    assert report["by_channel"]["web"]["conversations"] == 2 and report["by_channel"]["zalo"]["csat"] == 0.0
    assert report["top_procedures"][0] == {"procedure": "1.1", "title": "Cấp căn cước", "turns": 3}
    assert {u["question"] for u in report["top_unanswered"]} == {"Xin giấy phép bay flycam?", "thời tiết hôm nay"}
    assert report["targets"]["csat_2025"] == 0.90 and report["targets"]["hotline_resolution"] == 0.663

    zalo = compute_kpis(db, start=T0, end=T0 + 2 * DAY, channel="zalo", period="month")
    assert zalo["summary"]["conversations"] == 3 and [p["period"] for p in zalo["series"]] == ["2025-11"]
    rows = kpis_csv(report).splitlines()
    assert rows[0].startswith("scope,period,conversations") and len(rows) == 1 + 2 + 1 + 2


def test_kpis_follow_their_formulas_on_sqlite(tmp_path) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path / 'kpi.db'}")
    history(store)
    check(store.db)


def test_csat_counts_citizens_not_rating_requests(tmp_path) -> None:
    """Thirty one-star ratings of one conversation are one dissatisfied citizen; ratings of conversations that
    do not exist, or that got no reply, are refused and count for nothing."""
    store = ConversationStore(f"sqlite:///{tmp_path / 'csat.db'}")
    for session in ("hai-long-1", "hai-long-2", "khong-hai-long"):
        store.record(session, "web", reply("làm lại căn cước ở đâu", "answered", procedure="1.1"),
                     ConversationState(procedure="1.1"), 40, procedure="1.1")
    store.rate("hai-long-1", "web", 5)
    store.rate("hai-long-2", "web", 4)
    results = [store.rate("khong-hai-long", "web", 1) for _ in range(30)]
    assert results[0] == "stored" and set(results[1:]) == {"replaced"}
    assert store.rate("khong-co-that", "web", 1) == "unknown"
    assert store.rate("hai-long-1", "zalo", 1) == "unknown"  # another channel cannot rate it
    with store.db.begin() as conn:
        conn.execute(conversations.insert().values(session_id="chua-tra-loi", channel="web", state="{}",
                                                   created_at=T0, updated_at=T0))
    assert store.rate("chua-tra-loi", "web", 1) == "unanswered"
    summary = compute_kpis(store.db)["summary"]
    assert summary["rated_conversations"] == 3 and summary["csat"] == pytest.approx(2 / 3)
    assert len(store.rating_list()) == 3


def test_kpis_on_postgresql() -> None:
    with pg_schema() as url:
        store = ConversationStore(url)
        history(store)
        check(store.db)
        store.db.dispose()


def test_periods_are_vietnam_days_weeks_and_months() -> None:
    assert bucket_of(T0 - 1, "day") == "2025-11-23"  # 06:59:59 in Vietnam, still 22 Nov in UTC
    assert bucket_of(T0, "week") == "2025-W47" and bucket_of(T0, "month") == "2025-11"
    with pytest.raises(ValueError):
        bucket_of(T0, "year")
    assert question_key("Xin giấy phép  bay Flycam?") == question_key("xin giay phep bay flycam")


@pytest.mark.parametrize("raw,masked", [
    ("số điện thoại 0912 345 678, gọi lại giúp", "số điện thoại [số điện thoại], gọi lại giúp"),
    ("liên hệ +84 912345678", "liên hệ [số điện thoại]"),
    ("CCCD 001203004567 bị mất", "CCCD [số giấy tờ] bị mất"),
    ("cmnd 123456789", "cmnd [số giấy tờ]"),
    ("gửi vào lan.nguyen@gmail.com nhé", "gửi vào [email] nhé"),
    ("tôi ở số 12 đường Lê Lợi, phường Bến Nghé", "tôi ở [địa chỉ], phường Bến Nghé"),
    ("địa chỉ 45 Trần Phú, Hà Đông", "địa chỉ [địa chỉ], Hà Đông"),
    ("ngõ 40 phố Huế", "ngõ [địa chỉ]"),
    # what is not personal stays
    ("lệ phí 200.000 đồng, mã 1.001193", "lệ phí 200.000 đồng, mã 1.001193"),
    ("con tôi sinh năm 2025, 2 tuổi", "con tôi sinh năm 2025, 2 tuổi"),
    ("làm lại căn cước ở phường 3 quận 10", "làm lại căn cước ở phường 3 quận 10"),
    # dates are not house numbers; a slash number before a street still is
    ("tới tháng 5/2023 tỷ lệ dịch vụ công trực tuyến là bao nhiêu", "tới tháng 5/2023 tỷ lệ dịch vụ công trực tuyến là bao nhiêu"),
    ("ngày 25/3 nộp hồ sơ được không", "ngày 25/3 nộp hồ sơ được không"),
    ("hạn chót 31/12/2024 nộp thuế", "hạn chót 31/12/2024 nộp thuế"),
    ("nhà tôi ở 25/3 Nguyễn Trãi quận 1", "nhà tôi ở [địa chỉ]"),
    ("tôi chuyển đến 25/3 Lê Lợi, cần đăng ký tạm trú", "tôi chuyển đến [địa chỉ], cần đăng ký tạm trú"),
])
def test_personal_data_is_masked(raw: str, masked: str) -> None:
    assert mask(raw) == masked
    assert mask(masked) == masked  # idempotent


def test_masking_happens_before_anything_is_stored(client: TestClient, assistant: Assistant) -> None:
    r = client.post("/api/chat", json={"session_id": "pii-1", "text": "làm lại cccd ở đâu, sđt tôi 0987654321"})
    assert r.status_code == 200 and "0987654321" not in r.json()["question"]
    [stored] = assistant.store.history("pii-1")
    assert "0987654321" not in stored["question"] and "[số điện thoại]" in stored["question"]
    number = assistant.store.open_ticket("pii-1", "api", "requested", [{"role": "user", "text": "gọi 0912345678"}])
    [ticket] = [t for t in assistant.store.ticket_list("pii-1") if t["id"] == number]
    assert ticket["transcript"] == [{"role": "user", "text": "gọi [số điện thoại]"}]


def test_turns_record_procedure_aspect_and_channel(client: TestClient, assistant: Assistant) -> None:
    session = client.post("/api/session").json()["session_id"]  # the web chat's signed session id
    client.post("/api/chat", json={"session_id": session, "text": "lệ phí đăng ký kết hôn", "channel": "web"})
    with assistant.store.db.connect() as conn:
        row = conn.execute(text("SELECT channel, procedure, aspect, outcome, simulated FROM turns "
                                "WHERE session_id = :s"), {"s": session}).one()
    assert row.channel == "web" and row.procedure and row.aspect == "fee" and row.outcome == "answered"
    assert row.simulated in (False, 0)


@pytest.fixture()
def loopback_client(settings: Settings, assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(settings, assistant), client=("127.0.0.1", 50000)) as c:
        yield c


def test_metrics_for_operators(client: TestClient, loopback_client: TestClient, settings: Settings,
                               assistant: Assistant) -> None:
    session = loopback_client.post("/api/session").json()["session_id"]
    loopback_client.post("/api/chat", json={"session_id": session, "text": "làm lại cccd ở đâu", "channel": "web"})
    body = loopback_client.get("/metrics").text
    assert "vna_turn_latency_seconds_bucket" in body and 'vna_turns{channel="web",outcome="answered"}' in body
    assert client.get("/metrics").status_code == 403  # not loopback, no token configured
    with TestClient(create_app(settings.model_copy(update={"metrics_token": __import__("pydantic").SecretStr("t0k")}),
                               assistant)) as remote:
        assert remote.get("/metrics").status_code == 401
        assert remote.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert remote.get("/metrics", headers={"Authorization": "Bearer t0k"}).status_code == 200
    loopback_client.post("/api/chat", json={"session_id": "m-2", "text": "x", "channel": "<script>" * 4})
    assert "<script>" not in loopback_client.get("/metrics").text  # unknown channels are "other"


def test_demo_data_is_marked_and_removable(settings: Settings, assistant: Assistant, monkeypatch) -> None:
    from bot import demo

    monkeypatch.setattr(demo, "_questions", lambda: ["làm lại cccd ở đâu", "thời tiết hôm nay thế nào",
                                                      "lệ phí đăng ký kết hôn", "giá vàng hôm nay"])
    before = compute_kpis(assistant.store.db, include_simulated=False)["summary"]["conversations"]
    counts = demo.replay(assistant, days=3, seed=1, progress=False)
    assert counts["conversations"] == 4
    with_demo = compute_kpis(assistant.store.db)
    assert with_demo["has_simulated"] and with_demo["summary"]["conversations"] >= before + 4
    assert compute_kpis(assistant.store.db, include_simulated=False)["summary"]["conversations"] == before
    removed = demo.remove(settings, assistant.store.db)
    assert removed["conversations"] >= 4 and removed["turns"] >= 4  # other tests' demo rows go too
    assert not compute_kpis(assistant.store.db)["has_simulated"]
