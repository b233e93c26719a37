"""Plan documents → passages (bot/knowledge/plans.py): metadata, sections, table rows, OCR repair."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.knowledge.models import PlanDocument, PlanPassage
from bot.knowledge.plans import (
    OcrRepairer,
    default_repairer,
    fold,
    load_plan_documents,
    load_plan_passages,
    split_plan,
)

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
PLANS = KNOWLEDGE / "plans"

BD = "binhduong-2021-ke-hoach-cds-2021-2025"
QD2207 = "brvt-2021-qd2207-chuong-trinh-hanh-dong-cds"
QD180 = "brvt-2023-qd180-ke-hoach-bcd-cds"
NQ50 = "brvt-chuong-trinh-hanh-dong-nq50-cmcn4"
KTS = "brvt-ke-hoach-kinh-te-so-xa-hoi-so-2025-2030"

FIELD_KEYS = {
    "indicator", "task", "current_value", "national_target", "target", "result",
    "owner", "partners", "supervisor", "deadline", "note", "no",
}  # fmt: skip


@pytest.fixture(scope="module")
def docs() -> dict[str, PlanDocument]:
    return {d.doc_id: d for d in load_plan_documents(KNOWLEDGE)}


@pytest.fixture(scope="module")
def passages() -> list[PlanPassage]:
    return load_plan_passages(KNOWLEDGE)


def of(passages: list[PlanPassage], doc_id: str, kind: str | None = None) -> list[PlanPassage]:
    return [p for p in passages if p.doc_id == doc_id and (kind is None or p.kind == kind)]


def one(passages: list[PlanPassage], doc_id: str, *needles: str, kind: str | None = None) -> PlanPassage:
    """The single passage of ``doc_id`` whose text contains every needle (fails if none or several)."""
    found = [p for p in of(passages, doc_id, kind) if all(n in p.text for n in needles)]
    assert len(found) == 1, f"{needles}: {[p.passage_id for p in found]}"
    return found[0]


def row(passages: list[PlanPassage], doc_id: str, key: str, needle: str) -> PlanPassage:
    found = [p for p in of(passages, doc_id, "table_row") if needle in p.fields.get(key, "")]
    assert len(found) == 1, f"{needle}: {[p.passage_id for p in found]}"
    return found[0]


def words(text: str) -> set[str]:
    return set(re.findall(r"[0-9a-z]+(?:[.,][0-9]+)*%?", fold(text)))


# ----------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------


def test_every_plan_file_has_metadata_and_back(docs):
    assert set(docs) == {p.stem for p in PLANS.glob("*.txt")}


@pytest.mark.parametrize(
    "doc_id, number, date, issuer, province, damaged",
    [
        (QD2207, "2207/QĐ-UBND", "2021-08-06", "Ủy ban nhân dân tỉnh Bà Rịa - Vũng Tàu", "Bà Rịa - Vũng Tàu", True),
        (KTS, "", "", "Ủy ban nhân dân tỉnh Bà Rịa - Vũng Tàu", "Bà Rịa - Vũng Tàu", False),
        (
            QD180,
            "180/QĐ-BCĐ",
            "2023-06-26",
            "Ban Chỉ đạo Chuyển đổi số tỉnh Bà Rịa - Vũng Tàu",
            "Bà Rịa - Vũng Tàu",
            False,
        ),
        (NQ50, "336/QĐ-UBND", "2021-02-17", "Ủy ban nhân dân tỉnh Bà Rịa - Vũng Tàu", "Bà Rịa - Vũng Tàu", False),
        (BD, "816/QĐ-UBND", "2021-03-31", "Ủy ban nhân dân tỉnh Bình Dương", "Bình Dương", True),
    ],
)
def test_document_metadata(docs, doc_id, number, date, issuer, province, damaged):
    d = docs[doc_id]
    assert (d.number, d.date, d.issuer, d.province, d.ocr_damaged) == (number, date, issuer, province, damaged)
    assert d.title and "\n" not in d.title


def test_titles_name_what_each_plan_is(docs):
    assert "cải cách hành chính" in docs[QD2207].title
    assert "kinh tế số và xã hội số" in docs[KTS].title
    assert "Ban Chỉ đạo Chuyển đổi số" in docs[QD180].title and "2023" in docs[QD180].title
    assert "50/NQ-CP" in docs[NQ50].title and "Cách mạng công nghiệp lần thứ tư" in docs[NQ50].title
    assert docs[BD].title.startswith("Kế hoạch chuyển đổi số tỉnh Bình Dương")


def test_knowledge_dir_may_be_the_plans_folder_itself():
    assert [d.doc_id for d in load_plan_documents(PLANS)] == [d.doc_id for d in load_plan_documents(KNOWLEDGE)]


# ----------------------------------------------------------------------------------------------
# Passages: shape
# ----------------------------------------------------------------------------------------------


def test_every_document_is_split(passages, docs):
    for doc_id in docs:
        ps = of(passages, doc_id)
        assert len(ps) >= 30, doc_id
        assert [p.passage_id for p in ps] == [f"{doc_id}#{i}" for i in range(1, len(ps) + 1)]
    assert len(of(passages, QD180, "table_row")) >= 70  # 32 indicators + 45 tasks
    assert len(of(passages, NQ50, "table_row")) >= 50
    assert len(of(passages, QD2207, "table_row")) >= 100  # Phụ lục 2 and 2A rebuilt from the scan


def test_section_passages_are_sized(passages):
    sections = [p for p in passages if p.kind == "section"]
    assert all(p.text.strip() for p in passages)
    assert all(len(p.text) <= 1400 for p in sections), max(len(p.text) for p in sections)
    assert sum(len(p.text) for p in sections) / len(sections) > 300  # a few sentences, not single lines
    # only the lines before the first heading ("Số: 180 /QĐ-BCĐ … ngày 26 tháng 6 năm 2023") have no heading path
    assert all(p.heading or p.passage_id.endswith("#1") for p in passages)


def test_headings_keep_the_path(passages):
    p = one(passages, KTS, "35-37% GRDP")
    assert p.heading == "KẾ HOẠCH > II. MỤC TIÊU > 1. Phát triển kinh tế số > b) Mục tiêu cơ bản đến năm 2030"
    p = one(passages, QD180, "Tỷ trọng giá trị tăng thêm của kinh tế số chiếm 16% GRDP", kind="section")
    assert p.heading.endswith("2. Phát triển kinh tế số > a) Chỉ tiêu cụ thể")
    p = one(passages, NQ50, "Smart Grid", kind="table_row")
    assert p.heading.endswith("III. Phát triển hạ tầng thiết yếu")


def test_no_html_markdown_or_tabs_left(passages):
    for p in passages:
        for s in [p.text, p.heading, *p.fields.values()]:
            assert not re.search(r"</?[a-zA-Z][^<>]*>", s), (p.passage_id, s[:120])
            assert "\t" not in s and "**" not in s and not s.lstrip().startswith("#"), p.passage_id


def test_page_numbers_and_headers_are_stripped(passages):
    for p in passages:
        assert not any(re.fullmatch(r"\s*\d{1,3}\s*", line) for line in p.text.split("\n")), p.passage_id
        f = fold(p.text)
        assert "cong hoa xa hoi chu nghia" not in f and "tu do - hanh phuc" not in f, p.passage_id
        assert "noi nhan:" not in f and "luu: vt" not in f, p.passage_id


# ----------------------------------------------------------------------------------------------
# Facts land in one passage with their context
# ----------------------------------------------------------------------------------------------


def test_binhduong_1022_hotline_figures_stay_together(passages):
    p = one(passages, BD, "1022")
    assert "66,3%" in p.text and "5.950" in p.text  # requests received and share answered satisfactorily
    assert "Chinh quy2n dién tir" in p.heading  # c) Về triển khai Chính quyền điện tử


def test_facts_in_their_sections(passages):
    assert "GIAI PHAP" in one(passages, BD, "Tier 3").heading
    assert "Danh gia chung" in one(passages, BD, "4/63").heading
    assert "y t" in one(passages, QD2207, "95%", "25%").heading  # hồ sơ sức khỏe 95%, khám từ xa 25%
    assert "V. KINH PHÍ THỰC HIỆN" in one(passages, KTS, "1,5%").heading
    assert "IV. TỔ CHỨC THỰC HIỆN" in one(passages, NQ50, "15 tháng 11").heading
    assert "III. KINH PHÍ" in one(passages, QD180, "3868/QĐ-UBND").heading


def test_qd180_callbot_task_row(passages):
    p = row(passages, QD180, "task", "CALLBOT")
    assert p.fields["owner"] == "Sở Thông tin và Truyền thông"
    assert p.fields["partners"] == "Các sở, ban, ngành, địa phương"
    assert p.fields["deadline"] == "Quý IV/2023"
    assert p.fields["note"] == "Nhiệm vụ 2022 chuyển sang"
    assert p.text.startswith("Nhiệm vụ: Xây dựng, triển khai hệ thống Tổng đài tự động CALLBOT")
    assert "Đơn vị chủ trì: Sở Thông tin và Truyền thông" in p.text and "Thời gian hoàn thành: Quý IV/2023" in p.text
    assert "CHÍNH QUYỀN SỐ" in p.heading and "PHỤ LỤC II" in p.heading


def test_qd180_indicator_rows_keep_current_value_and_targets(passages):
    p = row(passages, QD180, "indicator", "toàn trình được tích hợp, cung cấp trên Cổng Dịch vụ công quốc gia")
    f = p.fields
    assert (f["current_value"], f["national_target"], f["target"], f["owner"]) == (
        "29,2%",
        "40%",
        "50%",
        "VP UBND tỉnh",
    )
    assert "Hiện trạng của tỉnh đến tháng 5/2023: 29,2%" in p.text and "Chỉ tiêu của tỉnh năm 2023: 50%" in p.text
    p = row(passages, QD180, "indicator", "tài khoản định danh điện tử")
    assert (p.fields["current_value"], p.fields["target"], p.fields["owner"]) == ("11,13%", "30% - 50%", "Công an tỉnh")
    assert "XÃ HỘI SỐ" in p.heading


def test_qd180_rows_broken_by_page_breaks_are_merged(passages):
    p = row(passages, QD180, "indicator", "định danh và xác thực thông suốt, hợp nhất")
    assert p.fields["no"] == "5" and p.fields["target"] == "100%"
    p = row(passages, QD180, "indicator", "bồi dưỡng, phổ cập kỹ năng số cơ bản")
    assert p.fields["owner"] == "Các sở, ban, ngành, địa phương"  # "…, địa" + "phương" on the next page
    p = row(passages, QD180, "task", "kế hoạch phát triển kinh tế số và xã hội số thuộc phạm vi quản lý")
    assert p.fields["deadline"] == "Quý III/2023" and p.fields["owner"] == "Sở Thông tin và Truyền thông"
    p = row(passages, QD180, "task", "Chỉ số DTI")  # a row without a number at the top of Phụ lục II
    assert p.fields["note"].startswith("Bộ TT&TT đang thực hiện đánh giá")


def test_nq50_tables_with_html_cells(passages):
    p = row(passages, NQ50, "task", "Xây dựng Trung tâm giám sát, điều hành đô thị thông minh")
    assert (p.fields["owner"], p.fields["deadline"]) == ("Sở TT&TT", "2020 – 2022")
    assert "Cơ quan chủ trì: Sở TT&TT" in p.text and "Thời gian thực hiện: 2020 – 2022" in p.text
    # one cell held two numbered tasks; the second one takes the data cells of the next line
    assert row(passages, NQ50, "task", "Kiến trúc công nghệ thông tin - truyền thông (ICT)").fields["deadline"] == (
        "2020 – 2021"
    )
    assert row(passages, NQ50, "task", "hạ tầng kỹ thuật ICT sẵn sàng").fields["deadline"] == "2020 – 2022"
    # group titles (bold rows) go into the heading path
    assert row(passages, NQ50, "task", "Tăng cường viết tin, bài").heading.endswith("I. Đổi mới tư duy, thống nhất "
        "nhận thức, tăng cường vai trò lãnh đạo của Đảng, quản lý của Nhà nước, phát huy sự tham gia của Mặt trận Tổ "
        "quốc và các tổ chức chính trị - xã hội")  # fmt: skip
    # a fragment shifted into the neighbouring column by the PDF is re-attached where it belongs
    p = row(passages, NQ50, "task", "quản lý tài nguyên, môi trường thông minh")
    assert p.fields["owner"] == "Sở TN&MT" and p.fields["partners"].endswith("các đơn vị liên quan")


def test_qd2207_callbot_row_rebuilt_from_the_scan(passages):
    found = [p for p in of(passages, QD2207, "table_row") if "CALLBOT" in p.fields.get("task", "")]
    assert len(found) == 2  # Phụ lục 2 (by group) and Phụ lục 2A (by year)
    for p in found:
        assert p.fields["deadline"] == "Quý IV/2022"
        assert "thong tin va tru" in fold(p.fields["owner"])
        assert "van phong ubnd tinh" in fold(p.fields["partners"])
        assert "tong dai tu dong callbot giai dap cac thu tuc hanh chinh" in p.search_text
    assert {p.fields.get("no") for p in found} == {"15", "35"}


def test_table_rows_keep_column_meanings(passages):
    rows = [p for p in passages if p.kind == "table_row"]
    for p in rows:
        assert set(p.fields) <= FIELD_KEYS, (p.passage_id, set(p.fields) - FIELD_KEYS)
        content = p.fields.get("indicator") or p.fields.get("task")
        assert content, p.passage_id
        assert p.text.startswith(("Chỉ tiêu: ", "Nhiệm vụ: ")), p.passage_id
        for k, v in p.fields.items():
            if k != "no":
                assert v.rstrip(".;, ") in p.text, (p.passage_id, k)
    assert sum(1 for p in rows if "deadline" in p.fields) >= 150
    assert sum(1 for p in rows if "target" in p.fields) >= 30


# ----------------------------------------------------------------------------------------------
# OCR repair
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damaged, repaired",
    [
        ("Chuyn di s, do thj thông minh", "chuyen doi so do thi thong minh"),  # dropped vowels (QĐ 2207)
        ("Chuyén dbi s6 tinh Binh Duong", "chuyen doi so tinh binh duong"),  # wrong accents, digit for o
        ("Nghj quyêt cüa Ban Chap hành Bang b tinh", "nghi quyet cua ban chap hanh dang bo tinh"),
        ("djnh hu'ó'ng dén nám 2030", "dinh huong den nam 2030"),
        ("Quyét dinh s6 €16 /QD-UBND", "quyet dinh so 816 qd ubnd"),
        ("Ty 18 hd so giai quyét", "ty le ho so giai quyet"),
        ("PAu tu ning cip, Pang bd tinh", "dau tu nang cap dang bo tinh"),  # "Đ" read as "P"
        ("UY BAN NHAN DAN T!NH", "uy ban nhan dan tinh"),
        (
            "Xây dirng, trin khai h thng Tng dài tir dng CALLBOT",
            "xay dung trien khai he thong tong dai tu dong callbot",
        ),
    ],
)
def test_ocr_repair(damaged, repaired):
    assert default_repairer().repair(damaged) == repaired


def test_ocr_repair_learns_from_clean_text():
    rep = OcrRepairer.from_texts(["Hệ thống đường dây nóng tiếp nhận phản ánh."])
    assert rep.repair("Hé théng duong day néng") == "he thong duong day nong"
    assert rep.repair("tiép nhan phén anh") == "tiep nhan phan anh"


def test_search_text_of_damaged_documents_meets_plain_questions(passages):
    p = one(passages, BD, "1022")
    shared = words("kế hoạch chuyển đổi số Bình Dương tổng đài 1022 tỉ lệ hài lòng") & words(p.search_text)
    assert {"ke", "hoach", "chuyen", "doi", "so", "binh", "duong", "1022"} <= shared
    assert "duong day nong 1022" in p.search_text and "giai dap thoa dang" in p.search_text
    p = [x for x in of(passages, QD2207, "table_row") if "CALLBOT" in x.text][0]
    question = words("callbot giải đáp thủ tục hành chính Bà Rịa Vũng Tàu")
    assert question <= words(p.search_text)
    assert question <= words("callbot giai dap thu tuc hanh chinh ba ria vung tau")  # typed without accents


def test_damaged_passages_answer_typical_questions_by_word_overlap(passages):
    """A bag-of-words match over folded search_text finds the right passage of a damaged document."""

    def best(question: str, doc_id: str) -> PlanPassage:
        q = words(question) - {"la", "bao", "nhieu", "cua", "co", "va", "cac", "so", "nao", "khi", "tinh"}
        return max(of(passages, doc_id), key=lambda p: len(q & words(p.search_text)))

    assert "1022" in best("duong day nong 1022 giai dap thoa dang phan anh bao nhieu phan tram", BD).text
    assert "Tier 3" in best("trung tâm dữ liệu tập trung của tỉnh đạt chuẩn Tier mấy", BD).text
    assert "25%" in best("khám chữa bệnh từ xa cơ sở y tế mục tiêu 2025", QD2207).text
    assert "1.457" in best("chữ ký số cấp phát cho cá nhân chứng thư số tổ chức", QD2207).text


def test_clean_documents_are_not_repaired(passages):
    p = row(passages, QD180, "task", "CALLBOT")
    label = "Bà Rịa - Vũng Tàu | 180/QĐ-BCĐ | Kế hoạch hoạt động của Ban Chỉ đạo Chuyển đổi số tỉnh Bà Rịa - Vũng Tàu năm 2023"
    assert p.search_text == f"{label}\n{p.heading}\n{p.text}"  # no repaired copy


# ----------------------------------------------------------------------------------------------
# split_plan on a small document
# ----------------------------------------------------------------------------------------------

SAMPLE = """CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Độc lập - Tự do - Hạnh phúc

## QUYẾT ĐỊNH

**Điều 1.** Ban hành kèm theo Quyết định này Kế hoạch thử nghiệm.

KẾ HOẠCH

I. MỤC TIÊU

1. Mục tiêu chung

a) Chỉ tiêu cụ thể

- 90% hồ sơ được xử lý trên môi trường mạng;
- 100% thủ tục có tổng đài giải đáp.

3

II. NHIỆM VỤ

Số TT\tNội dung\tĐơn vị chủ trì\tĐơn vị phối hợp\tThời gian hoàn thành\tGhi chú
I\tCHÍNH QUYỀN SỐ\t\t\t\t
1\t<p>Xây dựng tổng đài tự động giải đáp thủ tục hành chính cho</p>\tSở Thông tin và\tCác sở, ban, ngành\tQuý IV/2023\t

Số TT\tNội dung\tĐơn vị chủ trì\tĐơn vị phối hợp\tThời gian hoàn thành\tGhi chú
\t<b>người dân</b>\tTruyền thông\t\t\t
2\tTriển khai ứng dụng Zalo\tSở Thông tin và Truyền thông\t\tQuý II/2023\tMới
"""


def test_split_plan_sections_and_table():
    doc = PlanDocument("sample", "Kế hoạch thử nghiệm", "1/QĐ-X", "2024-01-02", "UBND tỉnh X", "Tỉnh X")
    ps = split_plan(doc, SAMPLE)
    sections = [p for p in ps if p.kind == "section"]
    rows = [p for p in ps if p.kind == "table_row"]
    assert [p.heading for p in sections] == [
        "QUYẾT ĐỊNH > Điều 1.",
        "KẾ HOẠCH > I. MỤC TIÊU > 1. Mục tiêu chung > a) Chỉ tiêu cụ thể",
    ]
    assert sections[1].text == "- 90% hồ sơ được xử lý trên môi trường mạng;\n- 100% thủ tục có tổng đài giải đáp."
    assert len(rows) == 2
    assert rows[0].heading == "KẾ HOẠCH > II. NHIỆM VỤ > I. CHÍNH QUYỀN SỐ"
    assert rows[0].fields == {
        "task": "Xây dựng tổng đài tự động giải đáp thủ tục hành chính cho người dân",
        "owner": "Sở Thông tin và Truyền thông",
        "partners": "Các sở, ban, ngành",
        "deadline": "Quý IV/2023",
        "no": "1",
    }
    assert rows[1].text == (
        "Nhiệm vụ: Triển khai ứng dụng Zalo; Đơn vị chủ trì: Sở Thông tin và Truyền thông; "
        "Thời gian hoàn thành: Quý II/2023; Ghi chú: Mới"
    )
    assert all(p.search_text.startswith("Tỉnh X | 1/QĐ-X | Kế hoạch thử nghiệm\n") for p in ps)
    assert not any("Hạnh phúc" in p.text or "<p>" in p.text for p in ps)


def test_split_plan_of_a_damaged_document_adds_repaired_words(docs):
    text = (PLANS / f"{BD}.txt").read_text(encoding="utf-8")
    ps = split_plan(docs[BD], text)
    assert [p.text for p in ps] == [p.text for p in load_plan_passages(KNOWLEDGE) if p.doc_id == BD]
    assert any("chuyen doi so" in p.search_text and "Chuyén dbi" in p.text for p in ps)


def test_stats_command():
    out = subprocess.run(
        [sys.executable, "-m", "bot.knowledge.plans", "--stats"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for doc_id in (BD, QD2207, QD180, NQ50, KTS):
        assert re.search(rf"^{doc_id}\s+\d+\s+\d+\s+\d+\s+\d+", out, re.M), out


# ----------------------------------------------------------------------------------------------
# Development questions (eval/devset/plan_questions.jsonl)
# ----------------------------------------------------------------------------------------------


def test_plan_devset_is_well_formed_and_grounded(passages, docs):
    import json

    rows = [json.loads(line) for line in (ROOT / "eval/devset/plan_questions.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) >= 35
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(set(r) == {"id", "question", "doc_id", "expected", "note"} for r in rows)
    assert sum(fold(r["question"]) == r["question"].lower() for r in rows) >= 12  # typed without diacritics
    assert sum(docs[r["doc_id"]].ocr_damaged for r in rows) >= 8
    for r in rows:
        raw = fold(re.sub(r"\s+", " ", (PLANS / f"{r['doc_id']}.txt").read_text("utf-8")))
        indexed = fold(" ".join(p.search_text for p in of(passages, r["doc_id"])))
        assert any(fold(e) in raw or fold(e) in indexed for e in r["expected"]), r["id"]


def test_dense_scores_of_ocr_damaged_passages_do_not_count_for_plan_questions(engine) -> None:
    """Passages of OCR-damaged scans are embedded from their damaged spelling: for a question about the plans,
    their score is lexical (computed on the repaired copy) whatever the dense channel says; clean passages, and
    damaged ones for questions without a plan cue, keep the usual vote."""
    from bot.ranking.weights import WEIGHTS

    ranker = engine.ranker
    damaged = [i for i, flag in enumerate(ranker.records.ocr_damaged) if flag]
    clean = [i for i, d in enumerate(engine.index.docs) if d.kind == "plan" and not ranker.records.ocr_damaged[i]]
    assert damaged and clean
    lex = np.ones(len(engine.index.docs), dtype=np.float32)
    weights = (WEIGHTS.lexical, WEIGHTS.dense)

    def scores(question: str, i: int) -> list[float]:
        query = ranker.features(engine.read(question))
        return [ranker.score({i: dense}, {}, lex, 1.0, weights, query)[0].score for dense in (0.0, 1.0)]

    plan_question = "Kế hoạch chuyển đổi số tỉnh Bà Rịa - Vũng Tàu đặt mục tiêu gì?"
    low, high = scores(plan_question, damaged[0])
    assert low == pytest.approx(high)
    low, high = scores(plan_question, clean[0])
    assert high - low == pytest.approx(WEIGHTS.dense)
    low, high = scores("thủ tục cấp phép xây dựng nhà ở", damaged[0])
    assert high - low == pytest.approx(WEIGHTS.dense)
