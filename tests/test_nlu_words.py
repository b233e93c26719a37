"""The NLU tokenizer's words (bot.nlu.words): folded, segmented, with lexicon wording, located in the original text.

Plain functions, no Rasa: the Rasa component itself is exercised in tests/test_nlu_model.py.
"""

from __future__ import annotations

import unicodedata

import pytest

from bot.nlu.words import message_words, syllable_spans
from bot.text import fold, load_lexicon


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def features(text: str, lexicon=None) -> list[str]:
    """What the featurizers see, in order."""
    return " ".join(w.features for w in message_words(text, lexicon)).split()


def test_words_are_folded_and_lowercase():
    words = message_words("Đăng Ký KẾT HÔN")
    assert [w.text for w in words] == ["dang_ky", "ket_hon"]
    assert all(w.text == w.text.lower() and w.text.isascii() for w in words)


@pytest.mark.parametrize(
    ("with_marks", "bare"),
    [
        ("đăng ký kết hôn", "dang ky ket hon"),
        ("Làm lại căn cước ở đâu?", "lam lai can cuoc o dau"),
        ("Lệ phí cấp hộ chiếu bao nhiêu", "le phi cap ho chieu bao nhieu"),
        ("Thủ tục hoà giải", "thu tuc hoa giai"),
    ],
)
def test_text_with_and_without_diacritics_gives_the_same_features(with_marks, bare):
    assert features(with_marks) == features(bare)


def test_clause_with_diacritics_is_segmented_into_words_and_a_bare_one_into_syllables():
    assert [w.text for w in message_words("Cấp giấy chứng nhận quyền sử dụng đất")] == [
        "cap",
        "giay",
        "chung_nhan",
        "quyen",
        "su_dung",
        "dat",
    ]
    # underthesea would glue bare syllables at random ("lam lai_cccd"): one word per syllable instead
    assert [w.text for w in message_words("lam lai cccd o dau")] == ["lam", "lai", "cccd", "o", "dau"]


def test_offsets_point_into_the_original_text():
    text = "  Tôi  muốn làm lại CCCD,   ở đâu ạ?"
    for word in message_words(text):
        assert fold("_".join(text[word.start : word.end].split())) == word.text
    cccd = next(w for w in message_words(text) if w.text == "cccd")
    assert text[cccd.start : cccd.end] == "CCCD"


def test_offsets_survive_decomposed_unicode_and_misplaced_tone_marks():
    text = unicodedata.normalize("NFD", "Hồ sơ hoà giải, đăng ký kết hôn")  # decomposed, old-style "hoà"
    words = message_words(text)
    assert [w.text for w in words] == ["ho_so", "hoa", "giai", "dang_ky", "ket_hon"]
    assert [unicodedata.normalize("NFC", text[w.start : w.end]) for w in words] == [
        "Hồ sơ",
        "hoà",
        "giải",
        "đăng ký",
        "kết hôn",
    ]


def test_zero_width_characters_inside_a_word_do_not_break_offsets():
    text = "căn\u200bcước công dân"
    spans = syllable_spans(text)[1]
    assert spans[0] == (0, 8)


def test_lexicon_wording_is_added_so_abbreviations_share_features(lexicon):
    cccd = message_words("cccd", lexicon)
    assert cccd[0].text == "cccd"
    assert "can" in cccd[0].expansion and "cuoc" in cccd[0].expansion
    # "cccd" and "căn cước" now share the official wording "thẻ căn cước"
    shared = set(features("lam lai cccd", lexicon)) & set(features("làm lại căn cước", lexicon))
    assert {"the", "can", "cuoc", "cap", "lai"} <= shared


def test_lexicon_wording_follows_the_lexicon_rules(lexicon):
    # "bị mất" (lost) adds "cấp lại"; "bí mật" (secret) does not
    assert "cap" in features("thẻ bị mất", lexicon)
    assert "cap" not in features("thông tin bí mật", lexicon)


def test_text_without_letters_gives_no_words():
    assert message_words("👍 ?!") == []
    assert message_words("") == []
