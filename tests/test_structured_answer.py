"""The structured ``answer`` of the contract, places in conversations, "where" answers after the 2025 reorganisation
and the plans of former provinces — through the engine, POST /api/chat and the OpenAPI schema, on real records of
the test index (tests/conftest.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from bot.domain import ConversationState

HCM = "Thành phố Hồ Chí Minh"


def turns(engine, *texts: str):  # the engine fixture; (reply, state) of the last turn
    state = ConversationState()
    reply = None
    for text in texts:
        reply, state = engine.answer(text, state)
    return reply, state


# ------------------------------------------------------------------------------------------------ the fields
def test_the_answer_carries_the_records_fields_and_null_where_it_has_none(engine) -> None:
    reply, _ = turns(engine, "lệ phí cấp lại căn cước bao nhiêu")
    proc = engine.kb.procedures["1.014064"]
    answer = reply.answer
    assert (answer["procedure"], answer["title"], answer["url"]) == ("1.014064", proc.title, proc.url)
    assert answer["aspect"] == "fee" and answer["aspects"] == ["fee"]
    fields = answer["fields"]
    # the fee per channel as the record writes it; the post channel gives no fee: left out, not invented
    assert [f["channel"] for f in fields["fee"]] == ["in_person", "online"]
    assert fields["fee"][0]["value"].startswith("70,000 Việt Nam Đồng")
    assert [t["value"] for t in fields["time"]] == ["7 Ngày làm việc"] * 3
    assert [d["name"] for d in fields["documents"]] == [d.name for d in proc.documents]
    assert fields["steps"] == proc.steps and len(fields["legal_basis"]) == len(proc.legal_basis)
    assert fields["online"] is True
    assert fields["conditions"] is None  # the record states none
    where = fields["where"]
    assert where["levels"] == ["commune"] and where["agency"] == "Công an cấp Xã"
    assert where["receiving_address"] is None and where["district_wording"] is None and where["note"] is None
    assert answer["place"] is None


def test_replies_not_about_one_procedure_have_no_answer(engine) -> None:
    for text in ("thời tiết hôm nay thế nào", "xin chào", "mục tiêu chuyển đổi số của Bình Dương năm 2025"):
        reply, _ = turns(engine, text)
        assert reply.answer is None, text
        assert reply.contract()["answer"] is None


# ------------------------------------------------------------------------------------------------ places
def test_an_old_address_is_explained_once_and_kept_for_the_next_turns(engine) -> None:
    reply, state = turns(engine, "Tôi ở phường Bến Nghé, quận 1 thì làm lại căn cước ở đâu?")
    assert reply.sources[0].id == "1.014064"
    note = f"Phường Bến Nghé, Quận 1, {HCM} (trước ngày 01/7/2025) nay thuộc Phường Sài Gòn, {HCM}."
    assert note in reply.reply and reply.reply.count("Phường Sài Gòn") == 1
    assert reply.reply.index("Cấp thực hiện: cấp xã.") < reply.reply.index(note)
    assert reply.answer["place"]["now"] == f"Phường Sài Gòn, {HCM}"
    assert state.place["named"] == f"Phường Bến Nghé, Quận 1, {HCM}"

    follow_up, later = engine.answer("còn lệ phí thì sao?", state)
    assert follow_up.sources[0].id == "1.014064"
    assert "trước ngày 01/7/2025" not in follow_up.reply  # said once
    assert follow_up.answer["place"]["now"] == f"Phường Sài Gòn, {HCM}"  # still known
    where, _ = engine.answer("nộp ở đâu?", later)
    assert "Xã, phường hiện nay của địa chỉ bạn nêu: Phường Sài Gòn, Thành phố Hồ Chí Minh." in where.reply


def test_huyen_long_dien_gets_the_commune_question_not_con_dao(engine) -> None:
    reply, state = turns(engine, "Nhà tôi ở huyện Long Điền, tỉnh Bà Rịa - Vũng Tàu, đăng ký kết hôn ở đâu?")
    assert reply.sources[0].id == "1.000894" and not reply.fallback
    assert "Côn Đảo" not in reply.reply
    assert "không còn cấp huyện" in reply.reply and "Tỉnh Bà Rịa - Vũng Tàu nay thuộc Thành phố Hồ Chí Minh" in reply.reply
    assert "Bạn cho mình biết xã, phường hoặc thị trấn cũ" in reply.reply
    assert reply.answer["place"]["status"] == "unlisted" and reply.answer["place"]["now"] is None
    # the commune named next is read and the procedure's "where" is answered for it
    after, _ = engine.answer("thị trấn Long Hải", state)
    assert after.sources[0].id == "1.000894"
    assert f"nay thuộc Xã Long Hải, {HCM}" in after.reply and "Cấp thực hiện: cấp xã." in after.reply


def test_a_commune_name_of_several_provinces_is_asked_then_completed(engine) -> None:
    reply, state = turns(engine, "đăng ký khai tử ở đâu", "tôi ở xã Tân Hiệp")
    assert reply.sources[0].id == "1.000656"  # the procedure under discussion is kept
    assert "Có 10 nơi tên “xã Tân Hiệp”" in reply.reply and "tỉnh, thành phố nào" in reply.reply
    assert state.place["status"] == "ambiguous"
    reply, state = engine.answer("Bình Dương", state)
    assert reply.sources[0].id == "1.000656"
    assert f"Xã Tân Hiệp, Huyện Phú Giáo, Tỉnh Bình Dương (trước ngày 01/7/2025) nay thuộc Xã Phước Thành, {HCM}" \
        in reply.reply
    assert state.place["now"] == f"Xã Phước Thành, {HCM}"


def test_a_former_district_of_binh_duong_lists_its_communes(engine) -> None:
    reply, state = turns(engine, "o huyen tan uyen binh duong dang ky khai sinh o dau")
    assert reply.sources[0].id == "1.001193"
    assert "7 xã, phường của Thành phố Hồ Chí Minh: Phường Bình Cơ" in reply.reply
    assert reply.answer["place"]["options"][:2] == ["Phường Bình Cơ", "Phường Bình Dương"]
    reply, _ = engine.answer("tôi ở phường Tân Hiệp", state)  # completed by the district said before
    assert f"Phường Tân Hiệp, Thành phố Tân Uyên, Tỉnh Bình Dương (trước ngày 01/7/2025) nay thuộc Phường Tân Hiệp, {HCM}" \
        in reply.reply


def test_a_question_about_a_place_alone_is_answered_from_the_mapping(engine) -> None:
    reply, state = turns(engine, "phường Long Toàn tp Bà Rịa giờ là phường gì")
    assert not reply.fallback and reply.intent == "inform_place" and reply.answer is None
    assert f"nay thuộc Phường Bà Rịa, {HCM}" in reply.reply
    assert state.place["now"] == f"Phường Bà Rịa, {HCM}"
    reply, _ = turns(engine, "quận 7 bây giờ chia thành phường nào")
    assert reply.outcome == "clarify" and "Phường Tân Thuận" in reply.reply


# ------------------------------------------------------------------------------------------------ where, now
def test_a_record_that_still_names_the_district_level_is_explained_not_guessed(engine) -> None:
    reply, _ = turns(engine, "Đăng ký giám hộ có yếu tố nước ngoài làm ở đâu?")
    assert reply.sources[0].id == "1.001669"
    text = reply.reply
    assert text.startswith("Thủ tục: Thủ tục đăng ký giám hộ có yếu tố nước ngoài (mã 1.001669).\nCấp thực hiện: cấp xã.")
    assert "hồ sơ vẫn ghi “UBND cấp huyện”" in text and "không còn từ ngày 01/7/2025" in text
    assert "Theo trường “Cấp thực hiện” của chính hồ sơ này, thủ tục nay thực hiện ở cấp xã." in text
    assert "bộ phận một cửa (Trung tâm Phục vụ hành chính công) của xã, phường nơi bạn ở" in text
    where = reply.answer["fields"]["where"]
    assert where["levels"] == ["commune"] and where["district_wording"] == "UBND cấp huyện"
    assert where["note"] in text


def test_where_names_the_level_of_the_record(engine) -> None:
    for text, code, level in (("Cấp lại thẻ căn cước thực hiện tại cấp tỉnh nộp ở đâu", "2.001194", "cấp tỉnh"),
                              ("Cấp lại thẻ căn cước thực hiện tại cấp trung ương nộp ở đâu", "1.000757",
                               "cấp trung ương (bộ, ngành)")):  # fmt: skip
        reply, _ = turns(engine, text)
        assert reply.sources[0].id == code
        assert f"Cấp thực hiện: {level}." in reply.reply
        assert "cấp huyện" not in reply.reply


# ------------------------------------------------------------------------------------------------ plans
def test_plans_of_a_former_province_say_it_is_part_of_ho_chi_minh_city(engine) -> None:
    reply, _ = turns(engine, "mục tiêu chuyển đổi số của Bà Rịa - Vũng Tàu năm 2025")
    assert reply.intent == "ask_plan"
    assert "Ủy ban nhân dân tỉnh Bà Rịa - Vũng Tàu" in reply.reply or "Ban Chỉ đạo Chuyển đổi số tỉnh" in reply.reply
    assert ("Lưu ý: tỉnh Bà Rịa - Vũng Tàu là một phần của Thành phố Hồ Chí Minh từ ngày 01/7/2025; đây là văn bản "
            "của tỉnh trước khi sắp xếp đơn vị hành chính") in reply.reply
    assert reply.sources[0].title.endswith("— tỉnh Bà Rịa - Vũng Tàu cũ, nay thuộc Thành phố Hồ Chí Minh")
    doc = engine.kb.documents[reply.sources[0].id.split("#")[0]]
    assert (doc.province, doc.successor, doc.successor_since) == ("Bà Rịa - Vũng Tàu", HCM, "2025-07-01")


# ------------------------------------------------------------------------------------------------ over HTTP
def test_api_chat_returns_the_answer_and_keeps_the_place(client: TestClient) -> None:
    first = client.post("/api/chat", json={"session_id": "places-1", "text": "xa binh ba huyen chau duc dang ky ket hon o dau"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["answer"]["procedure"] == "1.000894"
    assert body["answer"]["place"]["now"] == f"Xã Ngãi Giao, {HCM}"
    assert body["answer"]["fields"]["where"]["levels"] == ["commune"]
    second = client.post("/api/chat", json={"session_id": "places-1", "text": "còn lệ phí thì sao?"}).json()
    assert second["answer"]["aspect"] == "fee"
    assert second["answer"]["place"]["now"] == f"Xã Ngãi Giao, {HCM}"  # the state held it
    declined = client.post("/api/chat", json={"session_id": "places-2", "text": "thời tiết hôm nay thế nào"}).json()
    assert declined["answer"] is None


def test_the_openapi_schema_documents_the_answer(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "answer" in schemas["ChatResponse"]["properties"]
    assert set(schemas["AnswerOut"]["properties"]) == {"procedure", "title", "url", "aspect", "aspects", "fields",
                                                       "place"}
    assert set(schemas["FieldsOut"]["properties"]) == {"documents", "fee", "time", "where", "steps", "conditions",
                                                       "legal_basis", "online"}
    assert set(schemas["PlaceOut"]["properties"]) >= {"named", "now", "status", "options"}
