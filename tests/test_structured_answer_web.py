"""The web chat shows an answer about one procedure as a compact card of its fields with the source link (the
reply's structured ``answer``), in a real headless Chromium (the fixtures of tests/test_web_chat.py)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.test_web_chat import ANSWERS, ask, browser, page, server  # noqa: F401 - fixtures and helpers


def test_an_answer_shows_a_card_with_the_fields_and_the_source_link(page: Page, server: str) -> None:  # noqa: F811
    page.goto(server + "/")
    answer = ask(page, "Tôi ở phường Bến Nghé, quận 1 thì làm lại căn cước ở đâu?")
    expect(answer.locator(".bubble")).to_contain_text("nay thuộc Phường Sài Gòn")
    card = answer.get_by_role("region", name="Tóm tắt thủ tục")
    expect(card).to_be_visible()
    expect(card.locator(".card-title")).to_have_text("Cấp lại thẻ căn cước (mã 1.014064)")
    rows = dict(zip(card.locator("dt").all_inner_texts(), card.locator("dd").all_inner_texts(), strict=True))
    assert rows["Cấp thực hiện"] == "cấp xã"
    assert rows["Địa bàn hiện nay"] == "Phường Sài Gòn, Thành phố Hồ Chí Minh"
    assert rows["Phí, lệ phí"].startswith("70,000 Việt Nam Đồng") and rows["Phí, lệ phí"].endswith("…")  # cut
    assert rows["Thời hạn"] == "7 Ngày làm việc"  # the same for every way of submitting: said once
    assert rows["Nộp trực tuyến"] == "Có"
    assert re.fullmatch(r"\d+ loại giấy tờ", rows["Hồ sơ"])
    source = card.get_by_role("link", name=re.compile(r"^Nguồn: Cấp lại thẻ căn cước"))
    assert re.match(r"^https://dichvucong\.gov\.vn/", source.get_attribute("href") or "")
    assert source.get_attribute("target") == "_blank" and "noopener" in (source.get_attribute("rel") or "")
    expect(answer.get_by_role("link", name=re.compile(r"^Nguồn: "))).to_have_count(1)  # not twice

    # a reply that is not about one procedure has no card
    declined = ask(page, "thời tiết hôm nay thế nào")
    expect(declined.locator(".answer-card")).to_have_count(0)
    expect(page.locator(ANSWERS + " .answer-card")).to_have_count(1)
