"""Variant facts, levels and operations read from real titles and citizens' questions."""

from __future__ import annotations

import pytest

from bot.answer.variants import (
    VariantPreference,
    VariantProfile,
    asked_operations,
    base_title,
    facts,
    listed_operations,
    title_operations,
    unqualified_title,
)
from bot.knowledge.models import Procedure
from bot.text.lexicon import load_lexicon


def proc(title: str, levels: list[str] | None = None) -> Procedure:
    return Procedure(code="x", title=title, url=None, source="national", levels=levels or ["xa"])


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("chong toi la nguoi Han Quoc, dang ky khai sinh cho con the nao", "foreign"),
        ("Tôi ly hôn ở Mỹ rồi, về Việt Nam muốn kết hôn lại", "foreign"),
        ("lấy vợ người Nhật thì đăng ký kết hôn ở đâu", "foreign"),
        ("Làm căn cước cho bé 4 tuổi", "under14"),
        ("khai sinh cho chau 8 thang", "under14"),
        ("Công ty tôi muốn đăng ký đất", "organisation"),
    ],
)
def test_facts_a_citizen_states_in_everyday_words(question: str, fact: str) -> None:
    assert fact in facts(question)


@pytest.mark.parametrize(
    "question",
    ["người anh trai tôi muốn đăng ký kết hôn", "con toi 17 tuoi di dang ky nghia vu quan su", "làm lại cccd ở đâu"],
)
def test_no_variant_fact_where_the_question_states_none(question: str) -> None:
    assert not facts(question) & {"foreign", "under14"}


@pytest.mark.parametrize(
    ("title", "ops"),
    [
        ("Khóa căn cước điện tử (thực hiện tại cấp tỉnh)", {"lock"}),
        ("Mở khóa căn cước điện tử (thực hiện tại cấp tỉnh)", {"unlock"}),
        ("Xóa đăng ký tàu cá, tàu phục vụ nuôi trồng thủy sản", {"delete"}),
        ("Cấp lại Giấy chứng nhận do bị mất", {"reissue"}),
        ("Đổi giấy phép lái xe", {"exchange"}),
        ("Cấp giấy chứng nhận đăng ký tàu cá, tàu phục vụ nuôi trồng thủy sản", set()),
    ],
)
def test_operations_named_by_real_titles(title: str, ops: set[str]) -> None:
    assert title_operations(title) == ops


def test_asking_how_long_is_not_asking_about_a_lost_paper() -> None:
    assert "reissue" not in asked_operations("Cấp sổ đỏ lần đầu mất bao lâu?")
    assert "reissue" in asked_operations("mất sổ đỏ thì xin cấp lại ở đâu")
    assert "reissue" not in asked_operations("thi bang lai xe may A1 phi sat hach bao nhieu")
    assert "reissue" not in asked_operations("lam so do cho manh dat ong ba de lai")
    # giving papers back ("nộp lại", "trả lại") is a revocation, not a re-issue
    assert asked_operations("xe hỏng bỏ không dùng nữa có phải nộp lại giấy đăng ký không") >= {"revoke"}
    assert "reissue" not in asked_operations("bán xe rồi thì trả lại biển số ở đâu")


def test_an_unasked_operation_ranks_below_the_ordinary_procedure() -> None:
    prefer = VariantPreference.of("Đóng tàu cá mới xong thì đăng ký tàu cá ở đâu?")
    plain = VariantProfile.of(proc("Cấp giấy chứng nhận đăng ký tàu cá, tàu phục vụ nuôi trồng thủy sản"))
    delete = VariantProfile.of(proc("Xóa đăng ký tàu cá, tàu phục vụ nuôi trồng thủy sản"))
    assert prefer.adjustment(plain) > prefer.adjustment(delete)


def test_the_asked_operation_wins_between_lock_and_unlock() -> None:
    prefer = VariantPreference.of("Bị kẻ gian chiếm tài khoản VNeID, muốn khóa căn cước điện tử gấp")
    lock = proc("Khóa căn cước điện tử (thực hiện tại cấp tỉnh)", ["tinh"])
    unlock = proc("Mở khóa căn cước điện tử (thực hiện tại cấp tỉnh)", ["tinh"])
    assert prefer.adjustment(lock) > prefer.adjustment(unlock)


def test_a_title_that_also_serves_citizens_is_not_penalised_as_a_foreign_variant() -> None:
    prefer = VariantPreference.of("xin phiếu lý lịch tư pháp ở đâu")
    inclusive = proc("Cấp Phiếu Lý lịch tư pháp cho công dân Việt Nam, người nước ngoài đang cư trú tại Việt Nam")
    foreign_only = proc("Thủ tục đăng ký kết hôn có yếu tố nước ngoài")
    assert prefer.adjustment(inclusive) > prefer.adjustment(foreign_only)


def test_an_organisation_variant_needs_the_question_to_say_so() -> None:
    citizen = VariantPreference.of("làm sổ đỏ lần đầu cho mảnh đất ông bà để lại")
    company = VariantPreference.of("công ty tôi làm sổ đỏ lần đầu cho đất đang sử dụng")
    org = proc("Đăng ký đất đai … lần đầu đối với tổ chức đang sử dụng đất")
    household = proc("Đăng ký đất đai … lần đầu đối với hộ gia đình, cá nhân")
    assert citizen.adjustment(household) > citizen.adjustment(org)
    assert company.adjustment(org) > company.adjustment(household)


def test_the_armed_forces_variant_needs_the_question_to_name_the_forces() -> None:
    military = proc("Đổi giấy phép lái xe quân sự do Bộ Quốc phòng cấp")
    police = proc("Đổi giấy phép lái xe Công an nhân dân")
    civilian = proc("Đổi giấy phép lái xe")
    assert "armed_forces" in facts(military.title) and "armed_forces" in facts(police.title)
    assert "armed_forces" not in facts("Thủ tục hải quan đối với xăng dầu")  # "quan đối" is not "quân đội"
    citizen = VariantPreference.of("cap doi gplx o dau")
    soldier = VariantPreference.of("bộ đội đổi bằng lái quân sự ở đâu")
    assert citizen.adjustment(civilian) > citizen.adjustment(military)
    assert citizen.adjustment(civilian) > citizen.adjustment(police)
    assert soldier.adjustment(military) > soldier.adjustment(civilian)


@pytest.mark.parametrize(
    "question",
    ["xin phiếu lý lịch tư pháp ở đâu", "xin phieu ly lich tu phap o dau", "giay phep kinh doanh my pham",
     "the bao hiem y te", "người anh trai tôi muốn đăng ký kết hôn"],
)
def test_folded_words_that_look_like_country_names_are_not_a_foreign_element(question: str) -> None:
    assert "foreign" not in facts(question)


def test_a_title_listing_several_operations_serves_each_of_them() -> None:
    title = "Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT"
    assert title_operations(title) == {"reissue"}
    assert listed_operations(title) == {"exchange", "change"}
    prefer = VariantPreference.of("so bhxh ghi sai ngay sinh, muon dieu chinh thi lam sao")
    listing = VariantProfile.of(proc(title))
    reissue_only = VariantProfile.of(proc("Cấp lại Giấy chứng nhận do bị mất"))
    assert prefer.adjustment(listing) > prefer.adjustment(reissue_only)
    assert listed_operations("Đăng ký thành lập hộ kinh doanh") == frozenset()


def test_words_of_a_term_the_lexicon_reads_as_a_procedure_do_not_ask_an_operation() -> None:
    lexicon = load_lexicon()
    # "chuyển đất vườn" is "chuyển mục đích sử dụng đất", "chuyển hộ khẩu" is "đăng ký thường trú": nothing to change
    assert "change" in asked_operations("chuyen dat vuon len dat tho cu thi xin phep o dau")
    assert "change" not in asked_operations("chuyen dat vuon len dat tho cu thi xin phep o dau", lexicon)
    assert "change" not in asked_operations("Chuyển hộ khẩu làm online được không", lexicon)
    # a term whose official wording is an operation still asks for it
    assert "reissue" in asked_operations("lam lai cccd o dau", lexicon)
    assert {"renew", "exchange"} <= asked_operations("thẻ căn cước sắp hết hạn", lexicon)
    assert "delete" in asked_operations("xóa hộ khẩu cho bố đã mất", lexicon)


def test_the_polices_own_health_insurance_records_need_the_question_to_name_the_forces() -> None:
    # real records: 1.001294 "Cấp lại thẻ bảo hiểm y tế (thực hiện tại cấp tỉnh)" (field "Chính sách", decision
    # QĐ/0001-BCA: officers and their families) and 1.002759 of the social-insurance agency
    police = Procedure(code="1.001294", title="Cấp lại thẻ bảo hiểm y tế (thực hiện tại cấp tỉnh)", url=None,
                       source="national", decision="QĐ/0001-BCA", domain="Chính sách", levels=["tinh"])
    agency = Procedure(code="1.002759", title="Cấp lại, đổi, điều chỉnh thông tin trên sổ BHXH, thẻ BHYT", url=None,
                       source="national", decision="1474/QĐ-BTC", domain="Cấp sổ BHXH, thẻ BHYT",
                       levels=["bo", "tinh", "xa"])
    citizen = VariantPreference.of("Mất thẻ bhyt thì làm lại ở đâu?")
    officer = VariantPreference.of("Chồng tôi là chiến sĩ công an, mất thẻ bhyt thì làm lại ở đâu?")
    assert VariantProfile.of(police).forces and not VariantProfile.of(agency).forces
    assert citizen.adjustment(police) - officer.adjustment(police) < -0.1
    assert citizen.adjustment(agency) > citizen.adjustment(police)


def test_the_fully_online_vehicle_variant_needs_the_question_to_ask_for_it() -> None:
    online = VariantProfile.of(proc("Cấp lại chứng nhận đăng ký xe, biển số xe thực hiện bằng dịch vụ công trực tuyến "
                                    "toàn trình"))
    partial = VariantProfile.of(proc("Cấp lại chứng nhận đăng ký xe, biển số xe thực hiện bằng dịch vụ công trực tuyến "
                                     "một phần hoặc trực tiếp thực hiện tại cấp trung ương, cấp tỉnh, cấp xã"))
    assert online.qualifiers == ({"online"},) and partial.qualifiers == (frozenset(),)
    lexicon = load_lexicon()
    plain = VariantPreference.of("mất cà vẹt xe máy làm lại ở đâu", lexicon)
    assert plain.adjustment(partial) > plain.adjustment(online)
    asked = VariantPreference.of("làm lại cà vẹt online trên vneid được không", lexicon)
    assert asked.adjustment(online) > asked.adjustment(partial)
    # the two differ only by their channel: one base title, so each is listed as the other's alternative
    assert base_title("Cấp lại chứng nhận đăng ký xe, biển số xe thực hiện bằng dịch vụ công trực tuyến toàn trình") \
        == base_title("Cấp lại chứng nhận đăng ký xe, biển số xe thực hiện bằng dịch vụ công trực tuyến một phần hoặc "
                      "trực tiếp thực hiện tại cấp trung ương, cấp tỉnh, cấp xã")


def test_the_change_of_land_use_without_permission_is_the_exception() -> None:
    exception = VariantProfile.of(proc("Đăng ký biến động chuyển mục đích sử dụng đất không phải xin phép cơ quan nhà "
                                       "nước có thẩm quyền"))
    assert exception.qualifiers == ({"no_permission"},)
    lexicon = load_lexicon()
    assert VariantPreference.of("chuyen dat vuon len dat tho cu thi xin phep o dau", lexicon).adjustment(exception) < 0
    assert VariantPreference.of("chuyển mục đích đất không cần xin phép thì đăng ký ở đâu", lexicon).adjustment(
        exception) > 0


def test_title_words_without_what_the_variant_preference_judges() -> None:
    assert unqualified_title("Đổi chứng nhận đăng ký xe, biển số xe bằng dịch vụ công trực tuyến một phần hoặc trực "
                             "tiếp thực hiện tại cấp trung ương, cấp tỉnh, cấp xã") == "doi chung nhan dang ky xe, bien so xe"
    assert unqualified_title("Cấp lại thẻ bảo hiểm y tế (thực hiện tại cấp tỉnh)") == "cap lai the bao hiem y te"


def test_a_title_doing_none_of_a_distinct_operation_asked_is_not_meant() -> None:
    lexicon = load_lexicon()
    asked = VariantPreference.of("giải thể công ty tnhh cần làm những bước nào", lexicon)
    assert "dissolve" in asked.asked_operations
    dissolve = VariantProfile.of(proc("Giải thể doanh nghiệp"))
    found = VariantProfile.of(proc("Đăng ký thành lập công ty TNHH một thành viên"))
    assert asked.adjustment(dissolve) - asked.adjustment(found) >= 0.25
    # ordinary operations ("đổi", "chuyển", "sai") are too loosely worded to rule a title out
    loose = VariantPreference.of("đổi địa chỉ trên giấy phép kinh doanh", lexicon)
    assert loose.asked_operations and not loose.asked_operations & {"dissolve", "correct", "restore"}
    assert loose.adjustment(VariantProfile.of(proc("Đăng ký thành lập hộ kinh doanh"))) == pytest.approx(0.03)


def test_a_developers_project_is_a_qualifier_the_question_must_name() -> None:
    project = VariantProfile.of(proc("Đăng ký, cấp Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với "
                                     "đất cho người nhận chuyển nhượng quyền sử dụng đất, quyền sở hữu nhà ở, công trình "
                                     "xây dựng trong dự án bất động sản"))
    assert project.qualifiers == ({"project"},)
    lexicon = load_lexicon()
    assert VariantPreference.of("mua đất xong muốn sang tên sổ đỏ", lexicon).adjustment(project) < 0
    assert VariantPreference.of("mua căn hộ chung cư của chủ đầu tư thì làm sổ hồng thế nào", lexicon).adjustment(
        project) > 0


def test_an_enumerating_title_is_qualified_case_by_case() -> None:
    # the one case "… trong dự án xây dựng kinh doanh kết cấu hạ tầng" does not qualify the transfer, inheritance
    # and gift the title also covers
    land = VariantProfile.of(proc("Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất trong các "
                                  "trường hợp chuyển đổi quyền sử dụng đất nông nghiệp mà không theo phương án dồn điền, "
                                  "đổi thửa; chuyển nhượng, thừa kế, tặng cho quyền sử dụng đất; cho thuê, cho thuê lại "
                                  "quyền sử dụng đất trong dự án xây dựng kinh doanh kết cấu hạ tầng"))
    assert land.qualifiers == (frozenset(), frozenset(), {"project"})
    lexicon = load_lexicon()
    assert VariantPreference.of("bố mẹ tặng cho đất thì sang tên sổ đỏ ở đâu", lexicon).adjustment(land) >= 0
    # the judicial-record certificate's exceptions: no known residence; a foreigner who used to live here
    exceptions = VariantProfile.of(proc("Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam mà không xác định được nơi "
                                        "thường trú hoặc nơi tạm trú; người nước ngoài đã cư trú tại Việt Nam"))
    ordinary = VariantProfile.of(proc("Cấp Phiếu Lý lịch tư pháp cho công dân Việt Nam, người nước ngoài đang cư trú "
                                      "tại Việt Nam, người Việt Nam đang cư trú ở nước ngoài"))
    assert exceptions.qualifiers == ({"no_residence"}, {"former_resident"})
    plain = VariantPreference.of("xin ly lich tu phap online duoc khong", lexicon)
    assert plain.adjustment(ordinary) > plain.adjustment(exceptions)
    former = VariantPreference.of("Tôi là người nước ngoài đã từng cư trú tại Việt Nam, nay đã về nước, muốn xin phiếu "
                                  "lý lịch tư pháp", lexicon)
    assert former.adjustment(exceptions) > former.adjustment(ordinary)
    homeless = VariantPreference.of("không có hộ khẩu ở đâu thì xin lý lịch tư pháp thế nào", lexicon)
    assert homeless.adjustment(exceptions) > homeless.adjustment(ordinary)
