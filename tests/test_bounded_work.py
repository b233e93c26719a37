"""Bounded work per request, over a real HTTP server (uvicorn on a loopback port): every text is cut or refused at
max_input_chars before masking or any model sees it, bad input gets a clear reply, and a slow turn — in masking, in
the engine or in Rasa — never holds the serving event loop (GET /health answers meanwhile)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

import bot.service
from bot.api import MAX_BODY_BYTES, create_app
from bot.config import Settings
from bot.engine import Engine
from bot.service import CUT_MARKER, Assistant
from tests.channel_peers import free_port

# 60,000-character shapes an attacker would send: the ones that made the address and phone patterns backtrack,
# and the ones that are costly per character (multi-byte, mixed scripts, one long word)
HOSTILE = {
    "digits-and-spaces": "1" + " " * 59_998 + "x",
    "slashes": "12/" * 20_000,
    "phone-like-runs": ("0912 345 678 so 12 duong Le Loi 25/3/4 " * 2_000)[:60_000],
    "at-signs": "a@" * 30_000,
    "one-long-word": "a" * 60_000,
    "emoji": "🙂" * 60_000,
    "mixed-scripts": ("đăng ký 結婚 регистрация تسجيل " * 3_000)[:60_000],
}


def busy(seconds: float) -> None:
    """Real CPU work (the interpreter busy, not asleep) for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(200))


@contextmanager
def running(app) -> Iterator[str]:
    """``app`` served by uvicorn (with its lifespan) in a thread on a free loopback port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def quiet(settings: Settings) -> Settings:
    """The test settings without the phone line (the other test modules' servers may hold its port)."""
    return settings.model_copy(update={"callbot": False})


@pytest.fixture(scope="module")
def url(settings: Settings, assistant: Assistant) -> Iterator[str]:
    with running(create_app(quiet(settings), assistant)) as base:
        yield base


def chat_body(session_id: str, text: object) -> bytes:
    """The JSON a client sends, non-ASCII as \\u escapes (legal JSON; the only way to send a lone surrogate)."""
    return json.dumps({"session_id": session_id, "text": text}).encode()


def post_raw(url: str, text: object, session_id: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/api/chat", content=chat_body(session_id, text), headers={"content-type": "application/json"},
                      timeout=timeout)


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_a_hostile_60000_character_text_gets_a_clear_answer_and_only_its_bounded_start_is_stored(
        url: str, assistant: Assistant, shape: str) -> None:
    text = HOSTILE[shape]
    assert len(text) == 60_000
    session = f"hostile-{shape}"
    body_bytes = len(chat_body(session, text))
    r = post_raw(url, text, session)
    if body_bytes > MAX_BODY_BYTES:  # multi-byte shapes: refused by size before anything reads them
        assert r.status_code == 413, r.text
        assert assistant.store.history(session) == []
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert "dài quá" in body["reply"] and body["fallback"] is True
    limit = assistant.settings.max_input_chars
    assert len(body["question"]) <= limit
    [stored] = assistant.store.history(session)
    assert len(stored["question"]) <= limit and stored["question"].endswith(CUT_MARKER)
    assert stored["outcome"] == "invalid"


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_every_hostile_shape_is_bounded_by_the_assistant_itself(assistant: Assistant, shape: str) -> None:
    """Channels that do not go through the HTTP body limit (Telegram, Zalo, speech) reach Assistant.turn directly."""
    session = f"direct-{shape}"
    turn = asyncio.run(assistant.turn(session, HOSTILE[shape], "zalo"))
    assert "dài quá" in turn.reply.reply and turn.reply.fallback
    [stored] = assistant.store.history(session)
    assert len(stored["question"]) <= assistant.settings.max_input_chars


def test_a_phone_number_split_by_the_cut_is_not_stored_in_part(assistant: Assistant) -> None:
    limit = assistant.settings.max_input_chars
    prefix = "cho em hỏi thủ tục đăng ký khai sinh " * 200
    text = prefix[: limit - 10] + " 0912 345 678 gọi lại giúp em" + " nhé" * 100
    turn = asyncio.run(assistant.turn("cut-phone", text, "api"))
    assert "dài quá" in turn.reply.reply
    [stored] = assistant.store.history("cut-phone")
    assert "0912" not in stored["question"] and "345" not in stored["question"]
    assert stored["question"].startswith("cho em hỏi thủ tục đăng ký khai sinh")


def test_personal_data_in_an_over_long_message_is_masked_in_what_is_kept(assistant: Assistant) -> None:
    text = "Em tên Lan, số điện thoại 0912 345 678, căn cước 001203001234, hỏi đăng ký kết hôn. " + "x " * 5_000
    turn = asyncio.run(assistant.turn("long-pii", text, "web"))
    assert "dài quá" in turn.reply.reply
    [stored] = assistant.store.history("long-pii")
    assert "0912 345 678" not in stored["question"] and "001203001234" not in stored["question"]
    assert "[số điện thoại]" in stored["question"]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (None, "chưa nhập"),
        (12345, "chưa nhập"),
        (b"\xff\xfe\x00\x01\x02\x03", "bằng chữ"),
        ("🙂🎉🙏" * 10, "bằng chữ"),
        ("\x00" * 50, "bằng chữ"),
        ("\ud800\udc00\ud800", "bằng chữ"),
    ],
)
def test_what_is_not_text_gets_a_clear_reply_not_an_exception(assistant: Assistant, text: object,
                                                                phrase: str) -> None:
    turn = asyncio.run(assistant.turn("not-text", text, "api"))
    assert phrase in turn.reply.reply and turn.reply.fallback


@pytest.mark.parametrize(
    "text",
    ["đăng ký kết hôn\x00 cần giấy tờ gì", "lệ phí đăng ký khai sinh \ud800", "đăng ký kết hôn 結婚 регистрация ở đâu"],
)
def test_a_question_with_stray_control_or_surrogate_characters_is_answered_over_http(url: str, assistant: Assistant,
                                                                                      text: str) -> None:
    """A NUL (which PostgreSQL's text type refuses) or a lone surrogate (not encodable) no longer reaches the store
    or the JSON response: they become U+FFFD and the question is answered."""
    r = post_raw(url, text, "stray-chars")
    assert r.status_code == 200, r.text
    assert r.json()["reply"].strip()
    assert "\x00" not in r.json()["question"]
    stored = assistant.store.history("stray-chars")[-1]["question"]
    assert "\x00" not in stored and all(not 0xD800 <= ord(c) <= 0xDFFF for c in stored)


def test_the_cli_and_eval_path_refuses_an_over_long_question_without_echoing_it(assistant: Assistant) -> None:
    reply, _ = assistant.ask("đăng ký kết hôn " * 10_000)
    assert "dài quá" in reply.reply and reply.outcome == "invalid"
    assert len(reply.question) <= assistant.settings.max_input_chars


def _slowly(original: Callable, started: threading.Event, finished: threading.Event,
            seconds: float = 2.0) -> Callable:
    """``original`` with ``seconds`` of real CPU work first, on its first call only."""
    calls = []

    def slow(*args, **kwargs):
        if calls:
            return original(*args, **kwargs)
        calls.append(1)
        started.set()
        try:
            busy(seconds)
            return original(*args, **kwargs)
        finally:
            finished.set()

    return slow


def _health_answers_while_the_chat_is_slow(url: str, text: str, started: threading.Event,
                                           finished: threading.Event) -> dict:
    with ThreadPoolExecutor(1) as pool:
        chat = pool.submit(post_raw, url, text, f"slow-{time.monotonic_ns()}")
        assert started.wait(60), "the slow step never ran"
        health = httpx.get(f"{url}/health", timeout=60)
        answered_first = not finished.is_set()
        assert health.status_code == 200
        assert answered_first, "GET /health waited for the slow turn"
        reply = chat.result(timeout=120)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_health_answers_while_masking_is_slow(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started, finished = threading.Event(), threading.Event()
    monkeypatch.setattr(bot.service, "mask", _slowly(bot.service.mask, started, finished))
    body = _health_answers_while_the_chat_is_slow(url, "gọi 0912 345 678, đăng ký kết hôn cần giấy tờ gì",
                                                  started, finished)
    assert "0912 345 678" not in body["question"]


def test_health_answers_while_the_engine_is_slow(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started, finished = threading.Event(), threading.Event()
    monkeypatch.setattr(Engine, "answer", _slowly(Engine.answer, started, finished))
    body = _health_answers_while_the_chat_is_slow(url, "lệ phí đăng ký khai sinh", started, finished)
    assert body["sources"][0]["id"] == "1.001193"


# ----- with the dialogue layer (loads TensorFlow and the Rasa model: the slow part of this module)
@pytest.fixture(scope="module")
def rasa_assistant(settings: Settings, trained_model, assistant: Assistant) -> Iterator[Assistant]:
    from bot.dialogue import actions

    a = Assistant(settings, progress=False, dialogue=True)
    assert a.dialogue is not None, a.dialogue_error
    yield a
    a.close()
    actions.bind(assistant)


@pytest.fixture(scope="module")
def rasa_url(settings: Settings, rasa_assistant: Assistant) -> Iterator[str]:
    with running(create_app(quiet(settings), rasa_assistant)) as base:
        yield base


def test_health_answers_while_rasa_handles_a_slow_turn(rasa_url: str, rasa_assistant: Assistant,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    processor = rasa_assistant.dialogue.agent.processor
    started, finished = threading.Event(), threading.Event()
    monkeypatch.setattr(processor, "_predict_next_with_tracker",
                        _slowly(processor._predict_next_with_tracker, started, finished, seconds=1.5))
    before = rasa_assistant.dialogue.degraded_turns
    body = _health_answers_while_the_chat_is_slow(rasa_url, "lệ phí đăng ký kết hôn", started, finished)
    assert body["intent"] == "ask_fee" and body["sources"][0]["id"] == "1.000894"
    assert rasa_assistant.dialogue.degraded_turns == before  # answered through Rasa, not the engine's fallback


def test_one_conversation_keeps_its_order_and_others_go_on_while_rasa_is_busy(rasa_url: str) -> None:
    """Turns of several citizens at once through the dialogue's own loop: each conversation's follow-up still
    refers to its own first question (Rasa's lock store orders one session's messages)."""
    first = {"kethon": ("đăng ký kết hôn cần giấy tờ gì", "1.000894"),
             "khaisinh": ("đăng ký khai sinh cần giấy tờ gì", "1.001193")}

    def conversation(name: str) -> list[str]:
        question, _ = first[name]
        with httpx.Client(base_url=rasa_url, timeout=60) as client:
            codes = []
            for text in (question, "thế còn lệ phí?"):
                r = client.post("/api/chat", json={"session_id": f"order-{name}", "text": text})
                assert r.status_code == 200, r.text
                codes.append(r.json()["sources"][0]["id"] if r.json()["sources"] else None)
            return codes

    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(first, pool.map(conversation, first), strict=True))
    for name, (_, code) in first.items():
        assert results[name] == [code, code], name


def test_a_turn_being_stored_when_the_time_runs_out_is_answered_once(rasa_assistant: Assistant,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa has answered and the turn is being stored (a slow database) when the dialogue timeout expires: its reply
    stands — no second answer from the engine, one turn in the log — and the conversation's lock is held until the
    turn is stored, so the next message of the conversation is logged after it."""
    record = rasa_assistant.store.record
    timeout = rasa_assistant.settings.dialogue_timeout_s

    def slow_record(*args, **kwargs) -> None:  # ConversationStore.record's arguments
        time.sleep(1.5)
        record(*args, **kwargs)

    monkeypatch.setattr(rasa_assistant.settings, "dialogue_timeout_s", 0.75)
    monkeypatch.setattr(rasa_assistant.store, "record", slow_record)
    session = f"slow-store-{time.time_ns()}"

    async def run() -> tuple:
        first = await rasa_assistant.turn(session, "lệ phí đăng ký kết hôn", "api")
        # the next turn stores at normal speed, and has the usual time to wait for the lock the first still holds
        monkeypatch.setattr(rasa_assistant.store, "record", record)
        monkeypatch.setattr(rasa_assistant.settings, "dialogue_timeout_s", timeout)
        second = await rasa_assistant.turn(session, "cần giấy tờ gì", "api")
        return first, second

    first, second = asyncio.run(run())
    assert first.reply.intent == "ask_fee" and first.reply.sources[0].id == "1.000894"
    assert [t["question"] for t in rasa_assistant.store.history(session)] == ["lệ phí đăng ký kết hôn",
                                                                               "cần giấy tờ gì"]
    assert second.reply.sources and second.reply.sources[0].id == "1.000894"


def test_a_closed_dialogue_layer_leaves_the_engine_answering(rasa_assistant: Assistant) -> None:
    """Last in this module: it stops the dialogue's thread."""
    thread = rasa_assistant.dialogue._thread
    assert thread is not None and thread.is_alive()
    rasa_assistant.close()
    assert not thread.is_alive()
    turn = asyncio.run(rasa_assistant.turn("after-close", "lệ phí đăng ký kết hôn", "api"))
    assert turn.reply.sources[0].id == "1.000894"
    assert rasa_assistant.dialogue_status()["status"] == "off"
