"""Tests of the Vietnamese text layer (bot.text): normalization, folding, tokens and the domain lexicon.

Examples are real procedure titles from knowledge/procedures and queries the way citizens type them.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import unicodedata
from pathlib import Path

import pytest

from bot.text import (
    STOPWORDS,
    Lexicon,
    LexiconEntry,
    fold,
    has_diacritics,
    lexical_tokens,
    load_lexicon,
    normalize,
    segment,
    syllables,
)
from bot.text.lexicon import DEFAULT_LEXICON_PATH

ROOT = Path(__file__).resolve().parents[1]
PROCEDURES = ROOT / "knowledge" / "procedures" / "national_procedures.jsonl.gz"


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    return load_lexicon()


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


# ------------------------------------------------------------------------------------------------
# normalize
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("hoà", "hòa"),
        ("Hoà giải tranh chấp đất đai", "Hòa giải tranh chấp đất đai"),
        ("thuý", "thúy"),
        ("thuỷ lợi", "thủy lợi"),
        ("khoẻ", "khỏe"),
        ("Uỷ ban nhân dân", "Ủy ban nhân dân"),
        ("uỷ quyền", "ủy quyền"),
        ("hoá đơn", "hóa đơn"),
        ("xoè", "xòe"),
        ("qúy", "quý"),
        ("HOÀ BÌNH", "HÒA BÌNH"),
        ("Thuỵ Sĩ", "Thụy Sĩ"),
        ("hoạch", "hoạch"),  # closed syllable: already right, unchanged
        ("hoàng", "hoàng"),
        ("huỳnh", "huỳnh"),
        ("ngoài", "ngoài"),
        ("khuỷu", "khuỷu"),
        ("người", "người"),
        ("giữa", "giữa"),
        ("quốc", "quốc"),
        ("gìn", "gìn"),
    ],
)
def test_normalize_tone_mark_variants_become_one_form(variant: str, canonical: str) -> None:
    assert normalize(variant) == canonical
    assert normalize(canonical) == canonical
    assert normalize(nfd(variant)) == canonical  # decomposed input, e.g. from macOS


def test_normalize_tone_placement_agrees_with_underthesea() -> None:
    from underthesea import text_normalize

    words = ["hoà", "thuý", "khoẻ", "uỷ", "hoá", "toà", "thoả", "quỳ", "qúa", "thuở", "tuổi"]
    for w in words:
        assert normalize(w) == text_normalize(w), w


def test_normalize_cleans_whitespace_controls_and_keeps_case() -> None:
    raw = "  Cấp\u200b lại\u00a0\u00a0thẻ \t căn\u00adcước\n\n(CCCD)\ufeff\x00 "
    assert normalize(raw) == "Cấp lại thẻ căncước (CCCD)"
    assert normalize("ĐĂNG KÝ Thường Trú") == "ĐĂNG KÝ Thường Trú"
    assert normalize("") == ""
    assert normalize(" \n\t ") == ""


def test_normalize_maps_lookalike_letters() -> None:
    assert normalize("Ðà Nẵng") == "Đà Nẵng"  # Icelandic eth from legacy encodings
    assert normalize("cǎn cước") == "căn cước"  # a-caron typed for a-breve


def test_normalize_leaves_non_syllables_alone() -> None:
    for s in ["café", "NĐ-CP", "68/2013/TT-BCA", "lạic", "São Paulo", "naïve", "Ελληνικά", "中文"]:
        assert normalize(s) == unicodedata.normalize("NFC", s)


def test_normalize_is_idempotent_on_real_titles() -> None:
    titles = [
        "Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
        "Thủ tục đăng ký khai sinh kết hợp đăng ký nhận cha, mẹ, con",
        "Giải quyết hưởng bảo hiểm xã hội một lần",
        "Thẩm định, phê duyệt đề cương, kết quả kiểm định an toàn đập, hồ chứa thủy lợi",
    ]
    for t in titles:
        assert normalize(t) == t
        assert normalize(normalize(nfd(t))) == t


# ------------------------------------------------------------------------------------------------
# fold / has_diacritics
# ------------------------------------------------------------------------------------------------


def test_fold() -> None:
    assert fold("Đăng ký khai sinh") == "dang ky khai sinh"
    assert fold("ĐĂNG KÝ THƯỜNG TRÚ") == "dang ky thuong tru"
    assert fold(nfd("Cấp đổi giấy phép lái xe")) == "cap doi giay phep lai xe"
    assert fold("Ưu tiên người cao tuổi") == "uu tien nguoi cao tuoi"
    assert fold("hoà") == fold("hòa") == "hoa"
    assert fold("café São") == "cafe sao"
    assert fold("20.000 đồng!") == "20.000 dong!"
    assert fold("中文 русский") == "中文 русский"
    assert unicodedata.is_normalized("NFC", fold(nfd("Nghị định 01/2021/NĐ-CP")))


def test_has_diacritics() -> None:
    assert not has_diacritics("lam lai cccd o dau")
    assert has_diacritics("làm lại")
    assert has_diacritics("di dau") is False
    assert has_diacritics("đi")  # đ counts
    assert has_diacritics(nfd("hòa"))
    assert not has_diacritics("")
    assert not has_diacritics("😀 中文")


# ------------------------------------------------------------------------------------------------
# syllables / segment
# ------------------------------------------------------------------------------------------------


def test_syllables() -> None:
    assert syllables("Lệ phí: 20.000 đồng/lần (bằng B2)!") == ["lệ", "phí", "20.000", "đồng", "lần", "bằng", "b2"]
    assert syllables("Mã thủ tục 1.001193, ngày 01/8/2024") == ["mã", "thủ", "tục", "1.001193", "ngày", "01/8/2024"]
    assert syllables("Hoà giải") == syllables("hòa GIẢI") == ["hòa", "giải"]
    assert syllables("... ?!") == []


def test_segment_joins_words() -> None:
    words = segment("Thủ tục đăng ký khai sinh")
    assert "đăng_ký" in words and "khai_sinh" in words
    words = segment("Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất")
    assert "quyền_sở_hữu" in words and "sử_dụng" in words
    assert "," not in words and all(w == w.lower() for w in words)
    assert segment("") == []


# ------------------------------------------------------------------------------------------------
# lexical_tokens
# ------------------------------------------------------------------------------------------------


def test_lexical_tokens_unigrams_bigrams_and_long_words() -> None:
    toks = lexical_tokens("Thủ tục đăng ký khai sinh")
    for t in ["thu", "tuc", "dang", "ky", "khai", "sinh", "dang_ky", "khai_sinh", "thu_tuc"]:
        assert t in toks
    toks = lexical_tokens("Cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất")
    assert "quyen_so_huu" in toks  # underthesea word of 3 syllables
    assert "dat_quyen" not in toks  # no bigram across the comma
    assert "voi" not in toks and "voi_dat" in toks  # stopword: dropped as unigram, kept in bigrams


def test_lexical_tokens_same_for_documents_and_queries() -> None:
    assert lexical_tokens("Hoà giải tranh chấp") == lexical_tokens("Hòa giải tranh chấp")
    assert lexical_tokens(nfd("Đăng ký thường trú")) == lexical_tokens("Đăng ký thường trú")
    # without diacritics only the underthesea words are missing
    plain = lexical_tokens("dang ky thuong tru")
    assert set(plain) <= set(lexical_tokens("Đăng ký thường trú"))
    assert "quyen_so_huu" not in lexical_tokens("quyen so huu tai san")


def test_lexical_tokens_keep_term_frequency_and_numbers() -> None:
    toks = lexical_tokens("bhxh 1 lần, bhxh")
    assert toks.count("bhxh") == 2
    assert "1" in toks and "1_lan" in toks


def test_stopwords_are_folded_and_spare_content_words() -> None:
    assert all(w == fold(w) for w in STOPWORDS)
    for content in ["can", "the", "do", "ma", "hoi", "ban", "dau", "tai", "minh", "lam"]:
        assert content not in STOPWORDS  # căn cước, thẻ, sổ đỏ, mã số, hội, bản sao, lần đầu ...


def _overlap(query: str, title: str, lexicon: Lexicon) -> set[str]:
    return set(lexical_tokens(lexicon.expand(query))) & set(lexical_tokens(title))


@pytest.mark.parametrize(
    "query", ["lam lai cccd o dau", "Làm lại CCCD ở đâu?", "làm lại căn cước", "lam lai can cuoc cong dan"]
)
def test_reissue_id_card_queries_meet_the_title(query: str, lex: Lexicon) -> None:
    shared = _overlap(query, "Cấp lại thẻ căn cước", lex)
    assert {"cap_lai", "can_cuoc", "the_can"} <= shared


def test_expansion_is_what_makes_the_match(lex: Lexicon) -> None:
    raw = set(lexical_tokens("lam lai cccd o dau")) & set(lexical_tokens("Cấp lại thẻ căn cước"))
    assert "can_cuoc" not in raw and "cap_lai" not in raw
    assert set(lexical_tokens("lam lai cccd")) & set(lexical_tokens("làm lại căn cước"))


def test_driving_licence_query_meets_the_title(lex: Lexicon) -> None:
    shared = _overlap("xin cấp lại bằng lái bị mất", "Cấp lại giấy phép lái xe", lex)
    assert {"cap_lai", "giay_phep", "lai_xe"} <= shared


# ------------------------------------------------------------------------------------------------
# lexicon
# ------------------------------------------------------------------------------------------------


def test_lexicon_file_is_substantial(lex: Lexicon) -> None:
    assert len(lex) >= 80
    assert lex.term_count >= 400
    assert lex.source == DEFAULT_LEXICON_PATH.resolve()
    assert load_lexicon() is lex  # cached


@pytest.mark.parametrize("term", ["cccd", "CCCD", "căn cước công dân", "can cuoc cong dan", "Căn Cước Công Dân"])
def test_id_card_spellings_all_match(term: str, lex: Lexicon) -> None:
    assert (term, "thẻ căn cước") in lex.matches(f"cho hỏi {term} làm ở đâu")


def test_matches_report_surface_and_canonical(lex: Lexicon) -> None:
    assert lex.matches("Làm lại CCCD") == [("Làm lại", "cấp lại"), ("CCCD", "thẻ căn cước")]


def test_expand_keeps_text_and_adds_phrases(lex: Lexicon) -> None:
    q = "lam lai cccd o dau"
    out = lex.expand(q)
    assert out.startswith(q + " ")
    assert "cấp lại" in out and "thẻ căn cước" in out
    assert lex.expand("thời tiết hôm nay") == "thời tiết hôm nay"
    # a phrase the text already contains is not added again
    assert lex.expand("Cấp lại thẻ căn cước") == "Cấp lại thẻ căn cước"


@pytest.mark.parametrize(
    ("query", "title"),
    [
        # everyday name → the wording of the real title that handles it
        ("thế chấp sổ đỏ để vay ngân hàng", "Đăng ký biện pháp bảo đảm bằng quyền sử dụng đất, tài sản gắn liền với đất"),
        ("xoa the chap so do", "Xóa đăng ký biện pháp bảo đảm bằng quyền sử dụng đất, tài sản gắn liền với đất"),
        ("bằng lái bị trừ hết 12 điểm", "Đăng ký kiểm tra kiến thức pháp luật về trật tự, an toàn giao thông đường bộ"),
        ("xin biển tạm cho ô tô mới", "Đăng ký xe tạm thời thực hiện bằng dịch vụ công trực tuyến một phần"),
        ("tien bi rach thi doi o dau", "Thủ tục đổi tiền không đủ tiêu chuẩn lưu thông"),
        ("đổi chủ hộ sang mẹ tôi", "Điều chỉnh thông tin về cư trú trong Cơ sở dữ liệu về cư trú"),
        ("giải thể công ty tnhh", "Giải thể doanh nghiệp"),
        ("bay flycam có phải xin phép không", "Thủ tục cấp phép bay đối với tàu bay không người lái"),
        ("mua bhyt hộ gia đình", "Đăng ký đóng, cấp thẻ BHYT đối với người chỉ tham gia BHYT"),
        ("sổ đỏ ghi sai tên", "Đính chính Giấy chứng nhận đã cấp lần đầu có sai sót"),
        ("ban nha phai nop thue tncn", "Khai thuế TNCN đối với cá nhân có thu nhập từ chuyển nhượng bất động sản"),
        ("công chứng bản sao bằng đại học", "Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan, tổ chức"),
        ("tham gia bảo hiểm xã hội tự nguyện", "Đăng ký, đăng ký lại, điều chỉnh đóng BHXH tự nguyện; cấp sổ BHXH"),
        ("nho nguoi nhan luong huu ho", "Ủy quyền lĩnh thay các chế độ bảo hiểm xã hội, trợ cấp thất nghiệp"),
        ("tự quyết toán thuế tncn", "Khai quyết toán thuế/ Hoàn thuế đối với cá nhân cư trú có thu nhập từ tiền lương, tiền công"),
        ("xe máy cũ nát không dùng nữa", "Thu hồi giấy chứng nhận đăng ký, biển số xe thực hiện bằng dịch vụ công"),
        ("chở heo sang tỉnh khác bán", "Cấp giấy chứng nhận kiểm dịch động vật, sản phẩm động vật trên cạn"),
        ("hộ kinh doanh chuyển địa điểm", "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh"),
    ],
)
def test_everyday_wording_meets_the_official_title(query: str, title: str, lex: Lexicon) -> None:
    title_words = set(lexical_tokens(title)) - set(lexical_tokens(query))
    added = set(lexical_tokens(lex.expand(query))) - set(lexical_tokens(query))
    assert len(added & title_words) >= 2, (lex.expand(query), title)


def test_context_entries_stay_in_their_context(lex: Lexicon) -> None:
    # "bị sai" is about the population database only next to VNeID / định danh; the vehicle tax entry needs a vehicle
    assert "Cơ sở dữ liệu quốc gia về dân cư" in lex.expand("thông tin trên VNeID bị sai năm sinh")
    assert "Cơ sở dữ liệu quốc gia về dân cư" not in lex.expand("sổ bhxh ghi sai ngày sinh")
    assert "tài sản khác" in lex.expand("mua xe máy nộp lệ phí trước bạ")
    assert "tài sản khác" not in lex.expand("sang tên nhà đất nộp lệ phí trước bạ")
    # bare "mat" is "mất" (lost) only right next to a paper, not "mặt trước" nor "mất tiền"
    assert "cấp lại" in lex.expand("mat so do thi sao")
    assert "cấp lại" not in lex.expand("mat truoc the can cuoc")
    assert "cấp lại" not in lex.expand("dang ky ket hon co mat tien khong")
    # inherited land is registered as a change of the land-use right
    assert "đăng ký biến động" in lex.expand("nhận thừa kế đất của bố mẹ")
    # animals are livestock only next to their transport or quarantine, and only with their diacritics
    assert "động vật trên cạn" in lex.expand("vận chuyển bò sang tỉnh khác")
    assert "động vật trên cạn" not in lex.expand("bo me toi muon chuyen ho khau sang tinh khac")
    assert "động vật trên cạn" not in lex.expand("cho tôi hỏi kiểm dịch thực vật")
    # folded, "chở" is "cho": no context for the animals ("cho em hỏi bộ phận một cửa …" is no crab)
    assert "động vật" not in lex.expand("cho em hoi bo phan mot cua nghi trua luc may gio")
    # moving premises changes a household business's registration, not a company's head office
    assert "thay đổi nội dung đăng ký hộ kinh doanh" not in lex.expand("công ty chuyển địa điểm văn phòng")
    # a will is not an inheritance division
    assert "phân chia di sản" not in lex.expand("chứng thực di chúc")


def test_expand_reads_contexts_in_the_whole_text_but_skips_the_given_spans(lex: Lexicon) -> None:
    question = "thong tin tren vneid bi sai nam sinh"
    start = question.index("vneid")
    blanked = question[:start] + " " * 5 + question[start + 5 :]
    out = lex.expand(question, base=blanked, skip=[(start, start + 5)])
    assert out.startswith(blanked + " ")
    assert "Cơ sở dữ liệu quốc gia về dân cư" in out  # "bị sai" next to VNeID
    assert "tài khoản định danh điện tử" not in out  # "vneid" itself was skipped
    assert lex.expand(blanked) == blanked  # the blanked text alone has lost the context


def test_bang_lai_expands_to_driving_licence(lex: Lexicon) -> None:
    for q in ["bằng lái", "bang lai xe", "đổi bằng lái xe máy", "GPLX hết hạn"]:
        assert "giấy phép lái xe" in lex.expand(q), q
    assert "cấp đổi" in lex.expand("đổi bằng lái")
    assert "cấp đổi" not in lex.expand("theo dõi hồ sơ")  # "đổi" needs a document word nearby


def test_so_do_expands_to_land_certificate(lex: Lexicon) -> None:
    for q in ["sổ đỏ", "so do", "làm sổ hồng", "Sổ Đỏ bị mất"]:
        assert "giấy chứng nhận quyền sử dụng đất" in lex.expand(q), q
    assert "quyền sở hữu nhà ở" in lex.expand("sổ hồng")
    assert lex.matches("vẽ sơ đồ") == []  # "sơ đồ" typed with diacritics is not "sổ đỏ"


def test_residence_and_civil_status(lex: Lexicon) -> None:
    assert "đăng ký thường trú" in lex.expand("nhập hộ khẩu cho vợ")
    assert "đăng ký khai sinh" in lex.expand("lam giay khai sinh cho con")
    assert "đăng ký khai tử" in lex.expand("làm giấy chứng tử cho bố")
    assert "đăng ký kết hôn" in lex.expand("làm giấy kết hôn")
    assert "đăng ký kết hôn" in lex.expand("thủ tục cưới vợ")
    assert "đăng ký kết hôn" not in lex.expand("cuoi nam nay")  # bare "cuoi" is "cuối"
    assert "xác nhận tình trạng hôn nhân" in lex.expand("xin giấy xác nhận độc thân")
    assert "phiếu lý lịch tư pháp" in lex.expand("lltp số 2")


def test_business_tax_insurance(lex: Lexicon) -> None:
    out = lex.expand("đkkd hộ kinh doanh")
    assert "đăng ký kinh doanh" in out and "đăng ký hộ kinh doanh" in out
    assert "hưởng bảo hiểm xã hội một lần" in lex.expand("bhxh 1 lần")
    assert "hưởng bảo hiểm xã hội một lần" in lex.expand("rut bhxh mot lan")
    assert "thẻ bảo hiểm y tế" in lex.expand("mất thẻ bhyt")
    assert "mã số thuế" in lex.expand("tra mst cá nhân")
    assert "bảo hiểm thất nghiệp" in lex.expand("bhtn")


def test_lost_and_damaged(lex: Lexicon) -> None:
    assert "cấp lại" in lex.expand("mất cccd")
    assert "cấp lại" in lex.expand("bi mat cccd")
    assert "cấp lại" not in lex.expand("bảo vệ bí mật nhà nước")
    assert "cấp lại" not in lex.expand("bi mat nha nuoc")
    assert "cấp đổi" in lex.expand("cccd bị hỏng")
    assert "cấp lại" not in lex.expand("rửa mặt")


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("ko biết", "không"),
        ("dc k ad", "được"),
        ("đc không", "được"),
        ("làm ntn", "như thế nào"),
        ("phí bn", "bao nhiêu"),
        ("cần giấy tờ j", "gì"),
        ("mấy h mở cửa", "giờ"),
        ("mk muốn hỏi", "mình"),
        ("e muốn hỏi", "em"),
    ],
)
def test_teencode(query: str, word: str, lex: Lexicon) -> None:
    assert word in lex.expand(query).split(" ", len(query.split()))[-1]


def test_teencode_does_not_fire_on_real_words(lex: Lexicon) -> None:
    assert lex.matches("cho em hỏi ạ") == []  # "ạ" is not the teencode "a"
    assert "anh" not in lex.expand("bằng A")  # licence class, not "anh"
    assert lex.expand("là gì") == "là gì"  # already written properly


def test_nhap_khau_needs_household_context(lex: Lexicon) -> None:
    for q in ["nhập khẩu cho con", "nhap khau cho con", "nhập khẩu về nhà chồng", "thủ tục nhập khẩu cho vợ"]:
        assert "đăng ký thường trú" in lex.expand(q), q
    for q in [
        "nhập khẩu hàng hóa",
        "nhap khau hang hoa",
        "giấy phép nhập khẩu thuốc",
        "nhập khẩu xe ô tô cho con",
        "Thủ tục nhập khẩu",
    ]:
        assert "thường trú" not in lex.expand(q), q


def test_sang_ten_depends_on_context(lex: Lexicon) -> None:
    assert "thay đổi chủ xe" in lex.expand("sang tên xe máy")
    land = lex.expand("sang tên sổ đỏ cho con")
    assert "đăng ký biến động" in land and "thay đổi chủ xe" not in land


def test_custom_lexicon_rules() -> None:
    lx = Lexicon(
        entries=[
            LexiconEntry.from_mapping({"terms": ["cccd", "căn cước công dân"], "canonical": "thẻ căn cước"}),
            LexiconEntry.from_mapping({"term": "căn cước", "canonical": "căn cước (ngắn)"}),
            LexiconEntry.from_mapping({"term": "cưới", "canonical": "kết hôn", "strict": True}),
            LexiconEntry.from_mapping({"term": "đổi", "canonical": "cấp đổi", "context": ["thẻ"], "window": 2}),
        ]
    )
    # longest term wins, no overlap
    assert lx.matches("căn cước công dân") == [("căn cước công dân", "thẻ căn cước")]
    assert lx.matches("cưới") == [("cưới", "kết hôn")] and lx.matches("cuoi") == []
    assert lx.matches("đổi thẻ") == [("đổi", "cấp đổi")]
    assert lx.matches("đổi lại cho tôi cái thẻ") == []  # context outside the window
    assert lx.matches("cccd.") == [("cccd", "thẻ căn cước")]
    assert lx.matches("xcccd cccdx") == []  # word boundaries only


@pytest.mark.parametrize(
    "bad",
    [
        {"canonical": "x"},
        {"term": "x"},
        {"term": "x", "canonical": ""},
        {"term": "x", "canonical": "y", "window": 0},
        {"term": "x", "canonical": "y", "strict": "yes"},
        {"term": "x", "canonical": "y", "colour": "red"},
        {"term": "!!", "canonical": "y"},
        ["x", "y"],
    ],
)
def test_malformed_entries_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        LexiconEntry.from_mapping(bad)  # type: ignore[arg-type]


def test_load_lexicon_from_a_path(tmp_path: Path) -> None:
    p = tmp_path / "lx.yml"
    p.write_text("entries:\n  - term: gplx\n    canonical: giấy phép lái xe\n", encoding="utf-8")
    assert load_lexicon(p).expand("GPLX") == "GPLX giấy phép lái xe"
    p.write_text("- term: [\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_lexicon(p)
    with pytest.raises(FileNotFoundError):
        load_lexicon(tmp_path / "missing.yml")


def test_canonical_phrases_have_diacritics_and_occur_in_the_knowledge(lex: Lexicon) -> None:
    """Each canonical phrase is written with diacritics (or is an acronym used in titles) and occurs
    in real procedure titles/steps/documents or plan texts, except plain chat words mapped from teencode."""
    plain_words = {"như thế nào", "bao nhiêu", "rồi", "vậy", "cảm ơn", "anh", "em"}
    canon = {c for e in lex.entries for c in e.canonical}
    for c in canon:
        assert has_diacritics(c) or c.isupper() or c in plain_words, c
    tok = re.compile(r"\d+(?:[.,:/\-]\d+)+|[^\W_]+")
    parts: list[str] = []
    with gzip.open(PROCEDURES, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for key in (
                "ten_thu_tuc",
                "trinh_tu_thuc_hien",
                "thanh_phan_ho_so",
                "yeu_cau_dieu_kien",
                "cach_thuc_thuc_hien",
                "ket_qua_xu_ly",
            ):
                parts.append(" ".join(tok.findall(normalize(rec.get(key) or "").lower())))
    for plan in sorted(PROCEDURES.parent.parent.joinpath("plans").glob("*.txt")):
        parts.append(" ".join(tok.findall(normalize(plan.read_text(encoding="utf-8")).lower())))
    corpus = " " + " | ".join(parts) + " "
    missing = sorted(c for c in canon - plain_words if " " + " ".join(tok.findall(c.lower())) + " " not in corpus)
    assert missing == []


# ------------------------------------------------------------------------------------------------
# robustness and size
# ------------------------------------------------------------------------------------------------

_WEIRD = [
    "",
    " ",
    "😀🇻🇳👨‍👩‍👧 làm lại cccd 🙏",
    "\x00\x01\x02\x7f\x9f",
    "\ud800\udfff lone surrogates",
    bytes(range(256)).decode("latin-1"),
    os.urandom(64).decode("utf-8", errors="surrogateescape"),
    "混合 script: Đăng ký русский ελληνικά العربية हिन्दी 日本語",
    "\u0301\u0300\u0323 stray marks \u0301",
    "a" * 500,
    "́" * 50 + "hoà",
    "___---...,,,;;;",
    "ＦＵＬＬ　ＷＩＤＴＨ　ｃｃｃｄ",
]


@pytest.mark.parametrize("text", _WEIRD)
def test_weird_input_never_raises(text: str, lex: Lexicon) -> None:
    assert isinstance(normalize(text), str)
    assert isinstance(fold(text), str)
    assert isinstance(has_diacritics(text), bool)
    assert all(isinstance(t, str) and t for t in syllables(text))
    assert all(isinstance(t, str) and t for t in segment(text))
    assert all(isinstance(t, str) and t for t in lexical_tokens(text))
    assert lex.expand(text).startswith(text)
    assert isinstance(lex.matches(text), list)


def test_bytes_and_none_are_tolerated() -> None:
    assert normalize(b"L\xc3\xa0m l\xe1\xba\xa1i \xff") == "Làm lại \ufffd"  # type: ignore[arg-type]
    assert normalize(None) == ""  # type: ignore[arg-type]
    assert fold(b"\xc4\x90i") == "di"  # type: ignore[arg-type]


def _long_text(n_chars: int) -> str:
    rng = random.Random(7)
    words = [
        *["cấp", "lại", "thẻ", "căn", "cước", "cccd", "bị", "mất", "hoà", "giải", "sổ", "đỏ"],
        *["nhập", "khẩu", "cho", "con", "bằng", "lái", "ko", "dc", "đăng", "ký", "khai", "sinh,"],
        *["bhxh", "1", "lần;", "20.000", "đồng", "😀"],
    ]
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_chars]


def test_long_input_scales_linearly(lex: Lexicon) -> None:
    small, big = _long_text(2_000), _long_text(20_000)
    assert len(big) == 20_000
    n_small, n_big = len(lexical_tokens(small)), len(lexical_tokens(big))
    assert 7 * n_small < n_big < 13 * n_small
    assert set(lex.matches(small)) <= set(lex.matches(big))
    assert len(lex.expand(big)) >= len(big)
    assert len(syllables(big)) > 3000
    assert len(normalize(big)) <= 20_000


def test_import_is_cheap_and_warm_up_loads_the_segmenter() -> None:
    import subprocess
    import sys

    code = "import sys, bot.text; print('underthesea' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from bot.text import warm_up

    warm_up()
    assert "quyen_so_huu" in lexical_tokens("quyền sở hữu nhà ở")
