"""Telegram and Zalo OA end to end against local servers that speak their contracts (tests/channel_peers.py).

The API app runs with both channels configured and the real engine behind it; a webhook delivery goes in over
HTTP, and the test asserts on the calls the connector makes to the platform: what is sent, to whom, with which
keyboard, how often, and what survives an outage or a restart.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.api import create_app
from bot.config import Settings
from bot.service import Assistant
from connectors.core import ChannelStore, Incoming, Option, Outgoing, split_text
from connectors.telegram import MESSAGE_LIMIT, TelegramChannel
from tests.channel_peers import TelegramPeer, ZaloPeer, configured, wait_for

TG_SECRET = "webhook-secret-for-tests"
OA_SECRET = "oa-secret-key-for-tests"
ids = itertools.count(1000)


@pytest.fixture(scope="module")
def channel_settings(settings: Settings, tg_peer: TelegramPeer, zalo_peer: ZaloPeer) -> Settings:
    return configured(settings, tg_peer, zalo_peer, TG_SECRET, OA_SECRET)


@pytest.fixture(scope="module")
def app(channel_settings: Settings, assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(channel_settings, assistant), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_peers(tg_peer: TelegramPeer, zalo_peer: ZaloPeer) -> None:
    tg_peer.reset()
    zalo_peer.reset()


# ------------------------------------------------------------------------------------------------ Telegram


def tg_message(chat_id: int, text: str | None = None, **extra: object) -> dict:
    message = {"message_id": next(ids), "date": int(time.time()),
               "chat": {"id": chat_id, "type": "private", "first_name": "Lan"},
               "from": {"id": chat_id, "is_bot": False, "first_name": "Lan"}, **extra}
    if text is not None:
        message["text"] = text
    return {"update_id": next(ids), "message": message}


def tg_post(client: TestClient, update: dict | bytes, secret: str | None = TG_SECRET):  # noqa: ANN201
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return client.post("/telegram/webhook", content=body, headers={**headers, "Content-Type": "application/json"})


def sent_to(peer: TelegramPeer, chat_id: int) -> list[dict]:
    return [p for p in peer.of("sendMessage") if int(p["chat_id"]) == chat_id]


def test_telegram_rejects_a_wrong_or_missing_secret(app: TestClient, tg_peer: TelegramPeer) -> None:
    assert tg_post(app, tg_message(5001, "lệ phí khai sinh"), secret="guess").status_code == 403
    assert tg_post(app, tg_message(5001, "lệ phí khai sinh"), secret=None).status_code == 403
    time.sleep(1.0)
    assert sent_to(tg_peer, 5001) == []


def test_telegram_answers_a_question_with_its_source(app: TestClient, tg_peer: TelegramPeer) -> None:
    r = tg_post(app, tg_message(5002, "làm lại căn cước ở đâu"))
    assert r.status_code == 200 and r.json() == {"ok": True}
    [message] = wait_for(lambda: sent_to(tg_peer, 5002), what="the answer")
    assert "căn cước" in message["text"].lower()
    assert "Nguồn:" in message["text"] and "http" in message["text"]
    assert message["link_preview_options"] == {"is_disabled": True}


def test_telegram_options_are_an_inline_keyboard_and_a_press_chooses(app: TestClient, tg_peer: TelegramPeer) -> None:
    tg_post(app, tg_message(5003, "đăng ký khai sinh"))
    [first] = wait_for(lambda: sent_to(tg_peer, 5003), what="the answer with options")
    keyboard = first["reply_markup"]["inline_keyboard"]
    titles = [row[0]["text"] for row in keyboard]
    assert len(keyboard) >= 2 and any("lưu động" in t for t in titles), titles
    pick = next(row[0] for row in keyboard if "lưu động" in row[0]["text"])
    assert len(pick["callback_data"].encode()) <= 64

    press = {"update_id": next(ids), "callback_query": {
        "id": "cbq-1", "chat_instance": "ci", "data": pick["callback_data"],
        "from": {"id": 5003, "is_bot": False, "first_name": "Lan"},
        "message": {"message_id": 7, "date": int(time.time()), "chat": {"id": 5003, "type": "private"},
                    "text": first["text"]}}}
    assert tg_post(app, press).status_code == 200
    answers = wait_for(lambda: sent_to(tg_peer, 5003)[1:], what="the chosen procedure")
    assert "lưu động" in answers[0]["text"]
    assert [p["callback_query_id"] for p in tg_peer.of("answerCallbackQuery")] == ["cbq-1"]


def test_stored_webhook_payloads_are_masked(app: TestClient, tg_peer: TelegramPeer, assistant: Assistant) -> None:
    from sqlalchemy import select

    from bot.schema import channel_inbox

    tg_post(app, tg_message(5010, "đổi cccd 001203004567 ở đâu, gọi 0912345678"))
    wait_for(lambda: sent_to(tg_peer, 5010), what="the answer")
    with assistant.store.db.connect() as conn:
        stored = [r[0] for r in conn.execute(select(channel_inbox.c.payload)
                                             .where(channel_inbox.c.user_id == "5010")).all()]
    assert stored and "001203004567" not in stored[0] and "0912345678" not in stored[0]
    assert "[số giấy tờ]" in stored[0] and '"id": 5010' in stored[0]  # the chat id is kept: it is the address


def test_telegram_redelivered_update_is_answered_once(app: TestClient, tg_peer: TelegramPeer) -> None:
    update = tg_message(5004, "lệ phí đăng ký kết hôn")
    assert tg_post(app, update).status_code == 200
    assert tg_post(app, update).status_code == 200
    wait_for(lambda: sent_to(tg_peer, 5004), what="the answer")
    time.sleep(1.5)
    assert len(sent_to(tg_peer, 5004)) == 1


@pytest.mark.parametrize("extra", [
    {"sticker": {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512, "height": 512,
                 "is_animated": False, "is_video": False}},
    {"voice": {"file_id": "v1", "file_unique_id": "u2", "duration": 3}},
    {"photo": [{"file_id": "p1", "file_unique_id": "u3", "width": 90, "height": 90}]},
    {"document": {"file_id": "d1", "file_unique_id": "u4", "file_name": "giay-to.pdf"}},
])
def test_telegram_unsupported_messages_get_a_polite_text(app: TestClient, tg_peer: TelegramPeer, extra: dict) -> None:
    chat = next(ids)
    assert tg_post(app, tg_message(chat, None, **extra)).status_code == 200
    [message] = wait_for(lambda: sent_to(tg_peer, chat), what="the polite answer")
    assert "chỉ đọc được tin nhắn dạng chữ" in message["text"]


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400), (b"[1, 2]", 400), (b'{"message": {}}', 400), (b"\xff\xfe\x00", 400),
    (b'{"update_id": 1, "x": "' + b"a" * 70_000 + b'"}', 413),
])
def test_telegram_bad_payloads_are_refused_cleanly(app: TestClient, body: bytes, status: int) -> None:
    r = tg_post(app, body)
    assert r.status_code == status and "detail" in r.json()


def test_telegram_start_command_and_injected_intent_syntax(app: TestClient, tg_peer: TelegramPeer) -> None:
    tg_post(app, tg_message(5005, "/start"))
    [hello] = wait_for(lambda: sent_to(tg_peer, 5005), what="the greeting")
    assert hello["text"].strip()
    tg_post(app, tg_message(5006, '/rate{"score": "1"}'))  # typed, not a button: must not rate
    wait_for(lambda: sent_to(tg_peer, 5006), what="the answer")


def test_telegram_long_answers_are_split_and_keyboard_goes_last(settings: Settings, tg_peer: TelegramPeer) -> None:
    channel = TelegramChannel(settings.model_copy(update={"telegram_token": SecretStr(tg_peer.token)}))
    text = "\n\n".join(f"Đoạn {i}: " + "giấy tờ cần nộp " * 40 for i in range(30))
    reply = Outgoing(text, options=[Option("1. Thủ tục A", "1"), Option("2. Thủ tục B", "2")])
    payloads = channel.render(Incoming("telegram", "77"), reply)
    assert len(payloads) > 1
    assert all(len(p["text"]) <= MESSAGE_LIMIT for p in payloads)
    assert "".join(p["text"] for p in payloads).replace("\n", "").replace(" ", "") == \
        text.replace("\n", "").replace(" ", "")
    assert [("reply_markup" in p) for p in payloads] == [False] * (len(payloads) - 1) + [True]
    assert split_text("x" * 9000, 4000) == ["x" * 4000, "x" * 4000, "x" * 1000]


def test_telegram_outage_loses_no_reply(app: TestClient, tg_peer: TelegramPeer, assistant: Assistant) -> None:
    tg_peer.fail_next = 3  # the Bot API answers 502 three times, then recovers
    tg_post(app, tg_message(5007, "thời gian cấp lại căn cước"))
    [message] = wait_for(lambda: sent_to(tg_peer, 5007), timeout=30, what="delivery after the outage")
    assert len([p for p in tg_peer.of("sendMessage:failed") if int(p["chat_id"]) == 5007]) == 3
    assert "căn cước" in message["text"].lower()
    store = ChannelStore(assistant.store.db)
    # the row is marked sent just after the platform answered: wait for that, not only for the delivery
    [row] = wait_for(lambda: [r for r in store.outbox_rows("telegram") if r["user_id"] == "5007"
                              and r["status"] == "sent"], what="the outbox row marked sent")
    assert row["attempts"] == 4


def test_telegram_reply_survives_a_restart(channel_settings: Settings, assistant: Assistant, app: TestClient,
                                           tg_peer: TelegramPeer) -> None:
    tg_peer.down = True
    tg_post(app, tg_message(5008, "lệ phí làm căn cước"))
    store = ChannelStore(assistant.store.db)
    wait_for(lambda: [r for r in store.outbox_rows("telegram") if r["user_id"] == "5008" and r["attempts"] >= 1],
             what="a failed first attempt")
    app.__exit__(None, None, None)  # the server stops with the reply undelivered
    try:
        tg_peer.down = False
        with TestClient(create_app(channel_settings, assistant)):
            wait_for(lambda: sent_to(tg_peer, 5008), what="delivery by the restarted server")
    finally:
        app.__enter__()
    assert [r["status"] for r in store.outbox_rows("telegram") if r["user_id"] == "5008"] == ["sent"]


def test_telegram_polling_for_development(channel_settings: Settings, assistant: Assistant,
                                          tg_peer: TelegramPeer) -> None:
    import asyncio

    from connectors.core import ChannelHub

    tg_peer.updates = [tg_message(5009, "đăng ký thường trú cần giấy tờ gì")]

    async def run() -> None:
        channel = TelegramChannel(channel_settings)
        hub = ChannelHub(assistant, channel_settings, [channel])
        await hub.start()
        stop = asyncio.Event()
        poller = asyncio.create_task(channel.poll(hub, stop))
        for _ in range(300):
            if sent_to(tg_peer, 5009):
                break
            await asyncio.sleep(0.1)
        stop.set()
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await hub.stop()

    asyncio.run(run())
    assert tg_peer.of("deleteWebhook")
    assert "thường trú" in sent_to(tg_peer, 5009)[0]["text"].lower()


# ------------------------------------------------------------------------------------------------ Zalo


def zalo_event(user: str, text: str | None = None, event: str = "user_send_text", msg_id: str | None = None,
               app_id: str = "1234567890") -> dict:
    message: dict = {"msg_id": msg_id or f"msg-{next(ids)}"}
    if text is not None:
        message["text"] = text
    return {"app_id": app_id, "user_id_by_app": f"app-{user}", "event_name": event,
            "sender": {"id": user}, "recipient": {"id": "oa-1"}, "message": message,
            "timestamp": str(int(time.time() * 1000))}


def zalo_post(client: TestClient, event: dict, secret: str = OA_SECRET, mac: str | None = None):  # noqa: ANN201
    body = json.dumps(event, ensure_ascii=False).encode()
    if mac is None:
        mac = hashlib.sha256(event["app_id"].encode() + body + event["timestamp"].encode() + secret.encode()).hexdigest()
    return client.post("/zalo/webhook", content=body,
                       headers={"X-ZEvent-Signature": f"mac={mac}", "Content-Type": "application/json"})


def zalo_sent(peer: ZaloPeer, user: str) -> list[str]:
    return [p["message"]["text"] for p in peer.of("send") if p["recipient"]["user_id"] == user]


def test_zalo_forged_signatures_are_rejected(app: TestClient, zalo_peer: ZaloPeer) -> None:
    event = zalo_event("z-1", "lệ phí khai sinh")
    assert zalo_post(app, event, secret="not-the-secret").status_code == 403
    assert zalo_post(app, event, mac="0" * 64).status_code == 403
    body = json.dumps(event).encode()
    assert app.post("/zalo/webhook", content=body).status_code == 403  # no header
    assert app.post("/zalo/webhook", content=b"{broken", headers={"X-ZEvent-Signature": "mac=00"}).status_code == 403
    time.sleep(1.0)
    assert zalo_sent(zalo_peer, "z-1") == []


def test_zalo_answers_and_deduplicates_on_msg_id(app: TestClient, zalo_peer: ZaloPeer) -> None:
    event = zalo_event("z-2", "làm lại căn cước ở đâu", msg_id="dup-1")
    first = zalo_post(app, event)
    assert first.status_code == 200 and first.json() == {"error": 0}
    assert zalo_post(app, event).status_code == 200  # Zalo redelivers when it thinks we were slow
    [text] = wait_for(lambda: zalo_sent(zalo_peer, "z-2"), what="the answer")
    assert "căn cước" in text.lower() and "Nguồn:" in text
    time.sleep(1.5)
    assert len(zalo_sent(zalo_peer, "z-2")) == 1


def test_zalo_options_are_numbered_and_a_number_chooses(app: TestClient, zalo_peer: ZaloPeer) -> None:
    zalo_post(app, zalo_event("z-3", "đăng ký khai sinh"))
    [text] = wait_for(lambda: zalo_sent(zalo_peer, "z-3"), what="the answer with options")
    assert "2. Thủ tục đăng ký khai sinh lưu động" in text and "Trả lời bằng số" in text
    zalo_post(app, zalo_event("z-3", "2"))
    answers = wait_for(lambda: zalo_sent(zalo_peer, "z-3")[1:], what="the chosen procedure")
    assert "lưu động" in answers[0]


def test_zalo_expired_token_is_refreshed_once_and_rotated(app: TestClient, zalo_peer: ZaloPeer,
                                                          assistant: Assistant) -> None:
    token_before = zalo_peer.access_token
    zalo_peer.expire()
    refresh_before = zalo_peer.refresh_token
    zalo_post(app, zalo_event("z-4", "lệ phí đăng ký kết hôn"))
    wait_for(lambda: zalo_sent(zalo_peer, "z-4"), what="the answer after a refresh")
    refreshes = zalo_peer.of("refresh")
    assert len(refreshes) == 1 and refreshes[0]["refresh_token"] == refresh_before
    attempts = [p["token"] for p in zalo_peer.of("send_attempt") if p["recipient"]["user_id"] == "z-4"]
    assert attempts == [token_before, zalo_peer.access_token] and token_before != zalo_peer.access_token
    store = ChannelStore(assistant.store.db)
    assert store.token("zalo", "refresh_token") == zalo_peer.refresh_token != refresh_before
    # the next message uses the stored token straight away
    zalo_post(app, zalo_event("z-4", "mất bao lâu"))
    wait_for(lambda: zalo_sent(zalo_peer, "z-4")[1:], what="the follow-up")
    assert len(zalo_peer.of("refresh")) == 1


def test_zalo_unsupported_events_get_a_polite_text(app: TestClient, zalo_peer: ZaloPeer) -> None:
    zalo_post(app, zalo_event("z-5", None, event="user_send_sticker"))
    [text] = wait_for(lambda: zalo_sent(zalo_peer, "z-5"), what="the polite answer")
    assert "chỉ đọc được tin nhắn dạng chữ" in text
    zalo_post(app, zalo_event("z-5", None, event="user_seen_message"))  # needs no answer
    time.sleep(1.0)
    assert len(zalo_sent(zalo_peer, "z-5")) == 1


def test_zalo_outage_loses_no_reply(app: TestClient, zalo_peer: ZaloPeer) -> None:
    zalo_peer.fail_next = 2
    zalo_post(app, zalo_event("z-6", "đăng ký thường trú cần giấy tờ gì"))
    texts = wait_for(lambda: zalo_sent(zalo_peer, "z-6"), what="delivery after the outage")
    assert "thường trú" in texts[0].lower()
    assert all(len(t) <= 2000 for t in texts)  # a long documents list is split under Zalo's limit


def test_zalo_bad_input_does_not_crash(app: TestClient, zalo_peer: ZaloPeer) -> None:
    for text in ["", "🙂🙂🙂", "x" * 5000, "<script>alert(1)</script>", "Đăng ký 結婚 kết hôn"]:
        assert zalo_post(app, zalo_event("z-7", text)).status_code == 200
    texts = wait_for(lambda: len(zalo_sent(zalo_peer, "z-7")) >= 5 and zalo_sent(zalo_peer, "z-7"),
                     what="an answer to each")
    assert all(t.strip() for t in texts)
    assert app.get("/health").status_code == 200


def test_channels_record_their_conversations(app: TestClient, assistant: Assistant) -> None:
    from sqlalchemy import select

    from bot.conversation import conversations

    with assistant.store.db.connect() as conn:
        channels = dict(conn.execute(select(conversations.c.session_id, conversations.c.channel)).all())
    assert channels.get("telegram:5002") == "telegram"
    assert channels.get("zalo:z-2") == "zalo"


def test_a_rating_request_renders_as_stars_or_numbers(settings: Settings, tg_peer: TelegramPeer,
                                                      assistant: Assistant) -> None:
    from bot.domain import Reply
    from bot.service import ChatTurn
    from connectors.zalo import ZaloChannel

    buttons = [Option(f"{n} - …", f'/rate{{"score": "{n}"}}') for n in (5, 4, 3, 2, 1)]
    reply = Outgoing.from_turn(ChatTurn(Reply("cảm ơn", "Bạn đánh giá câu trả lời hôm nay thế nào?", "thanks", False),
                                        buttons))
    assert reply.options == [] and [o.payload for o in reply.rating][0] == '/rate{"score": "1"}'
    tg = TelegramChannel(settings.model_copy(update={"telegram_token": SecretStr(tg_peer.token)}))
    [payload] = tg.render(Incoming("telegram", "9"), reply)
    [row] = payload["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in row] == ["1 ⭐", "2 ⭐", "3 ⭐", "4 ⭐", "5 ⭐"]
    assert [b["callback_data"] for b in row][4] == '/rate{"score": "5"}'
    zalo = ZaloChannel(settings.model_copy(update={
        "zalo_app_id": "1", "zalo_oa_secret": SecretStr("s"), "zalo_app_secret": SecretStr("s"),
        "zalo_access_token": SecretStr("a"), "zalo_refresh_token": SecretStr("r")}), ChannelStore(assistant.store.db))
    [zpayload] = zalo.render(Incoming("zalo", "9"), reply)
    assert "một số từ 1" in zpayload["message"]["text"] and zpayload["recipient"] == {"user_id": "9"}


def test_zalo_partial_configuration_is_a_clear_error(settings: Settings, assistant: Assistant) -> None:
    from connectors import build_hub

    with pytest.raises(ValueError, match="VNA_ZALO_OA_SECRET"):
        build_hub(assistant, settings.model_copy(update={"zalo_app_id": "1"}))


def test_zalo_oversized_body_is_refused(app: TestClient) -> None:
    event = zalo_event("z-8", "x" * 70_000)
    assert zalo_post(app, event).status_code == 413
