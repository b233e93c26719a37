"""Off-topic rules of bot.answer.scope: what they refuse, and the procedure questions sharing their words."""

from __future__ import annotations

import pytest

from bot.answer.scope import classify_scope


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("Tôi bị mất ngủ nhiều đêm nên làm gì", "medical"),
        ("dau da day uong gi", "medical"),
        ("Tôi muốn vay tiền online lãi thấp", "financial"),
        ("Giá xăng hôm nay bao nhiêu", "financial"),
        ("Làm sao để giàu nhanh", "financial"),
        ("Cách sửa máy lạnh không mát", "commercial"),
        ("Mua bảo hiểm xe máy online ở đâu rẻ", "commercial"),
        ("nen mua xe gi di lam", "commercial"),
        ("Giải giúp tôi bài toán lớp 5", "writing"),
        ("Tôi nên chọn ngành gì", "writing"),
        ("Tối nay đi chơi đâu ở Sài Gòn", "entertainment"),
        ("Bạn có biết hát không", "entertainment"),
    ],
)
def test_everyday_requests_outside_public_services_are_refused(question: str, category: str) -> None:
    verdict = classify_scope(question)
    assert verdict is not None and verdict.category == category


@pytest.mark.parametrize(
    "question",
    [
        "Cấp sổ đỏ lần đầu mất bao lâu?",  # "lần đầu mất": no headache
        "Mất giấy đăng ký xe máy thì làm lại ở đâu?",
        "Vay vốn ưu đãi hộ nghèo ở ngân hàng chính sách cần hồ sơ gì?",
        "Thẻ bảo hiểm y tế bị mất thì làm lại thế nào?",
        "Đăng ký mua bảo hiểm y tế hộ gia đình ở đâu?",
        "Lệ phí trước bạ xe máy là bao nhiêu?",
        "Thành lập Hội đồng quản lý quỹ bảo hiểm xe cơ giới cần hồ sơ gì?",  # real titles sharing the words
        "Khai phụ thu khi giá dầu thô biến động tăng nộp ở đâu?",
        "Đến năm 2025 bao nhiêu phần trăm cơ sở y tế ở Vũng Tàu có dịch vụ khám, chữa bệnh từ xa?",  # a plan target
    ],
)
def test_procedure_questions_sharing_those_words_pass(question: str) -> None:
    assert classify_scope(question) is None
