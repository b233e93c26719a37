"""The conversation state through Rasa as `serve` runs it (POST /api/chat, NLU, rules, custom actions): follow-ups in
ordinary words stay on the procedure, a pick by number takes the offered variant, a named procedure moves on."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from bot.service import Assistant

# (message, the procedure the reply must be about); None: the option the previous reply offered second
CONVERSATIONS: dict[str, list[tuple[str, str | None]]] = {
    "ordinary words, then a pick by number, then more ordinary words": [
        ("làm lại cccd ở đâu", "1.014064"),
        ("cái thứ 2", None),
        ("thế phải mang theo những loại giấy nào", "2.001194"),
        ("khoảng mấy hôm thì xong", "2.001194"),
    ],
    "a follow-up sharing a word with other titles, then another procedure named": [
        ("cấp phiếu lý lịch tư pháp", "3.000333"),
        ("Điều kiện để được cấp là gì?", "3.000333"),
        ("nop tren cong dich vu cong duoc khong", "3.000333"),
        ("còn đăng ký kết hôn thì sao?", "1.000894"),
        ("mất bao lâu", "1.000894"),
    ],
}


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_the_procedure_under_discussion_holds_through_rasa(name: str, rasa_client: TestClient,
                                                          rasa_assistant: Assistant) -> None:  # fmt: skip
    session = f"followups-{uuid.uuid4().hex[:8]}"
    offered: list[str] = []
    for number, (text, expected) in enumerate(CONVERSATIONS[name], 1):
        r = rasa_client.post("/api/chat", json={"session_id": session, "text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        if expected is None:
            assert len(offered) >= 2, "the reply before a pick by number offered no second option"
            expected = offered[1]
        assert not body["fallback"] and body["sources"], f"turn {number} ({text!r}): {body['reply'][:120]}"
        assert body["sources"][0]["id"] == expected, f"turn {number} ({text!r}): {body['sources'][0]['title']}"
        offered = rasa_assistant.store.load(session).options
        assert rasa_assistant.dialogue is not None
        assert rasa_assistant.dialogue.degraded_turns == 0  # answered by Rasa's actions, not the fallback path
