"""The assistant's own words, for what is not composed from a record: a message that is not a question, small
talk, a declined question, and "I am not sure" with the closest procedures."""

from __future__ import annotations

import re
import unicodedata

from bot.answer.scope import ScopeVerdict
from bot.config import Settings

_SHORT_NUMBER_RE = re.compile(r"^\s*[1-9][.)]?\s*$")


def refusal(text: object, settings: Settings) -> str | None:
    """A clear reply for a message that cannot be a question (empty, too long, binary), else None.

    >>> from bot.config import Settings
    >>> refusal("2", Settings()) is None  # a choice among offered options, or a rating
    True
    """
    if not isinstance(text, str) or not text.strip():
        return "Bạn chưa nhập câu hỏi. Hãy hỏi về một thủ tục hành chính, ví dụ: “làm lại căn cước ở đâu?”"
    if len(text) > settings.max_input_chars:
        return (
            f"Câu hỏi dài quá (tối đa {settings.max_input_chars} ký tự). "
            "Bạn hãy rút gọn và hỏi lại nhé."
        )
    if _SHORT_NUMBER_RE.match(text):
        return None
    letters = sum(1 for ch in text if unicodedata.category(ch).startswith("L"))
    # control characters or U+FFFD (undecodable bytes) mean binary data, whatever letters it happens to hold
    garbage = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"))
    if letters < 2 or letters < 0.3 * len(text.strip()) or garbage > 0.1 * len(text):
        return (
            "Mình chưa hiểu tin nhắn này. Bạn hãy gõ câu hỏi bằng chữ, ví dụ: "
            "“đăng ký khai sinh cần giấy tờ gì?”"
        )
    return None


def small_talk(verdict: ScopeVerdict, settings: Settings) -> str:
    """The polite answer to a greeting, thanks, goodbye or "are you a bot?"."""
    return {
        "greet": "Xin chào! Mình là trợ lý thủ tục hành chính. Bạn cần hỏi thủ tục nào: giấy tờ, lệ phí, "
        "thời gian, nơi nộp hay các bước?",
        "thanks": "Rất vui được giúp bạn! Bạn còn cần hỏi thủ tục nào nữa không?",
        "goodbye": "Tạm biệt bạn! Khi cần tra cứu thủ tục hành chính, bạn cứ quay lại nhé.",
        "bot_challenge": "Mình là trợ lý ảo (không phải người thật), trả lời dựa trên cơ sở dữ liệu thủ tục "
        f"hành chính công. Cần gặp cán bộ, bạn gọi tổng đài {settings.hotline}.",
    }[verdict.category]


def declined(verdict: ScopeVerdict, settings: Settings) -> str:
    """The decline of an off-topic question or an injection attempt, with where to look instead."""
    extra = {
        "injection": "Mình không thể làm theo yêu cầu đó. ",
        "medical": "Với vấn đề sức khỏe, bạn hãy hỏi bác sĩ hoặc cơ sở y tế. ",
        "financial": "Mình không tư vấn đầu tư hay tài chính cá nhân. ",
    }.get(verdict.category, "")
    help_line = (f"Bạn có thể tra cứu tại Cổng Dịch vụ công quốc gia ({settings.portal_url}) hoặc gọi tổng đài "
                 f"{settings.hotline}.")  # fmt: skip
    return (
        f"{extra}Xin lỗi, mình chỉ hỗ trợ thông tin về thủ tục hành chính công và kế hoạch chuyển đổi số của "
        f"tỉnh, nên không trả lời được câu hỏi này. {help_line}"
    )


def unsure(options: list[tuple[str, str]], settings: Settings) -> str:
    """"Not sure": the closest procedures as (code, title) to choose by number, or none found; then where to ask."""
    if options:
        listing = "\n".join(f"{i}. {title} (mã {code})" for i, (code, title) in enumerate(options, 1))
        text = (
            "Mình chưa chắc đã hiểu đúng câu hỏi. Có phải bạn muốn hỏi một trong các thủ tục sau?\n"
            f"{listing}\nTrả lời số thứ tự để chọn, hoặc hỏi cụ thể hơn. "
        )
    else:
        text = (
            "Xin lỗi, mình không tìm thấy thông tin phù hợp trong cơ sở dữ liệu thủ tục hành chính. "
            "Bạn có thể hỏi lại cụ thể hơn (tên thủ tục, giấy tờ cần làm). "
        )
    return text + f"Cần hỗ trợ trực tiếp, bạn gọi tổng đài {settings.hotline} hoặc xem {settings.portal_url}."
