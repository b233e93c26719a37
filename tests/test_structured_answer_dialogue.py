"""Through the conversation layer (Rasa with the engine-backed actions, as `serve` runs it): the structured
``answer`` reaches POST /api/chat and the place named in one turn is known in the next (it has no slot: the
actions read it from the conversation store)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.test_dialogue import send

HCM = "Thành phố Hồ Chí Minh"


def test_the_answer_and_the_place_survive_the_dialogue_layer(rasa_client: TestClient) -> None:
    post = send(rasa_client)
    first = post("places-rasa-1", "Tôi ở phường 10, thành phố Vũng Tàu, làm giấy khai sinh cho con ở đâu?")
    assert first["sources"][0]["id"] == "1.001193"
    assert first["answer"]["procedure"] == "1.001193"
    assert first["answer"]["place"]["now"] == f"Phường Rạch Dừa, {HCM}"
    assert f"nay thuộc Phường Rạch Dừa, {HCM}" in first["reply"]
    second = post("places-rasa-1", "còn lệ phí thì sao?")
    assert second["intent"] == "ask_fee"
    assert second["answer"]["place"]["now"] == f"Phường Rạch Dừa, {HCM}"  # kept between turns
    assert "trước ngày 01/7/2025" not in second["reply"]  # and not said again


def test_a_commune_left_open_is_completed_by_the_next_turn_through_rasa(rasa_client: TestClient) -> None:
    post = send(rasa_client)
    post("places-rasa-2", "đăng ký khai tử ở đâu")
    asked = post("places-rasa-2", "tôi ở xã Tân Hiệp")
    assert "tỉnh, thành phố nào" in asked["reply"]
    done = post("places-rasa-2", "huyện Phú Giáo")
    assert f"nay thuộc Xã Phước Thành, {HCM}" in done["reply"]
