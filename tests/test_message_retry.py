"""A retried message is answered once: /api/chat's ``message_id`` (the client's id of a message, the same in its
retries) gets the first attempt's answer back and the turn is recorded once, on SQLite through the API and on
PostgreSQL with two instances retrying at the same moment. (Through Rasa: tests/test_dialogue.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.conversation import RECEIPT_TTL_S, AlreadyAnswered, ConversationStore
from bot.domain import ConversationState, Reply
from bot.retention import purge
from bot.schema import chat_receipts
from tests.services import pg_schema
from tests.test_scaleout_state import counting


def chat(client: TestClient, session: str, text: str, message_id: str | None = None) -> dict:
    body = {"session_id": session, "text": text} | ({"message_id": message_id} if message_id else {})
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_retried_message_gets_its_first_answer_and_is_recorded_once(client: TestClient, assistant) -> None:
    session = f"retry-{uuid.uuid4().hex[:8]}"
    first = chat(client, session, "làm lại căn cước ở đâu", "m-1")
    assert first["sources"]
    again = chat(client, session, "làm lại căn cước ở đâu", "m-1")
    assert again == first
    assert len(assistant.store.history(session)) == 1
    # the state moved once: a follow-up is answered about the same procedure
    follow = chat(client, session, "lệ phí bao nhiêu", "m-2")
    assert follow["sources"][0]["id"] == first["sources"][0]["id"]
    assert [h["question"] for h in assistant.store.history(session)] == ["làm lại căn cước ở đâu", "lệ phí bao nhiêu"]


def test_message_ids_are_per_conversation_and_optional(client: TestClient, assistant) -> None:
    one, two = f"retry-{uuid.uuid4().hex[:8]}", f"retry-{uuid.uuid4().hex[:8]}"
    chat(client, one, "đăng ký khai sinh", "same")
    chat(client, two, "đăng ký kết hôn", "same")  # another conversation's message: not a retry
    assert [h["question"] for h in assistant.store.history(two)] == ["đăng ký kết hôn"]
    chat(client, one, "đăng ký khai sinh")
    chat(client, one, "đăng ký khai sinh")  # without an id, every request is a new message
    assert len(assistant.store.history(one)) == 3


def test_a_refused_message_is_replayed_too(client: TestClient, assistant) -> None:
    session = f"retry-{uuid.uuid4().hex[:8]}"
    first = chat(client, session, "😀😀😀", "emoji")
    assert first["fallback"] and first["question"] == "😀😀😀"
    assert chat(client, session, "😀😀😀", "emoji") == first
    assert len(assistant.store.history(session)) == 1


@pytest.mark.parametrize("message_id", ["", "x" * 65, "a b", "ảnh", "../etc", "a;drop", 12, None])
def test_a_malformed_message_id_is_refused(client: TestClient, message_id: object) -> None:
    body = {"session_id": "retry-bad", "text": "đăng ký khai sinh", "message_id": message_id}
    if message_id is None:  # null is "no id"
        assert client.post("/api/chat", json=body).status_code == 200
        return
    response = client.post("/api/chat", json=body)
    assert response.status_code == 422, response.text
    assert "message_id" in response.json()["detail"]


def test_the_store_refuses_a_second_receipt_for_one_message(tmp_path) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path / 'r.db'}")
    reply = Reply("q", "r", None, False, outcome="answered")
    store.record("web:x", "web", reply, ConversationState(procedure="1.1"), 5, receipt=("m", {"reply": "first"}))
    with pytest.raises(AlreadyAnswered) as raised:
        store.record("web:x", "web", reply, ConversationState(procedure="2.2"), 5, receipt=("m", {"reply": "second"}))
    assert raised.value.response == {"reply": "first"}
    assert store.load("web:x").procedure == "1.1" and len(store.history("web:x")) == 1
    assert store.receipt("web:x", "m") == {"reply": "first"} and store.receipt("web:x", "n") is None


def test_receipts_are_purged_after_a_day(tmp_path, settings) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path / 'p.db'}")
    reply = Reply("q", "r", None, False, outcome="answered")
    store.record("web:x", "web", reply, None, 5, receipt=("old", {"reply": "r"}))
    store.record("web:x", "web", reply, None, 5, receipt=("new", {"reply": "r"}))
    with store.db.begin() as conn:
        conn.execute(chat_receipts.update().where(chat_receipts.c.message_id == "old")
                     .values(created_at=time.time() - RECEIPT_TTL_S - 60))
    counts = purge(store.db, settings)
    assert counts["chat_receipts"] == 1 and counts["turns"] == 0  # the turns stay until the retention cutoff
    assert store.receipt("web:x", "old") is None and store.receipt("web:x", "new") == {"reply": "r"}


def test_two_instances_retrying_one_message_at_once_record_it_once(assistant) -> None:
    """A client retries while its first attempt is still running on another instance (a proxy's timeout), ten
    messages in a row on one PostgreSQL: each message is recorded once and both attempts get the same answer."""
    with pg_schema() as url:
        first = counting(assistant, ConversationStore(url))
        second = counting(assistant, ConversationStore(url))
        session = f"web:{uuid.uuid4().hex[:8]}"
        questions = ["làm lại căn cước ở đâu", "lệ phí bao nhiêu", "mất bao lâu", "đăng ký khai sinh",
                     "cần giấy tờ gì", "nộp ở đâu", "cấp hộ chiếu", "thời hạn giải quyết", "đăng ký kết hôn",
                     "phí bao nhiêu"]

        async def run() -> None:
            for number, text in enumerate(questions):
                a, b = await asyncio.gather(first.turn(session, text, "web", message_id=f"m{number}"),
                                            second.turn(session, text, "web", message_id=f"m{number}"))
                assert a.contract() == b.contract()

        asyncio.run(run())
        history = first.store.history(session)
        assert [h["question"] for h in history] == questions
        assert first.store.load(session).misses == len(questions)  # the state moved once per message
        with first.store.db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(chat_receipts)).scalar_one() == len(questions)
        first.store.db.dispose()
        second.store.db.dispose()


def test_a_replayed_answer_keeps_its_sources_for_whoever_reads_the_turn() -> None:
    """A retry racing its first attempt gets the stored answer; the rebuilt reply carries the same sources (the
    KPI and log code read them), not an empty list."""
    from bot.service import _replay

    source = {"id": "1.014064", "kind": "procedure", "title": "Cấp lại thẻ căn cước", "url": None, "score": 1.0}
    turn = _replay("s-1", {"question": "lệ phí bao nhiêu", "reply": "…", "intent": "ask_fee", "fallback": False,
                           "sources": [source]})
    assert [s.id for s in turn.reply.sources] == ["1.014064"] and turn.contract()["sources"] == [source]
