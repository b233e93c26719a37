"""Rule-based entities of the NLU layer: localities (old addresses converted), variant facts, choices and
ratings, procedure names generated from the knowledge base. Plain functions, no Rasa model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.nlu.choices import find_option, find_score
from bot.nlu.entities import entity_values
from bot.nlu.facts import find_facts
from bot.nlu.generate import LOOKUP_FILE, render_lookups, write_lookups
from bot.nlu.localities import find_localities
from bot.nlu.procedure_names import ProcedureNameMatcher, base_name, procedure_names
from bot.text import load_lexicon

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "procedures_sample.jsonl"


def spans(text: str, entities: list[dict]) -> list[tuple[str, str]]:
    return [(text[e["start"] : e["end"]], e["value"]) for e in entities]


# ------------------------------------------------------------------------------------------------
# localities
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mention", "today"),
    [
        (
            "Tôi ở phường Bến Nghé, quận 1, TP HCM thì làm căn cước ở đâu?",
            "phường Bến Nghé, quận 1, TP HCM",
            "Phường Sài Gòn, Thành phố Hồ Chí Minh",
        ),
        (
            "toi o phuong ben nghe quan 1 tp hcm",
            "phuong ben nghe quan 1 tp hcm",
            "Phường Sài Gòn, Thành phố Hồ Chí Minh",
        ),
        ("p. Bến Nghé, q.1, tp.hcm", "p. Bến Nghé, q.1, tp.hcm", "Phường Sài Gòn, Thành phố Hồ Chí Minh"),
        (
            "nhà ở phường Phúc Xá, quận Ba Đình, Hà Nội",
            "phường Phúc Xá, quận Ba Đình, Hà Nội",
            "Phường Hồng Hà, Thành phố Hà Nội",
        ),
        ("phường 1 quận 3", "phường 1 quận 3", "Phường Bàn Cờ, Thành phố Hồ Chí Minh"),
    ],
)
def test_an_old_address_is_named_as_todays_commune(text, mention, today):
    [loc] = find_localities(text)
    assert text[loc.start : loc.end] == mention
    assert loc.value == today
    assert loc.old  # the old address it was converted from


def test_an_old_province_is_named_as_todays_province():
    [loc] = find_localities("Làm sổ đỏ ở Bình Dương mất bao lâu?")
    assert (loc.value, loc.old) == ("Thành phố Hồ Chí Minh", "Tỉnh Bình Dương")
    [loc] = find_localities("o vung tau thi doi bang lai o dau")
    assert loc.value == "Thành phố Hồ Chí Minh"


def test_an_address_in_todays_units_is_kept():
    [loc] = find_localities("Phường Sài Gòn, TP HCM")
    assert (loc.value, loc.old) == ("Phường Sài Gòn, Thành phố Hồ Chí Minh", "")


@pytest.mark.parametrize(
    "text",
    [
        "có hai phòng",  # "hai phòng" typed with diacritics is two rooms, not Hải Phòng
        "cơ quan 1 cửa ở đâu",  # "cơ quan" is no district
        "cái ở xã",  # a level, named with no commune
        "thủ tục cấp tỉnh",
        "ubnd xa Tan Hiep",  # a commune name shared by many provinces: ambiguous
    ],
)
def test_words_that_only_look_like_places_are_not_localities(text):
    assert find_localities(text) == []


# ------------------------------------------------------------------------------------------------
# facts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CCCD của tôi bị mất", [("bị mất", "lost")]),
        ("cccd bi mat thi lam lai mat bao lau", [("bi mat", "lost")]),  # the second "mat" is a duration
        ("Căn cước bị hỏng, rách góc", [("bị hỏng", "damaged"), ("rách", "damaged")]),
        ("Bằng lái hết hạn rồi", [("hết hạn", "expired")]),
        ("Làm căn cước cho con dưới 14 tuổi", [("dưới 14 tuổi", "under14")]),
        ("lam ho chieu cho be 8 tuoi", [("8 tuoi", "under14")]),
        ("đăng ký kết hôn với người nước ngoài", [("người nước ngoài", "foreign")]),
        ("lay chong Han Quoc", [("chong Han Quoc", "foreign")]),
        ("dk lai khai sinh cho me", [("dk lai", "re_register")]),
    ],
)
def test_facts_that_select_a_variant(text, expected):
    assert spans(text, find_facts(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Bố tôi mất, làm giấy chứng tử thế nào",  # a death, not a lost paper
        "mất bao nhiêu tiền",
        "thông tin bí mật",
        "mặt sau của thẻ",
        "ko hong",  # "hong" = "không" in teencode
        "tôi 30 tuổi",
    ],
)
def test_no_fact_where_the_words_mean_something_else(text):
    assert find_facts(text) == []


# ------------------------------------------------------------------------------------------------
# choices and ratings
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", "2"),
        ("số 2", "2"),
        ("cho mình cái thứ 2 nhé", "2"),
        ("cai thu hai", "2"),
        ("phương án 3", "3"),
        ("cái đầu tiên", "1"),
        ("cái cuối", "last"),
        ("cai o xa", "xa"),
        ("cái cấp tỉnh", "tinh"),
        ("cái ở phường", "xa"),
    ],
)
def test_option_chosen_by_number_ordinal_or_words(text, value):
    assert find_option(text)["value"] == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5 sao", "5"),
        ("năm sao", "5"),
        ("cho 10 điểm", "5"),
        ("8/10", "4"),
        ("rat hai long", "5"),
        ("hài lòng", "4"),
        ("bình thường", "3"),
        ("tam duoc", "3"),
        ("không hài lòng", "2"),
        ("tệ", "1"),
        ("rất tệ", "1"),
    ],
)
def test_rating_from_stars_points_or_words(text, value):
    assert find_score(text)["value"] == value


def test_no_rating_or_option_in_unrelated_text():
    assert find_score("cho tôi hỏi thủ tục") is None
    assert find_option("cho tôi hỏi thủ tục") is None


# ------------------------------------------------------------------------------------------------
# procedure names
# ------------------------------------------------------------------------------------------------


def fixture_titles() -> list[str]:
    titles = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("ten_thu_tuc"):
            titles.append(record["ten_thu_tuc"])
    return titles


@pytest.mark.parametrize(
    ("title", "base"),
    [
        ("Thủ tục đăng ký khai sinh", "đăng ký khai sinh"),
        ("Cấp đổi thẻ căn cước (thực hiện tại cấp trung ương)", "cấp đổi thẻ căn cước"),
        ("Thủ tục đăng ký kết hôn có yếu tố nước ngoài", "đăng ký kết hôn"),
        ("Khai thuế đối với cá nhân cho thuê bất động sản", "khai thuế"),
    ],
)
def test_base_name_drops_the_qualifiers_of_a_title(title, base):
    assert base_name(title) == base


def test_names_are_generated_from_titles_and_the_lexicon():
    names = procedure_names(fixture_titles(), load_lexicon())
    assert {"đăng ký khai sinh", "cấp đổi thẻ căn cước", "cấp đổi thẻ bảo hiểm y tế"} <= set(names.names)
    # everyday names of what the titles name, with the official wording as their value
    assert "cccd" in names.synonyms["thẻ căn cước"]
    assert "cccd" in names.names
    # long titles, titles that start with no administrative action, and generic verbs name nothing citizens type
    assert not any(len(n.split()) > 7 for n in names.names)
    assert not any(n.startswith(("tuyển chọn", "trình")) for n in names.names)
    assert "cấp giấy phép" not in names.names


def test_generated_lookup_table_is_valid_rasa_data():
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    names = procedure_names(fixture_titles(), load_lexicon())
    data = RasaYAMLReader().reads(render_lookups(names, 23))
    [table] = data.lookup_tables
    assert table["name"] == "procedure" and sorted(table["elements"]) == names.names
    assert data.entity_synonyms["cccd"] == "thẻ căn cước"


def test_committed_lookup_table_is_up_to_date_with_the_knowledge(tmp_path):
    path, _names = write_lookups(ROOT / "knowledge", tmp_path)
    committed = ROOT / "nlu_data" / LOOKUP_FILE
    assert path.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
        "run `python -m bot.nlu.generate` and commit nlu_data/lookups/"
    )


def test_procedure_names_are_found_with_or_without_diacritics_and_valued_officially():
    matcher = ProcedureNameMatcher(
        ["đăng ký kết hôn", "thẻ căn cước", "căn cước công dân", "cccd"],
        {"căn cước công dân": "thẻ căn cước", "cccd": "thẻ căn cước"},
    )
    text = "Làm lại căn cước công dân và dang ky ket hon"
    assert spans(text, matcher.find(text)) == [
        ("căn cước công dân", "thẻ căn cước"),  # the longest name wins
        ("dang ky ket hon", "đăng ký kết hôn"),
    ]
    assert spans("CCCD mat roi", matcher.find("CCCD mat roi")) == [("CCCD", "thẻ căn cước")]


def test_entity_values_prefer_rule_based_extractors():
    values = entity_values(
        [
            {"entity": "locality", "value": "quận 1", "start": 0, "end": 6, "extractor": "DIETClassifier"},
            {
                "entity": "locality",
                "value": "Thành phố Hồ Chí Minh",
                "start": 0,
                "end": 6,
                "extractor": "LocalityExtractor",
            },
            {"entity": "fact", "value": "lost", "start": 8, "end": 12, "extractor": "VariantFactExtractor"},
            {"entity": "fact", "value": "lost", "start": 8, "end": 12, "extractor": "DIETClassifier"},
            {"entity": "fact", "value": "dưới", "start": 14, "end": 18, "extractor": "DIETClassifier"},
            {"entity": "score", "value": "5", "start": 20, "end": 25, "extractor": "DIETClassifier"},
        ]
    )
    # DIET's raw span "dưới" is no fact name; its "5" is a valid score
    assert values == {"locality": ["Thành phố Hồ Chí Minh", "quận 1"], "fact": ["lost"], "score": ["5"]}
