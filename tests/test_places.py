"""Old and new places (bot.places) and what the assistant says about them (bot.answer.places): real names of the
former Bà Rịa - Vũng Tàu and Bình Dương and elsewhere, read against the mapping underthesea ships. Plain
functions, no index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.answer.places import district_era_note, district_era_wording, place_note
from bot.knowledge.plans import load_plan_documents
from bot.knowledge.procedures import load_procedures
from bot.places import REORGANISED_ON, find_places, mapping_metadata, place_in, successor_province

ROOT = Path(__file__).resolve().parents[1]
HCM = "Thành phố Hồ Chí Minh"


@pytest.fixture(scope="module")
def records() -> dict:
    return {p.code: p for p in load_procedures(ROOT / "knowledge")}


# ------------------------------------------------------------------------------------------------ readings
@pytest.mark.parametrize(
    ("text", "named", "now"),
    [
        ("Tôi ở phường 10, thành phố Vũng Tàu", "Phường 10, Thành phố Vũng Tàu, Tỉnh Bà Rịa - Vũng Tàu",
         f"Phường Rạch Dừa, {HCM}"),
        ("o xa binh ba huyen chau duc", "Xã Bình Ba, Huyện Châu Đức, Tỉnh Bà Rịa - Vũng Tàu", f"Xã Ngãi Giao, {HCM}"),
        ("phuong tan hoa thi xa phu my", "Phường Tân Hòa, Thành phố Phú Mỹ, Tỉnh Bà Rịa - Vũng Tàu",
         f"Phường Tân Hải, {HCM}"),
        ("huyện Côn Đảo", "Huyện Côn Đảo, Tỉnh Bà Rịa - Vũng Tàu", f"Đặc khu Côn Đảo, {HCM}"),
        ("xã Vĩnh Hòa, huyện Phú Giáo, Bình Dương", "Xã Vĩnh Hòa, Huyện Phú Giáo, Tỉnh Bình Dương", f"Xã Phước Hòa, {HCM}"),
        # "thị xã Tân Uyên" became a city in the data: the citizen's older unit word still finds it
        ("phường Tân Phước Khánh, thị xã Tân Uyên", "Phường Tân Phước Khánh, Thành phố Tân Uyên, Tỉnh Bình Dương",
         f"Phường Tân Khánh, {HCM}"),
        ("p. Bến Nghé, q.1, tp.hcm", f"Phường Bến Nghé, Quận 1, {HCM}", f"Phường Sài Gòn, {HCM}"),
        ("phường Phúc Xá, quận Ba Đình, Hà Nội", "Phường Phúc Xá, Quận Ba Đình, Thành phố Hà Nội",
         "Phường Hồng Hà, Thành phố Hà Nội"),
        ("xã Vị Tân thành phố Vị Thanh tỉnh Hậu Giang", "Xã Vị Tân, Thành phố Vị Thanh, Tỉnh Hậu Giang",
         "Phường Vị Tân, Thành phố Cần Thơ"),
        ("Làm sổ đỏ ở Bình Dương", "Tỉnh Bình Dương", HCM),
        ("brvt", "Tỉnh Bà Rịa - Vũng Tàu", HCM),
    ],
)
def test_an_old_unit_that_is_now_one_unit_is_named_as_it(text: str, named: str, now: str) -> None:
    place = place_in(text)
    assert place is not None
    assert (place.named, place.now, place.status, place.era) == (named, now, "converted", "old")
    assert place.changed


def test_todays_units_are_kept_as_they_are() -> None:
    place = place_in("Phường Sài Gòn, TP HCM")
    assert (place.status, place.era, place.now) == ("current", "new", f"Phường Sài Gòn, {HCM}")
    assert not place.changed and place_note(place) == ""
    assert place_in("Hà Nội").status == "current"  # a province that did not change


def test_huyen_long_dien_is_never_read_as_con_dao() -> None:
    """underthesea's own converter turns this address into "Đặc khu Côn Đảo" (another former district): the data
    lists no Huyện Long Điền (it was merged into Huyện Long Đất before the data's reference date)."""
    from underthesea import convert_address

    text = "huyện Long Điền, tỉnh Bà Rịa - Vũng Tàu"
    assert "Côn Đảo" in convert_address(text).converted  # the guess this module exists to avoid
    place = place_in(f"Nhà tôi ở {text}, làm căn cước ở đâu?")
    assert (place.status, place.now, place.province_now) == ("unlisted", None, HCM)
    assert place.namesakes == ("Thị trấn Long Điền, Huyện Long Đất",)
    note = place_note(place)
    assert "Côn Đảo" not in note and "nay thuộc Xã" not in note
    assert "không còn cấp huyện" in note and "Thành phố Hồ Chí Minh" in note
    assert "xã, phường hoặc thị trấn" in note  # the citizen is asked for the commune


def test_a_former_district_lists_the_communes_its_area_is_now_in() -> None:
    place = place_in("Thành phố Thủ Dầu Một nay gồm những phường nào")
    assert (place.status, place.level, place.now, place.province_now) == ("several", "district", None, HCM)
    assert place.options == ("Phường Bình Dương", "Phường Chánh Hiệp", "Phường Phú An", "Phường Phú Lợi",
                             "Phường Thủ Dầu Một")
    note = place_note(place)
    assert "không còn cấp huyện" in note and "5 xã, phường của Thành phố Hồ Chí Minh" in note
    assert "Phường Phú Lợi" in note and note.endswith("thì cho mình biết nhé.")
    quan7 = place_in("quận 7")
    assert quan7.options == ("Phường Phú Thuận", "Phường Tân Hưng", "Phường Tân Mỹ", "Phường Tân Thuận")


def test_a_commune_split_over_several_new_ones_is_never_given_one() -> None:
    place = place_in("phường Chánh Mỹ tp Thủ Dầu Một")
    assert (place.status, place.now) == ("split", None)
    assert place.options == ("Phường Chánh Hiệp", "Phường Thủ Dầu Một")
    assert "nay thuộc Phường" not in place_note(place)
    # the data knows only part of where Xã Thanh Tuyền went: said so
    partial = place_in("xã Thanh Tuyền huyện Dầu Tiếng")
    assert (partial.status, partial.options, partial.partial) == ("split", ("Phường Tây Nam",), True)
    assert "phần còn lại mà dữ liệu không ghi" in place_note(partial)


def test_the_same_commune_name_in_several_provinces_is_asked_about() -> None:
    place = place_in("Tôi ở xã Tân Hiệp")
    assert (place.status, place.now) == ("ambiguous", None)
    assert "Xã Tân Hiệp, Huyện Phú Giáo, Tỉnh Bình Dương" in place.options
    assert "Xã Tân Hiệp, Huyện Hóc Môn, Thành phố Hồ Chí Minh" in place.options
    assert "tỉnh, thành phố nào" in place_note(place)
    # with its province it is one commune
    assert place_in("xã Tân Hiệp, Bình Dương").now == f"Xã Phước Thành, {HCM}"
    # "thị xã Phú Mỹ" typed without diacritics is also Huyện Phù Mỹ of Bình Định: asked
    phu_my = place_in("tx phu my")
    assert phu_my.status == "ambiguous"
    assert set(phu_my.options) == {"Thành phố Phú Mỹ, Tỉnh Bà Rịa - Vũng Tàu", "Huyện Phù Mỹ, Tỉnh Bình Định"}


def test_an_old_commune_written_with_todays_province_is_read_in_all_the_old_provinces_it_absorbed() -> None:
    assert place_in("xã Bình Ba, TP HCM").now == f"Xã Ngãi Giao, {HCM}"  # a commune of the former Bà Rịa - Vũng Tàu
    # Hồ Chí Minh City today includes the former Bình Dương: its Xã Tân Hiệp is one of two
    place = place_in("xã Tân Hiệp, Thành phố Hồ Chí Minh")
    assert place.status == "ambiguous"
    assert set(place.options) == {"Xã Tân Hiệp, Huyện Hóc Môn, Thành phố Hồ Chí Minh",
                                  "Xã Tân Hiệp, Huyện Phú Giáo, Tỉnh Bình Dương"}


def test_a_later_turn_completes_the_place_left_open() -> None:
    open_place = place_in("tôi ở xã Tân Hiệp")
    assert place_in("Bình Dương", open_place).now == f"Xã Phước Thành, {HCM}"
    assert place_in("huyen phu giao", open_place).now == f"Xã Phước Thành, {HCM}"
    district = place_in("Tôi ở quận 7")
    assert place_in("phường Tân Thuận Đông", district).now == f"Phường Tân Thuận, {HCM}"
    # another place altogether replaces it
    assert place_in("Hà Nội", open_place).named == "Thành phố Hà Nội"


def test_a_commune_the_data_lists_without_a_new_one_gives_only_its_province() -> None:
    place = place_in("xã Kiến Bình huyện Tân Thạnh Long An")
    assert (place.status, place.now, place.province_now) == ("unmapped", None, "Tỉnh Tây Ninh")
    assert "không ghi xã, phường mới" in place_note(place)


@pytest.mark.parametrize(
    "text",
    ["có hai phòng", "cơ quan 1 cửa ở đâu", "cái ở xã", "thủ tục cấp tỉnh", "đăng ký kết hôn cần giấy tờ gì",
     "huyện nào cũng được"],
)
def test_words_that_only_look_like_places_are_not_places(text: str) -> None:
    assert find_places(text) == []


def test_a_place_round_trips_through_the_conversation_state() -> None:
    from bot.places import Place

    place = place_in("phường Chánh Mỹ tp Thủ Dầu Một")
    assert Place.from_dict(place.to_dict()) == place
    assert Place.from_dict(None) is None


def test_reading_a_long_message_full_of_unit_words_stays_cheap() -> None:
    find_places("x")  # the data, loaded once
    hostile = ("phường xã huyện quận tỉnh thành phố tp q1 p2 Bình Dương Vũng Tàu " * 40)[:2000]
    started = time.perf_counter()
    find_places(hostile)
    assert time.perf_counter() - started < 0.5  # ~20 ms on 2 cores; a quadratic reading would take seconds


# ------------------------------------------------------------------------------------------------ the data
def test_the_mapping_is_the_one_documented_in_provenance() -> None:
    meta = mapping_metadata()
    assert (meta["source"], meta["version"], meta["effective_date"]) == ("vietnamadminunits", "1.0.4", REORGANISED_ON)
    assert (meta["old_provinces"], meta["new_provinces"]) == (63, 34)
    provenance = (ROOT / "knowledge" / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "underthesea" in provenance and "9.5.0" in provenance and "vietnamadminunits 1.0.4" in provenance


def test_plan_metadata_names_the_successor_the_data_gives() -> None:
    docs = load_plan_documents(ROOT / "knowledge")
    assert {d.province for d in docs} == {"Bà Rịa - Vũng Tàu", "Bình Dương"}
    for doc in docs:
        assert doc.successor == successor_province(doc.province) == HCM
        assert doc.successor_since == REORGANISED_ON
        assert "tỉnh" in doc.issuer.lower()  # the issuing body as it was


# ------------------------------------------------------------------------------------------------ records
def test_records_that_still_name_the_district_level_are_found(records: dict) -> None:
    assert district_era_wording(records["1.001613"]) == "Bảo hiểm xã hội cấp huyện"
    assert district_era_wording(records["1.010385"]) == "thực hiện tại cấp huyện"
    assert district_era_wording(records["1.001669"]) == "UBND cấp huyện"
    # "Phòng cảnh sát quản lý …" folds to "quan ly": not a district ("quận")
    assert district_era_wording(records["2.001194"]) is None
    assert district_era_wording(records["1.014064"]) is None


def test_the_note_on_district_wording_cites_the_records_own_level_and_names_no_office(records: dict) -> None:
    note = district_era_note(records["1.001613"], place_in("phường Bình Thắng tp Dĩ An"))
    assert "“Bảo hiểm xã hội cấp huyện”" in note
    assert "Theo trường “Cấp thực hiện” của chính hồ sơ này, thủ tục nay thực hiện ở cấp tỉnh, cấp xã." in note
    assert "bộ phận một cửa" in note and "(Phường Đông Hòa, Thành phố Hồ Chí Minh)" in note
    assert "mã 1.001613" in note
    assert district_era_note(records["1.014064"], None) is None
