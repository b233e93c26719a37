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
        # entries written with their diacritics: typed bare or with the same marks they are the topic
        ("Tối nay có trận đấu bóng đá nào", "sport"),
        ("toi nay co tran dau nao hay", "sport"),
        ("Mai có mưa bão không", "weather"),
        ("Bị sốt cao uống thuốc gì", "medical"),
        ("bi sot cao uong thuoc gi", "medical"),
        ("Tiền nhàn rỗi nên đầu tư vào đâu", "financial"),
        ("Đặt vé máy bay đi Hà Nội ở đâu rẻ", "commercial"),
        ("dịch giúp tôi đoạn này sang tiếng Anh", "translation"),
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
        # the same letters typed with other marks: words of the domain, not the topic ("trận đấu", "bị cảm", …)
        "Kế hoạch ứng phó sự cố tràn dầu trình cơ quan nào duyệt?",
        "Bị cấm xuất cảnh thì hỏi ở cơ quan nào?",
        "Con gái 18 tuổi đủ bao nhiêu tuổi thì được kết hôn?",
        "Muốn mở quán ăn thì bắt đầu từ đâu?",
        "Phục hồi danh dự bao lâu thì có kết quả?",
        # translating papers is part of procedures: a word of the domain keeps the message
        "Bản dịch hộ chiếu sang tiếng Việt có cần công chứng không?",
        "Dịch bằng đại học sang tiếng Anh rồi chứng thực chữ ký người dịch ở đâu?",
    ],
)
def test_procedure_questions_sharing_those_words_pass(question: str) -> None:
    assert classify_scope(question) is None
