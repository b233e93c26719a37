"""Telegram and Zalo OA end to end against local servers that speak their contracts (tests/channel_peers.py).

The API app runs with both channels configured and the real engine behind it; a webhook delivery goes in over
HTTP, and the test asserts on the calls the connector makes to the platform: what is sent, to whom, with which
keyboard, how often, and what survives an outage or a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, func, insert, select
from sqlalchemy import update as sql_update

from bot.api import create_app
from bot.config import Settings
from bot.keys import TokenCipher
from bot.schema import channel_inbox, channel_outbox, channel_tokens, turns
from bot.service import Assistant
from connectors.core import ChannelHub, ChannelStore, Incoming, Option, Outgoing, split_text
from connectors.telegram import MESSAGE_LIMIT, TelegramChannel
from tests.channel_peers import TelegramPeer, ZaloPeer, configured, wait_for

TG_SECRET = "webhook-secret-for-tests"
OA_SECRET = "oa-secret-key-for-tests"
ids = itertools.count(1000)


@pytest.fixture(scope="module")
def channel_settings(settings: Settings, tg_peer: TelegramPeer, zalo_peer: ZaloPeer) -> Settings:
    # a per-user limit (the session's test settings lift every limit): the production default's 10 messages, in a
    # window no slow test machine can outlast
    return configured(settings, tg_peer, zalo_peer, TG_SECRET, OA_SECRET).model_copy(
        update={"rate_limit_channel_user": "10/minute;30/hour"})


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


def tg_post(client: TestClient, update: dict | bytes, secret: str | None = TG_SECRET):
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
    tg_post(app, tg_message(5010, "đổi cccd 001203004567 ở đâu, gọi 0912345678"))
    wait_for(lambda: sent_to(tg_peer, 5010), what="the answer")
    with assistant.store.db.connect() as conn:
        stored = [r[0] for r in conn.execute(select(channel_inbox.c.payload)
                                             .where(channel_inbox.c.user_id == "5010")).all()]
    assert stored and "001203004567" not in stored[0] and "0912345678" not in stored[0]
    assert "[số giấy tờ]" in stored[0] and "[số điện thoại]" in stored[0]
    assert "Lan" not in stored[0]  # the sender's name is not kept; the chat id is, as the row's address (user_id)


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


def zalo_post(client: TestClient, event: dict, secret: str = OA_SECRET, mac: str | None = None):
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


def test_zalo_expired_token_is_refreshed_once_rotated_and_stored_encrypted(
        app: TestClient, zalo_peer: ZaloPeer, assistant: Assistant, channel_settings: Settings) -> None:
    token_before = zalo_peer.access_token
    zalo_peer.expire()
    refresh_before = zalo_peer.refresh_token
    zalo_post(app, zalo_event("z-4", "lệ phí đăng ký kết hôn"))
    wait_for(lambda: zalo_sent(zalo_peer, "z-4"), what="the answer after a refresh")
    refreshes = zalo_peer.of("refresh")
    assert len(refreshes) == 1 and refreshes[0]["refresh_token"] == refresh_before
    attempts = [p["token"] for p in zalo_peer.of("send_attempt") if p["recipient"]["user_id"] == "z-4"]
    assert attempts == [token_before, zalo_peer.access_token] and token_before != zalo_peer.access_token
    store = ChannelStore(assistant.store.db, TokenCipher(channel_settings))
    assert store.token("zalo", "refresh_token") == zalo_peer.refresh_token != refresh_before
    with assistant.store.db.connect() as conn:  # at rest, neither token is readable
        stored = dict(conn.execute(select(channel_tokens.c.name, channel_tokens.c.value)
                                   .where(channel_tokens.c.channel == "zalo")).all())
    assert set(stored) == {"access_token", "refresh_token"}
    assert all(v.startswith("enc:") for v in stored.values())
    assert not {zalo_peer.access_token, zalo_peer.refresh_token} & {v for s in stored.values() for v in s.split(":")}
    assert zalo_peer.refresh_token not in "".join(stored.values())
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


# ------------------------------------------------------------------------------------------------ hostile webhooks


def stored_inbox(assistant: Assistant, user_id: str) -> list[str]:
    with assistant.store.db.connect() as conn:
        return [r[0] for r in conn.execute(select(channel_inbox.c.payload)
                                           .where(channel_inbox.c.user_id == user_id)).all()]


def tg_with(message: dict) -> dict:
    return {"update_id": next(ids), "message": message}


def base_message(chat: object = 5200) -> dict:
    return {"message_id": next(ids), "date": int(time.time()), "chat": {"id": chat, "type": "private"},
            "text": "lệ phí khai sinh"}


@pytest.mark.parametrize("update", [
    pytest.param(tg_with({**base_message(), "chat": "5200"}), id="chat-is-a-string"),
    pytest.param(tg_with({**base_message(), "chat": {"type": "private"}}), id="chat-without-id"),
    pytest.param(tg_with(base_message(2**70)), id="huge-chat-id"),
    pytest.param(tg_with(base_message(True)), id="chat-id-is-a-boolean"),
    pytest.param(tg_with(base_message("5200")), id="chat-id-is-a-string"),
    pytest.param(tg_with({**base_message(), "text": 12345}), id="text-is-a-number"),
    pytest.param(tg_with({**base_message(), "text": {"vi": "lệ phí"}}), id="text-is-an-object"),
    pytest.param(tg_with({**base_message(), "message_id": None}), id="message-id-null"),
    pytest.param({"update_id": "7", "message": base_message()}, id="update-id-is-a-string"),
    pytest.param({"update_id": 10**30, "message": base_message()}, id="huge-update-id"),
    pytest.param({"update_id": -1, "message": base_message()}, id="negative-update-id"),
    pytest.param({"update_id": 8, "message": [base_message()]}, id="message-is-an-array"),
    pytest.param({"update_id": 9, "message": "lệ phí khai sinh"}, id="message-is-a-string"),
    pytest.param({"update_id": 10, "callback_query": {"id": "q", "data": "1", "from": None}}, id="press-without-from"),
    pytest.param({"update_id": 11, "callback_query": {"id": ["q"], "data": "1", "from": {"id": 5200}}},
                 id="press-id-is-an-array"),
    pytest.param({"update_id": 12, "callback_query": {"id": "q", "data": {"x": 1}, "from": {"id": 5200}}},
                 id="press-data-is-an-object"),
])
def test_telegram_malformed_updates_get_400_and_are_not_stored(app: TestClient, tg_peer: TelegramPeer,
                                                               assistant: Assistant, update: dict) -> None:
    r = tg_post(app, update)
    assert r.status_code == 400 and r.json() == {"detail": "Not a Telegram update."}
    assert stored_inbox(assistant, "5200") == []


@pytest.mark.parametrize("body", [
    pytest.param(b'{"update_id": 1, "message": ' + b"[" * 100_00 + b"]" * 100_00 + b"}", id="nested-20k-deep"),
    pytest.param(b'{"update_id": ' + b"9" * 5000 + b"}", id="5000-digit-number"),
    pytest.param(b'{"update_id": 1, "message": {"chat": {"id": 1e400}}}', id="infinite-float"),
    pytest.param(b'"just a string"', id="json-string"),
    pytest.param(b"null", id="json-null"),
])
def test_telegram_hostile_json_gets_400(app: TestClient, body: bytes) -> None:
    r = tg_post(app, body)
    assert r.status_code == 400, r.text
    assert app.get("/health").status_code == 200


def test_lone_surrogates_and_nul_in_json_are_stored_safely(app: TestClient, tg_peer: TelegramPeer,
                                                           zalo_peer: ZaloPeer, assistant: Assistant) -> None:
    # valid JSON that UTF-8 cannot encode ("\\ud800") or PostgreSQL cannot store (NUL): both once made the insert fail
    body = json.dumps(tg_message(5202, "lệ phí khai sinh")).replace(
        '"text": "', '"text": "\\ud800\\u0000').encode()
    assert tg_post(app, body).status_code == 200
    [answer] = wait_for(lambda: sent_to(tg_peer, 5202), what="the answer")
    assert answer["text"].strip()
    event = zalo_event("z-sur", "lệ phí khai sinh", msg_id="m-sur")

    def signed_post(raw: bytes):
        mac = hashlib.sha256(b"1234567890" + raw + event["timestamp"].encode() + OA_SECRET.encode()).hexdigest()
        return app.post("/zalo/webhook", content=raw, headers={"X-ZEvent-Signature": f"mac={mac}"})

    body = json.dumps(event).replace('"m-sur"', '"m-sur\\u0000"').replace('"text": "', '"text": "\\udfff')
    assert signed_post(body.encode()).status_code == 200
    wait_for(lambda: zalo_sent(zalo_peer, "z-sur"), what="the Zalo answer")
    assert signed_post(json.dumps(event).replace('"m-sur"', '"m-\\udfff"').encode()).status_code == 400  # an id
    [stored] = [json.loads(p)["text"] for p in stored_inbox(assistant, "5202")]
    assert "\x00" not in stored and "\ufffd" in stored and stored.endswith("lệ phí khai sinh")


def test_telegram_edits_and_service_updates_are_answered_200_and_ignored(app: TestClient, tg_peer: TelegramPeer,
                                                                        assistant: Assistant) -> None:
    edited = {"update_id": next(ids), "edited_message": {**base_message(5201), "edit_date": int(time.time())}}
    joined = tg_with({"message_id": next(ids), "date": int(time.time()), "chat": {"id": 5201, "type": "group"},
                      "new_chat_members": [{"id": 1, "is_bot": False, "first_name": "An"}]})
    for update in (edited, joined):
        assert tg_post(app, update).status_code == 200
    time.sleep(1.0)
    assert sent_to(tg_peer, 5201) == [] and stored_inbox(assistant, "5201") == []


def zalo_signed(client: TestClient, event: object, secret: str = OA_SECRET, timestamp: str | None = None):
    """POST ``event`` signed as Zalo signs: the timestamp in the MAC is the body's own (``timestamp`` overrides
    what is hashed, for bodies without one)."""
    body = json.dumps(event, ensure_ascii=False).encode()
    stamp = timestamp if timestamp is not None else str(event.get("timestamp", "")) if isinstance(event, dict) else ""
    mac = hashlib.sha256(b"1234567890" + body + stamp.encode() + secret.encode()).hexdigest()
    return client.post("/zalo/webhook", content=body,
                       headers={"X-ZEvent-Signature": f"mac={mac}", "Content-Type": "application/json"})


def now_ms(offset_s: float = 0.0) -> str:
    return str(int((time.time() + offset_s) * 1000))


@pytest.mark.parametrize("stamp", [
    pytest.param(lambda: now_ms(-600), id="ten-minutes-old"),
    pytest.param(lambda: now_ms(+600), id="ten-minutes-ahead"),
    pytest.param(lambda: "1500000000000", id="captured-in-2017"),
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "mười giờ", id="words"),
    pytest.param(lambda: "1.7e12", id="float-notation"),
    pytest.param(lambda: "9" * 40, id="forty-digits"),
    pytest.param(lambda: None, id="missing"),
])
def test_zalo_events_outside_the_time_window_are_refused(app: TestClient, zalo_peer: ZaloPeer,
                                                         assistant: Assistant, stamp) -> None:
    event = zalo_event("z-ts", "lệ phí khai sinh")
    value = stamp()  # when the test runs, not when it is collected
    if value is None:
        del event["timestamp"]
    else:
        event["timestamp"] = value
    r = zalo_signed(app, event)
    assert r.status_code == 400 and r.json() == {"detail": "Stale or missing timestamp."}
    assert stored_inbox(assistant, "z-ts") == []


def test_zalo_event_inside_the_window_is_answered(app: TestClient, zalo_peer: ZaloPeer) -> None:
    event = zalo_event("z-ts-ok", "lệ phí khai sinh")
    event["timestamp"] = now_ms(-240)  # four minutes on the way: Zalo retries, clocks drift
    assert zalo_signed(app, event).status_code == 200
    wait_for(lambda: zalo_sent(zalo_peer, "z-ts-ok"), what="the answer")
    forged = {**zalo_event("z-ts-ok", "lệ phí khai sinh"), "timestamp": now_ms(-240)}
    assert zalo_signed(app, forged, timestamp=now_ms()).status_code == 403  # the MAC covers the body's timestamp


@pytest.mark.parametrize("change", [
    pytest.param({"sender": None}, id="sender-is-null"),
    pytest.param({"sender": "z-bad"}, id="sender-is-a-string"),
    pytest.param({"sender": {}}, id="sender-without-id"),
    pytest.param({"sender": {"id": {"id": "z-bad"}}}, id="sender-id-is-an-object"),
    pytest.param({"sender": {"id": "9" * 500}}, id="huge-sender-id"),
    pytest.param({"sender": {"id": "z bad\n<script>"}}, id="sender-id-with-markup"),
    pytest.param({"message": [{"text": "lệ phí"}]}, id="message-is-an-array"),
    pytest.param({"message": {"text": 42, "msg_id": "m-42"}}, id="text-is-a-number"),
    pytest.param({"message": {"text": "lệ phí", "msg_id": ["m"]}}, id="msg-id-is-an-array"),
    pytest.param({"event_name": 7}, id="event-name-is-a-number"),
    pytest.param({"event_name": None}, id="event-name-is-null"),
])
def test_zalo_malformed_events_get_400_and_are_not_stored(app: TestClient, zalo_peer: ZaloPeer,
                                                          assistant: Assistant, change: dict) -> None:
    event = {**zalo_event("z-bad", "lệ phí khai sinh"), **change}
    r = zalo_signed(app, event)
    assert r.status_code == 400 and r.json() == {"detail": "Not a Zalo event."}
    assert stored_inbox(assistant, "z-bad") == []


def test_zalo_signed_bodies_that_are_not_objects_are_refused(app: TestClient) -> None:
    for body in ([1, 2], "lệ phí", None, 12):
        assert zalo_signed(app, body).status_code == 403  # no timestamp of its own: nothing to verify
    deep = b'{"timestamp": "1", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    mac = hashlib.sha256(b"1234567890" + deep + b"1" + OA_SECRET.encode()).hexdigest()
    r = app.post("/zalo/webhook", content=deep, headers={"X-ZEvent-Signature": f"mac={mac}"})
    assert r.status_code in (400, 403)  # too deep to parse (403), or parsed and stale (400): never a 500


def test_zalo_events_it_does_not_answer_are_200_whatever_their_shape(app: TestClient, zalo_peer: ZaloPeer,
                                                                     assistant: Assistant) -> None:
    for event in ({**zalo_event("z-other", None, event="user_submit_info"),
                   "info": {"name": "Nguyễn Văn An", "phone": "0987654329", "address": "12 Lê Lợi"}},
                  {**zalo_event("z-other", None, event="oa_send_text"), "sender": None},
                  {**zalo_event("z-other", None, event="user_seen_message"), "message": ["x"]}):
        assert zalo_signed(app, event).status_code == 200
    time.sleep(1.0)
    assert zalo_sent(zalo_peer, "z-other") == [] and stored_inbox(assistant, "z-other") == []


def test_zalo_follow_event_names_the_follower(app: TestClient, zalo_peer: ZaloPeer) -> None:
    follow = {"app_id": "1234567890", "oa_id": "oa-1", "event_name": "follow", "source": "oa_profile",
              "follower": {"id": "z-follow"}, "user_id_by_app": "app-z-follow", "timestamp": now_ms()}
    assert zalo_signed(app, follow).status_code == 200
    [greeting] = wait_for(lambda: zalo_sent(zalo_peer, "z-follow"), what="the greeting")
    assert greeting.strip()


# ------------------------------------------------------------------------------------------------ privacy


def test_inbox_and_outbox_keep_no_contact_name_username_or_phone(app: TestClient, tg_peer: TelegramPeer,
                                                                 zalo_peer: ZaloPeer, assistant: Assistant) -> None:
    person = {"id": 5300, "is_bot": False, "first_name": "Mai", "last_name": "Trần Thị", "username": "maitran_bd88",
              "language_code": "vi"}
    chat = {"id": 5300, "type": "private", "first_name": "Mai", "last_name": "Trần Thị", "username": "maitran_bd88"}

    def message(**content: object) -> dict:
        return tg_with({"message_id": next(ids), "date": int(time.time()), "from": person, "chat": chat, **content})

    contact = message(contact={"phone_number": "+84987654322", "first_name": "Hoàng Văn", "last_name": "Khải",
                               "user_id": 5399, "vcard": "BEGIN:VCARD\nTEL:+84987654322\nEND:VCARD"})
    location = message(location={"latitude": 10.980512, "longitude": 106.674321})
    text = message(text="Tôi là Mai, số 0987654321, cccd 074188001234, hỏi làm lại căn cước")
    for update in (contact, location, text):
        assert tg_post(app, update).status_code == 200
    wait_for(lambda: len(sent_to(tg_peer, 5300)) >= 3, what="three answers")

    zalo_peer.refused.add("z-private")  # Zalo refuses the OA's messages to this user: the replies fail for good
    zalo_post(app, {**zalo_event("z-private", "đăng ký kết hôn, gọi tôi 0987654323 hoặc mai.tran@gmail.com"),
                    "user_id_by_app": "app-z-private"})
    hub: ChannelHub = app.app.state.hub
    staff = "Cán bộ Nguyễn Văn Bình sẽ gọi lại số 0987654323 của bạn"
    app.portal.call(hub.send_text, "zalo", "z-private", staff)
    store = ChannelStore(assistant.store.db)
    wait_for(lambda: (rows := [r for r in store.outbox_rows("zalo") if r["user_id"] == "z-private"])
             and len(rows) >= 2 and all(r["status"] == "failed" for r in rows), what="the failed Zalo replies")

    with assistant.store.db.connect() as conn:
        everything = "\n".join(str(tuple(row)) for table in (channel_inbox, channel_outbox)
                               for row in conn.execute(select(table)).all())
    for secret in ("0987654321", "0987654322", "84987654322", "987654322", "0987654323", "074188001234",
                   "maitran_bd88", "Trần Thị", "Hoàng Văn", "Khải", "VCARD", "10.980512", "106.674321",
                   "mai.tran@gmail.com", "app-z-private"):
        assert secret not in everything, secret
    assert "[số điện thoại]" in everything and "[email]" in everything  # the words are kept, masked


def test_raw_rows_of_an_older_version_are_rewritten_at_start(channel_settings: Settings, assistant: Assistant,
                                                             tg_peer: TelegramPeer) -> None:
    """Before this version the inbox kept the platform's payload: a restart rewrites those rows (a done row
    keeps nothing; an unanswered one keeps its masked text, and is still answered)."""
    now = time.time()
    old_done = tg_message(5310, "hỏi căn cước", contact={"phone_number": "0987654324", "first_name": "Lộc"})
    old_pending = tg_message(5311, "lệ phí làm lại căn cước, số tôi 0987654325")
    with assistant.store.db.begin() as conn:
        for update, status in ((old_done, "done"), (old_pending, "received")):
            conn.execute(insert(channel_inbox).values(
                channel="telegram", message_id=f"old-{update['update_id']}", user_id=str(update["message"]["chat"]["id"]),
                payload=json.dumps(update, ensure_ascii=False), status=status, attempts=0, created_at=now,
                updated_at=now))

    async def restart() -> None:
        hub = ChannelHub(assistant, channel_settings, [TelegramChannel(channel_settings)])
        await hub.start()
        for _ in range(300):
            if sent_to(tg_peer, 5311):
                break
            await asyncio.sleep(0.1)
        await hub.stop()

    asyncio.run(restart())
    assert "căn cước" in sent_to(tg_peer, 5311)[0]["text"].lower()
    stored = stored_inbox(assistant, "5310") + stored_inbox(assistant, "5311")
    assert len(stored) == 2 and all(json.loads(s)["v"] == 2 for s in stored)
    assert not any(x in "".join(stored) for x in ("0987654324", "0987654325", "Lộc", "Lan"))


# ------------------------------------------------------------------------------------------------ tokens


def test_plaintext_tokens_of_an_older_version_are_encrypted_and_still_refresh(
        app: TestClient, zalo_peer: ZaloPeer, assistant: Assistant, channel_settings: Settings) -> None:
    from connectors.zalo import ZaloChannel

    with assistant.store.db.begin() as conn:  # as an older version left them
        conn.execute(delete(channel_tokens).where(channel_tokens.c.channel == "zalo"))
        for name, value in (("access_token", zalo_peer.access_token), ("refresh_token", zalo_peer.refresh_token)):
            conn.execute(insert(channel_tokens).values(channel="zalo", name=name, value=value, updated_at=time.time()))
    store = ChannelStore(assistant.store.db, TokenCipher(channel_settings))
    assert store.token("zalo", "refresh_token") == zalo_peer.refresh_token  # plaintext is still read

    channel = ZaloChannel(channel_settings, ChannelStore(assistant.store.db))
    asyncio.run(channel.start())  # a (re)start encrypts what it finds in plaintext
    asyncio.run(channel.stop())
    with assistant.store.db.connect() as conn:
        values = [v for (v,) in conn.execute(select(channel_tokens.c.value)
                                             .where(channel_tokens.c.channel == "zalo")).all()]
    assert len(values) == 2 and all(v.startswith("enc:") for v in values)
    assert zalo_peer.refresh_token not in "".join(values) and zalo_peer.access_token not in "".join(values)

    refresh_before = zalo_peer.refresh_token
    zalo_peer.expire()
    zalo_post(app, zalo_event("z-enc", "lệ phí đăng ký kết hôn"))
    wait_for(lambda: zalo_sent(zalo_peer, "z-enc"), what="the answer after a refresh")
    [refresh] = zalo_peer.of("refresh")
    assert refresh["refresh_token"] == refresh_before  # decrypted from the database, accepted by Zalo
    assert store.token("zalo", "refresh_token") == zalo_peer.refresh_token != refresh_before


# ------------------------------------------------------------------------------------------------ outbox


def zalo_rows(users: list[str], next_attempt_at: float, text: str = "Tin nhắn chờ gửi") -> list[dict]:
    now = time.time()
    return [{"channel": "zalo", "user_id": u, "status": "pending", "attempts": 0, "next_attempt_at": next_attempt_at,
             "created_at": now, "updated_at": now,
             "payload": json.dumps({"recipient": {"user_id": u}, "message": {"text": f"{text} {u}"}},
                                   ensure_ascii=False)} for u in users]


def bulk_enqueue(assistant: Assistant, rows: list[dict]) -> None:
    with assistant.store.db.begin() as conn:
        conn.execute(insert(channel_outbox), rows)


def retire(assistant: Assistant, prefix: str) -> None:
    """Take a test's synthetic rows out of the queue (the module's app keeps running)."""
    with assistant.store.db.begin() as conn:
        conn.execute(sql_update(channel_outbox).where(channel_outbox.c.user_id.startswith(prefix))
                     .where(channel_outbox.c.status.in_(("pending", "sending"))).values(status="failed"))


def test_a_zalo_outage_with_a_long_queue_does_not_delay_telegram(app: TestClient, tg_peer: TelegramPeer,
                                                                 zalo_peer: ZaloPeer, assistant: Assistant) -> None:
    zalo_peer.down, zalo_peer.slow_s = True, 0.2  # Zalo hangs, then fails: 600 sends would take 2 minutes
    users = [f"q-{i}" for i in range(600)]
    bulk_enqueue(assistant, zalo_rows(users, time.time()))
    try:
        wait_for(lambda: zalo_peer.of("send_attempt"), what="the Zalo sender meeting the outage")
        tg_post(app, tg_message(5400, "lệ phí đăng ký khai sinh"))
        [answer] = wait_for(lambda: sent_to(tg_peer, 5400), what="the Telegram answer")
        zalo_tried = {p["recipient"]["user_id"] for p in zalo_peer.of("send_attempt")}
        with assistant.store.db.connect() as conn:
            waiting = conn.execute(select(func.count()).select_from(channel_outbox)
                                   .where(channel_outbox.c.user_id.startswith("q-"))
                                   .where(channel_outbox.c.status.in_(("pending", "sending")))).scalar_one()
    finally:
        zalo_peer.down, zalo_peer.slow_s = False, 0.0
        retire(assistant, "q-")
    assert "khai sinh" in answer["text"].lower()
    # Telegram answered while Zalo had tried only a few of its queue (it stops a pass at an outage), and nothing
    # of that queue was lost or given up on
    assert len(zalo_tried) < 60 and waiting == 600


def test_only_due_rows_are_sent_and_a_recipient_keeps_its_order(app: TestClient, zalo_peer: ZaloPeer,
                                                                 assistant: Assistant) -> None:
    later = time.time() + 3600
    # 600 messages waiting for a retry an hour from now (more than any fixed window), then ones due now
    bulk_enqueue(assistant, zalo_rows([f"nd-{i}" for i in range(600)], later))
    bulk_enqueue(assistant, zalo_rows(["ord-a"], later, "Thứ nhất"))  # an earlier message still waiting
    bulk_enqueue(assistant, zalo_rows(["ord-a"], 0, "Thứ hai"))  # due, but must not overtake it
    bulk_enqueue(assistant, zalo_rows(["ord-b"], 0, "Đúng hạn"))
    try:
        wait_for(lambda: zalo_sent(zalo_peer, "ord-b"), what="the due message behind 600 waiting ones")
        assert zalo_sent(zalo_peer, "ord-a") == []  # same pass as ord-b: the second did not overtake the first
        with assistant.store.db.begin() as conn:  # the first one's retry time comes
            conn.execute(sql_update(channel_outbox).where(channel_outbox.c.user_id == "ord-a")
                         .where(channel_outbox.c.next_attempt_at == later).values(next_attempt_at=0))
        texts = wait_for(lambda: len(zalo_sent(zalo_peer, "ord-a")) == 2 and zalo_sent(zalo_peer, "ord-a"),
                         what="both messages, in order")
        assert texts == ["Thứ nhất ord-a", "Thứ hai ord-a"]
        assert not any(p["recipient"]["user_id"].startswith("nd-") for p in zalo_peer.of("send_attempt"))
    finally:
        retire(assistant, "nd-")


def test_retry_delays_grow_with_jitter_under_the_cap_and_honour_retry_after(settings: Settings,
                                                                           assistant: Assistant) -> None:
    hub = ChannelHub(assistant, settings.model_copy(update={"outbox_max_backoff_s": 300.0}), [])
    random.seed(15)
    for attempts in range(1, 13):
        samples = [hub.backoff(attempts) for _ in range(200)]
        full = min(300.0, 2.0 ** (attempts - 1))
        assert all(full / 2 - 1e-9 <= d <= full + 1e-9 for d in samples), (attempts, min(samples), max(samples))
        assert len({round(d, 6) for d in samples}) > 100  # spread, not one value for everyone
    assert 150.0 <= hub.backoff(40) <= 300.0
    assert hub.backoff(1, retry_after=42) >= 42  # Telegram's RetryAfter: never sooner than asked
    assert hub.backoff(1, retry_after=10**9) == 3600.0  # nor a hostile eternity


# ------------------------------------------------------------------------------------------------ limits


def test_a_burst_from_one_telegram_chat_meets_one_short_notice(app: TestClient, tg_peer: TelegramPeer,
                                                               assistant: Assistant,
                                                               channel_settings: Settings) -> None:
    chat = 5500
    for n in range(40):
        assert tg_post(app, tg_message(chat, f"lệ phí làm căn cước lần {n + 1}")).status_code == 200
    limit = 10  # the first window of the module's VNA_RATE_LIMIT_CHANNEL_USER ("10/minute;30/hour")
    assert channel_settings.rate_limit_channel_user.startswith(f"{limit}/minute")
    stored = stored_inbox(assistant, str(chat))
    assert len(stored) == limit
    wait_for(lambda: len(sent_to(tg_peer, chat)) >= len(stored) + 1, what="the answers and the notice")
    time.sleep(1.0)
    texts = [p["text"] for p in sent_to(tg_peer, chat)]
    notices = [t for t in texts if "gửi nhanh quá" in t.lower()]
    assert len(notices) == 1 and len(texts) == len(stored) + 1
    assert notices[0].startswith("Bạn gửi nhanh quá, vui lòng đợi ") and "giây" in notices[0]
    with assistant.store.db.connect() as conn:
        turn_count = conn.execute(select(func.count()).select_from(turns)
                                  .where(turns.c.session_id == f"telegram:{chat}")).scalar_one()
    assert turn_count == len(stored)  # the refused messages are neither turns nor stored questions


def test_channel_user_limits_are_shared_through_redis(settings: Settings, assistant: Assistant,
                                                      tg_peer: TelegramPeer) -> None:
    redis_url = "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001
        pytest.skip("no Redis at 127.0.0.1:6379")
    shared = configured(settings, tg_peer, None).model_copy(update={"redis_url": redis_url,
                                                                    "rate_limit_channel_user": "3/minute"})
    one, two = (ChannelHub(assistant, shared, [TelegramChannel(shared)]) for _ in range(2))
    chat = str(time.time_ns())  # a fresh counter in the shared store
    outcomes = [hub._receive(Incoming("telegram", chat, f"câu hỏi {n}"), f"r-{chat}-{n}")
                for n, hub in enumerate((one, two, one, two))]
    assert all(isinstance(o, int) for o in outcomes[:3]) and outcomes[3] == "notified"
