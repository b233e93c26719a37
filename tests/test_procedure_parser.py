"""Tests for the procedure ingestion parser (bot/knowledge/procedures.py).

The per-record tests use real records copied verbatim from the source files into
tests/fixtures/procedures_sample.jsonl (one line per record, chosen for their different shapes); every
expected value below was checked by reading the record's flattened text. The corpus tests run the parser
over both full source files in knowledge/procedures/.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from bot.knowledge.models import LegalBasis, Procedure, RequiredDocument
from bot.knowledge.procedures import (
    load_procedures,
    main,
    parse_channels,
    parse_defence,
    parse_legal_basis,
    parse_levels,
    parse_national,
    parse_report,
    parse_results,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "procedures_sample.jsonl"
KNOWLEDGE = ROOT / "knowledge"

# Measured on the full corpus when these tests were written: 2,697 / 2,849 (94.7 %) records fully parsed,
# 2,718 (95.4 %) clean on channels + documents + legal basis. The floors sit a little below.
FULLY_PARSED_FLOOR = 0.94
CORE_PARSED_FLOOR = 0.95


def _load_fixture() -> dict[str, dict]:
    records = {}
    with FIXTURE.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            records[record.get("ma_thu_tuc") or record["thu_tuc_id"]] = record
    return records


RECORDS = _load_fixture()


def national(code: str) -> Procedure:
    return parse_national(RECORDS[code])


def defence(code: str) -> Procedure:
    return parse_defence(RECORDS[code])


def channel(proc: Procedure, kind: str):
    [found] = [c for c in proc.channels if c.kind == kind]
    return found


# --------------------------------------------------------------------------------------------------
# National records, one shape each
# --------------------------------------------------------------------------------------------------


def test_birth_registration_channels_time_and_fee():
    # "Hình thức nộp…Mô tảTrực tuyến1Miễn phíDịch vụ bưu chính1Miễn phíTrực tiếp1Miễn phí": the portal lost
    # the time unit, so the time is kept as published ("1").
    p = national("1.001193")
    assert p.title == "Thủ tục đăng ký khai sinh"
    assert p.url == "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/019d2bfd-3fe0-70ac-b9d6-5e9e20d6eef7"
    assert p.source == "national"
    assert p.decision == "163/QĐ-BTP"
    assert p.levels == ["xa"]
    assert p.domain == "Hộ tịch"
    assert [c.kind for c in p.channels] == ["online", "post", "in_person"]
    in_person = channel(p, "in_person")
    assert (in_person.label, in_person.processing_time, in_person.fee) == ("Trực tiếp", "1", "Miễn phí")
    assert p.agency == ""  # co_quan_thuc_hien is "Không có thông tin" and there is no competent authority
    assert p.related == ""  # "Không có thông tin"
    assert p.results == ["Giấy khai sinh"]  # "Mã: KQ.G15.000031Từ khóa…Nộp hồ sơ" stripped
    assert p.parse_issues == []


def test_birth_registration_document_groups():
    p = national("1.001193")
    groups = list(dict.fromkeys(d.group for d in p.documents))
    assert groups == ["Giấy tờ phải nộp", "Giấy tờ phải xuất trình", "Lưu ý", ""]
    assert len(p.documents) == 33
    first = p.documents[0]
    assert first == RequiredDocument(
        name="- Trường hợp trẻ em bị bỏ rơi thì phải có biên bản về việc trẻ bị bỏ rơi do cơ quan có thẩm quyền lập.",
        copies="1 bản chính",
        form="",
        group="Giấy tờ phải nộp",
    )
    birth_certificate = [d for d in p.documents if d.name.startswith("- Giấy chứng sinh;")]
    assert [(d.copies, d.group) for d in birth_certificate] == [("1 bản chính", "Giấy tờ phải nộp")]
    # No name swallowed the zero-width mark of the source ("đăng k\u200eý").
    assert not any("\u200e" in d.name for d in p.documents)


def test_birth_registration_legal_basis_pairs():
    p = national("1.001193")
    assert len(p.legal_basis) == 15
    assert (
        LegalBasis(
            number="123/2015/NĐ-CP",
            title="Nghị định số 123/2015/NĐ-CP ngày 15/11/2015 của Chính phủ quy định chi tiết một số điều và "
            "biện pháp thi hành Luật Hộ tịch",
        )
        in p.legal_basis
    )
    # "Luật 60/2014/QH1360/2014/QH13": the title ends with the number the next cell repeats.
    assert LegalBasis(number="60/2014/QH13", title="Luật 60/2014/QH13") in p.legal_basis
    # "…của Bộ Tư pháp18/2026/NĐ-CP Nghị định quy định về…": number glued to its title, space before the next.
    assert (
        LegalBasis(
            number="18/2026/NĐ-CP",
            title="Nghị định sửa đổi, bổ sung một số nghị định để cắt giảm, đơn giản hóa thủ tục hành chính, "
            "điều kiện kinh doanh thuộc phạm vi quản lý của Bộ Tư pháp",
        )
        in p.legal_basis
    )
    assert (
        LegalBasis(
            number="87/2020/NĐ-CP",
            title="Nghị định quy định về Cơ sở dữ liệu hộ tịch điện tử, đăng ký hộ tịch trực tuyến",
        )
        in p.legal_basis
    )
    assert "66.7/2025/NQ-CP" in [b.number for b in p.legal_basis]


def test_fee_amount_with_note_and_working_days():
    p = national("1.004002")
    assert p.levels == ["tinh", "xa"]
    for c in p.channels:
        assert c.processing_time == "2 Ngày làm việc"
        assert c.fee == "70,000 VNĐ (70.000 đồng/Giấy chứng nhận)"
        assert c.description == ""
    form_rows = [(d.name, d.copies, d.form) for d in p.documents if d.form]
    assert form_rows == [
        ("Đơn đề nghị đăng ký lại phương tiện thủy nội địa theo quy định", "1 bản chính", "Mauon.docx")
    ]
    assert [d.group for d in p.documents][-2:] == ["Giấy tờ phải nộp để lưu giữ tại cơ quan đăng ký phương tiện"] * 2
    assert p.parse_issues == []


def test_single_in_person_channel_with_long_fee_note():
    p = national("1.000889")
    [only] = p.channels
    assert (only.kind, only.processing_time) == ("in_person", "7 Ngày làm việc")
    assert only.fee.startswith("50,000 Việt Nam Đồng (Luật Căn cước: 50.000 đồng/thẻ căn cước;")
    assert only.fee.endswith(")")
    assert p.decision == "5710/QĐ-BCA-C06"
    # The lone "-" before "Bước 1" is not kept as a step.
    assert p.steps[0].startswith("Bước 1: Công dân đến cơ quan quản lý căn cước của Bộ Công an")
    assert LegalBasis(number="26/2023/QH15", title="Luật Căn cước") in p.legal_basis
    assert p.results == ["Thẻ căn cước"]


def test_unitless_time_glued_to_fee_amount():
    # "Trực tuyến120 VNĐ(20.000 vnđ /tờ khai)": time "1" and a fee of "20 VNĐ" (the note says 20.000 vnđ);
    # amounts never start with 0 and are comma-grouped, which is what makes the split unambiguous.
    p = national("1.000014")
    assert [(c.kind, c.processing_time, c.fee) for c in p.channels] == [
        ("online", "1", "20 VNĐ (20.000 vnđ /tờ khai)"),
        ("in_person", "1", "20 VNĐ (20.000 vnđ /tờ khai)"),
    ]
    assert LegalBasis(number="54/2014/QH13", title="Luật 54/2014/QH13") in p.legal_basis
    assert p.results == []  # this page has no "Kết quả xử lý" section at all
    assert p.parse_issues == []


def test_no_information_cells_become_empty_strings():
    p = national("1.001303")
    [only] = p.channels
    assert (only.label, only.processing_time, only.fee) == ("Trực tiếp", "", "")
    # A series mark glued to the code belongs to it.
    assert "21/2007/TT-BCA(X13)" in [b.number for b in p.legal_basis]
    assert p.parse_issues == []


def test_tax_filing_without_result_time():
    p = national("1.007689")
    for c in p.channels:
        assert c.processing_time == "Không phải trả kết quả cho người nộp thuế"
        assert c.fee == "Miễn phí"
    assert channel(p, "online").description.startswith("Bằng phương thức điện tử qua Cổng dịch vụ công Quốc gia")
    assert [(d.name, d.form) for d in p.documents] == [
        ("Tờ khai thuế đối với hoạt động cho thuê bất động sản (Mẫu số 01/BĐS)", "01 BĐS.docx"),
        ("Phụ lục bảng kê chi tiết bất động sản (Mẫu số 01/BK-BĐS)", "01 BK-BĐS.docx"),
    ]
    assert p.results == ["Hồ sơ gửi đến cơ quan thuế không có kết quả giải quyết"]
    # "+ Bước 1. …": the bullet before the first marker is not kept as an intro step.
    assert len(p.steps) == 2
    assert p.steps[0].startswith("Bước 1. Cá nhân cho thuê bất động sản trực tiếp khai thuế với cơ quan thuế")
    assert p.steps[1] == "Bước 2. Cơ quan thuế tiếp nhận hồ sơ của người nộp thuế theo quy định."


def test_several_document_groups():
    p = national("2.002799")
    advance = "Đối với trường hợp tạm ứng chi phí định giá tài sản"
    payment = "Đối với trường hợp thanh toán chi phí định giá tài sản"
    assert [(d.group, d.name) for d in p.documents] == [
        (advance, "Giấy đề nghị tạm ứng"),
        (
            advance,
            "Bảng tính toán tổng chi phí thực hiện định giá tài sản và cơ sở tính toán chi phí thực hiện định giá tài",
        ),
        (payment, p.documents[2].name),
        (payment, "- Giấy đề nghị thanh toán"),
    ]
    assert p.documents[2].name.startswith("Văn bản yêu cầu định giá và bản chính các hoá đơn")
    assert {(c.processing_time, c.fee) for c in p.channels} == {("10 Ngày", "Miễn phí (không có)")}
    assert LegalBasis(number="05/2024/UBTVQH15", title="Pháp lệnh Chi phí tố tụng năm 2024") in p.legal_basis
    # Two "Bước 1, Bước 2" runs (one per case) are a clean numbering.
    assert "steps" not in p.parse_issues


def test_form_file_split_from_document_name():
    p = national("1.002010")
    assert [(d.name, d.copies, d.form) for d in p.documents] == [
        ("Dự thảo Điều lệ của công ty luật", "1 bản chính", ""),
        ("Giấy tờ chứng minh về trụ sở của tổ chức hành nghề luật sư.", "0 bản chính,1 bản sao", ""),
        ("Giấy đề nghị đăng ký hoạt động theo mẫu thống nhất", "1 bản chính", "Mẫu TP-LS-02-sđ.docx"),
    ]


def test_legal_number_glued_to_short_title():
    p = national("1.008333")
    assert LegalBasis(number="38/2019/QH14", title="Luật Quản lý thuế") in p.legal_basis
    assert LegalBasis(number="80/2021/TT-BTC", title="Thông tư 80/2021/TT-BTC") in p.legal_basis
    assert p.levels == ["bo", "tinh", "xa"]
    assert any(d.group.startswith("(i) Khai thuế đối với nhà thầu nước ngoài") for d in p.documents)


def test_sections_recut_where_the_crawler_split_wrongly():
    # The crawler cut this page at the first "Thành phần hồ sơ", which is quoted inside the steps, so the
    # record's own thanh_phan_ho_so field holds the end of the steps and no dossier table at all.
    record = RECORDS["1.001521"]
    assert "Tên giấy tờMẫu đơn, tờ khaiSố lượng" not in record["thanh_phan_ho_so"]
    p = national("1.001521")
    assert [s.split(" ")[1] for s in p.steps] == ["1.", "2.", "3."]
    assert p.steps[0].startswith("Bước 1. Lập, nộp hồ sơ NLĐ lập hồ sơ theo quy định tại mục 5.3 (Thành phần hồ sơ)")
    assert len(p.documents) == 8
    assert {d.copies for d in p.documents} == {"1 bản chính"}
    assert p.documents[0].group.startswith("Trường hợp không quy định là bản chính thì có thể nộp bản sao hợp lệ.")
    assert len(p.results) == 5
    assert "Tiền trợ cấp" in p.results
    assert p.parse_issues == []


def test_multiple_results_split_on_result_codes():
    p = national("1.014152")
    assert p.results == [
        "Văn bản chấp thuận nguyên tắc thành lập ngân hàng thương mại cổ phần",
        "Văn bản không chấp thuận nguyên tắc thành lập ngân hàng thương mại cổ phần",
    ]


def test_short_page_tail_and_missing_fee():
    p = national("5.003797")
    assert p.results == [
        "Quyết định phê duyệt quy hoạch tổng thể phát triển hệ thống cảng hàng không sân bay toàn quốc."
    ]
    for c in p.channels:
        assert (c.processing_time, c.fee, c.description) == ("1 Ngày", "", "không quy định cụ thể")
    assert p.competent_authority == "Thủ tướng Chính phủ"
    assert p.agency == "Bộ Xây dựng, Cục Hàng không Việt Nam"


def test_step_marker_glued_to_a_heading_and_per_channel_times():
    p = national("1.014256")
    assert p.steps[1].startswith("Bước 1. Nộp hồ sơ (tổ chức, cá nhân)")
    assert channel(p, "in_person").processing_time == "11 Ngày làm việc"
    assert channel(p, "online").processing_time == "13 Ngày làm việc"
    [with_form] = [d for d in p.documents if d.form]
    assert (with_form.name, with_form.form) == (
        "Văn bản đề nghị sử dụng khoáng sản",
        "Mau 03a - Phu luc III_36.2025.TT-BNNMT_02.7.2025.doc",
    )
    assert p.parse_issues == []


def test_unbalanced_fee_note_is_an_issue_but_recovered():
    p = national("1.004480")
    assert "channels" in p.parse_issues
    post = channel(p, "post")
    assert post.fee == (
        "2,000,000 VNĐ (đ/lần cấp (Miễn phí từ ngày 07/4/2026 đến 30/6/2026 theo quy định tại Thông tư 40/2026/TT-BTC)"
    )
    assert post.description == "05 ngày làm việc, kể từ ngày nhận được hồ sơ đầy đủ theo quy định"
    assert p.documents[0].form == "Vanbandenghi.docx; 1.004480.docx"


def test_hours_online_only_other_agency_level():
    p = national("3.000141")
    assert [(c.kind, c.processing_time, c.fee) for c in p.channels] == [("online", "8 Giờ", "Miễn phí")]
    assert p.levels == ["khac"]
    # The number cell holds only "42/2020" — kept as published.
    assert [b.number for b in p.legal_basis] == ["42/2020"]


def test_fee_note_with_nested_parentheses_and_description():
    p = national("1.002613")
    c = channel(p, "in_person")
    assert c.processing_time == "20 Ngày làm việc"
    assert c.fee.startswith("2,500,000 Việt Nam Đồng (Phí : Đồng (Từ ngày 01/7/2025 đến hết ngày 31/12/2026")
    assert c.description == "20 ngày làm việc kể từ khi nhận đủ hồ sơ hợp lệ."
    numbers = {b.number: b.title for b in p.legal_basis}
    assert numbers["84/2024/NĐ-CP"].startswith("Nghị định số 84/2024/NĐ-CP về thí điểm phân cấp")
    assert not any(b.title.startswith("-") for b in p.legal_basis)


def test_repeated_channel_labels_for_two_stages():
    p = national("1.011726")
    assert [(c.kind, c.processing_time) for c in p.channels] == [
        ("online", "2 Ngày làm việc"),
        ("post", "2 Ngày làm việc"),
        ("in_person", "2 Ngày làm việc"),
        ("in_person", "3 Ngày làm việc"),
        ("online", "3 Ngày làm việc"),
        ("post", "3 Ngày làm việc"),
    ]
    assert {c.fee for c in p.channels} == {""}
    assert p.parse_issues == []


def test_prose_instead_of_dossier_table_is_an_issue():
    p = national("6.003500")
    assert "documents" in p.parse_issues
    for c in p.channels:
        assert (c.processing_time, c.fee) == ("", "")
        assert c.description == "Không quy định thời hạn giải quyết, phí, lệ phí"


def test_no_legal_basis_published_is_not_an_issue():
    assert RECORDS["3.000336"]["can_cu_phap_ly"] == "Không có thông tin"
    p = national("3.000336")
    assert p.legal_basis == []
    assert "legal_basis" not in p.parse_issues
    assert {c.processing_time for c in p.channels} == {"1 Ngày"}


def test_decomposed_unicode_is_normalised_before_matching():
    record = RECORDS["1.002438"]
    assert unicodedata.normalize("NFC", record["cach_thuc_thuc_hien"]) != record["cach_thuc_thuc_hien"]
    p = national("1.002438")
    [only] = p.channels
    assert (only.label, only.processing_time, only.fee) == (
        "Trực tiếp",
        "7 Ngày làm việc",
        "2,000 Việt Nam Đồng (2.000 đồng/thẻ)",
    )


def test_all_caps_form_name_after_a_legal_number():
    # "…Thông tư 13/2016/TT-BNNPTNTPHỤ LỤC IV.MẪU ĐƠN…docx", written with combining marks in the source.
    p = national("1.003587")
    forms = [d.form for d in p.documents if d.form]
    assert "PHỤ LỤC IV.MẪU ĐƠN ĐỀ NGHỊ CẤP LẠI GIẤY CHỨNG NHẬN LƯU HÀNH.docx" in forms


def test_copies_cells_without_names_are_an_issue():
    # "…Phlc06.docx1 bản chính1 bản chính1 bản chính1 bản chính": rows without names.
    p = national("1.001963")
    assert "documents" in p.parse_issues
    assert len(p.documents) == 3
    assert p.documents[2].form == "Phlc06.docx"


def test_step_numbering_gap_is_an_issue():
    p = national("1.013442")  # Bước 1, Bước 2, Bước 4
    assert "steps" in p.parse_issues
    assert [s[:6] for s in p.steps] == ["Bước 1", "Bước 2", "Bước 4"]


# --------------------------------------------------------------------------------------------------
# Defence records
# --------------------------------------------------------------------------------------------------


def test_defence_record_mapped_into_the_same_schema():
    p = defence("1.013124")
    assert p.source == "defence"
    assert p.url is None
    assert p.decision == "6225/QĐ-BQP"
    assert p.levels == ["bo"]
    assert p.agency == "Văn phòng Ủy ban Quốc gia Ứng phó sự cố, thiên tai và Tìm kiếm cứu nạn"
    assert [(c.kind, c.processing_time, c.fee) for c in p.channels] == [
        ("in_person", "30 Ngày làm việc", "Phí : 0 Đồng"),
        ("online", "30 Ngày làm việc", "Phí : 0 Đồng"),
        ("post", "30 Ngày làm việc", "Phí : 0 Đồng"),
    ]
    assert p.documents[1].copies == "Bản chính: 1 / Bản sao: 0"
    assert p.documents[1].form == "5-PHLCII.doc"  # the file's "so_luong" column holds the form file
    # so_ky_hieu is only "12": the full number comes from the abstract.
    assert [b.number for b in p.legal_basis] == ["12/2021/QĐ-TTg"]
    assert [s[:6] for s in p.steps] == ["Bước 1", "Bước 2", "Bước 3"]
    assert p.results == ["Quyết định phê duyệt kế hoạch ứng phó sự cố tràn dầu."]
    assert p.parse_issues == []


def test_defence_incomplete_legal_numbers_are_an_issue():
    p = defence("1.013577")
    assert p.parse_issues == ["legal_basis"]
    assert LegalBasis(number="54", title="Luật Hải quan 2014") in p.legal_basis
    assert LegalBasis(number="", title="BỘ LUẬT HÀNG HẢI VIỆT NAM") in p.legal_basis
    [only] = p.channels
    assert (only.processing_time, only.fee) == ("Chậm nhất là ngay trước khi tàu rời cảng", "Phí : Không Đồng")
    assert p.levels == ["xa"]


def test_defence_steps_without_markers_split_on_numbered_items():
    p = defence("1.013626")
    assert [s[:2] for s in p.steps] == ["1.", "2.", "3."]
    assert [(c.kind, c.processing_time) for c in p.channels] == [("in_person", "05 Ngày"), ("post", "05 Ngày")]


# --------------------------------------------------------------------------------------------------
# The cleanliness checks can fail
# --------------------------------------------------------------------------------------------------


def test_levels():
    assert parse_levels("Cấp bộ, Cấp tỉnh, Cấp xã, Cơ quan khác") == ["bo", "tinh", "xa", "khac"]
    assert parse_levels("Cấp Bộ, Cấp Tỉnh, Cấp Xã") == ["bo", "tinh", "xa"]
    assert parse_levels("Không có thông tin") == []


def test_channel_text_that_does_not_parse_is_reported():
    header = "Hình thức nộpThời gianPhí, lệ phíMô tả"
    assert parse_channels(header + "Trực tiếp5 Ngày làm việcMiễn phí")[1] is True
    assert parse_channels("Trực tiếp5 Ngày làm việcMiễn phí")[1] is False  # no table header
    assert parse_channels(header + "Nộp tại UBND xãTrực tiếp5 NgàyMiễn phí")[1] is False  # text before a row
    assert parse_channels(header + "Trực tiếp5 NgàyMiễn phí(chưa đóng ngoặc")[1] is False  # unbalanced note
    # A fee note that holds a channel label swallowed something.
    assert parse_channels(header + "Trực tiếp5 Ngày50,000 VNĐ(+ Trực tuyến: nộp qua Cổng)")[1] is False


def test_legal_text_without_a_number_is_reported():
    assert parse_legal_basis("Tên văn bản pháp lýMã văn bảnLuật Hộ tịch60/2014/QH13")[1] is True
    assert parse_legal_basis("Tên văn bản pháp lýMã văn bảnLuật Hộ tịch")[1] is False
    assert parse_legal_basis("Không có thông tin") == ([], True)


def test_results_boilerplate_is_checked():
    tail = "Từ khóaKhông có thông tinMô tảKhông có thông tinChọn cơ quan thực hiệnTỉnh/ Thành phốBộ ngànhNộp hồ sơ"
    assert parse_results("Giấy khai sinhMã: KQ.G15.000031" + tail) == (["Giấy khai sinh"], True)
    assert parse_results("Giấy khai sinhMã: KQ.G15.000031Từ khóa???") == (["Giấy khai sinh"], False)


# --------------------------------------------------------------------------------------------------
# The whole corpus
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[Procedure]:
    assert (KNOWLEDGE / "procedures" / "national_procedures.jsonl.gz").exists()
    assert (KNOWLEDGE / "procedures" / "defence_procedures.jsonl.gz").exists()
    return load_procedures(KNOWLEDGE)


def test_corpus_loads_every_record_once_sorted_by_code(corpus):
    codes = [p.code for p in corpus]
    assert len(codes) == 2849
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert sum(p.source == "national" for p in corpus) == 2642
    assert sum(p.source == "defence" for p in corpus) == 207
    assert all(p.url and p.url.startswith("https://dichvucong.gov.vn/") for p in corpus if p.source == "national")
    assert all(p.url is None for p in corpus if p.source == "defence")


def test_corpus_parse_report_stays_above_floor(corpus):
    report = parse_report(corpus)
    assert report["total"] == 2849
    assert report["fully_parsed"] == sum(not p.parse_issues for p in corpus)
    assert report["fully_parsed"] / report["total"] >= FULLY_PARSED_FLOOR
    assert report["core_parsed"] / report["total"] >= CORE_PARSED_FLOOR
    assert set(report["failures"]) == {"channels", "documents", "legal_basis", "results", "steps"}
    assert sum(report["failures"].values()) >= report["total"] - report["fully_parsed"]


def test_corpus_has_no_leftover_boilerplate_or_placeholders(corpus):
    for p in corpus:
        assert all("Mã:" not in r and "Từ khóa" not in r for r in p.results), p.code
        assert all(c.fee != "Không có thông tin" and c.processing_time != "Không có thông tin" for c in p.channels)
        assert p.agency != "Không có thông tin", p.code
        assert all(d.name for d in p.documents), p.code


def test_cli_prints_the_report(capsys):
    assert main(["--report", "--knowledge-dir", str(KNOWLEDGE)]) == 0
    out = capsys.readouterr().out
    assert "records" in out and "2849" in out
    assert "fully parsed" in out
    assert "legal_basis" in out
