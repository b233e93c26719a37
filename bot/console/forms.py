"""Bounds of what staff type in the console, checked before any other work (docs/console.md, "Bounded forms").

Texts that go to citizens are bounded like what citizens send (settings.max_input_chars, 2000 by default): replies
to handed-over conversations. A curated FAQ answer may be longer (bot.faq.MAX_ANSWER_CHARS, 4000: it lists papers,
fees and places); the wordings box holds at most bot.faq.MAX_VARIANTS lines of MAX_VARIANT_CHARS. Search boxes,
list filters and the sign-in form's return address are cut; every other field over its bound is refused with a
message that says the bound.
"""

from __future__ import annotations

from bot.console.accounts import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS
from bot.faq import MAX_ANSWER_CHARS, MAX_PROCEDURE_CHARS, MAX_VARIANT_CHARS, MAX_VARIANTS

MAX_SEARCH_CHARS = 200  # search boxes: cut to this
MAX_FILTER_CHARS = 64  # list filters (audit actor/action, review channel): cut to this
MAX_NEXT_CHARS = 512  # the sign-in form's return address: cut to this
MAX_VARIANTS_FIELD_CHARS = MAX_VARIANTS * (MAX_VARIANT_CHARS + 2)  # the wordings box, one wording a line

# for the templates' maxlength attributes (the browser stops typing there; the server checks anyway)
LIMITS = {
    "username": MAX_USERNAME_CHARS, "password": MAX_PASSWORD_CHARS, "search": MAX_SEARCH_CHARS,
    "filter": MAX_FILTER_CHARS, "variants": MAX_VARIANTS_FIELD_CHARS, "answer": MAX_ANSWER_CHARS,
    "procedure": MAX_PROCEDURE_CHARS,
}


def _number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def too_long(value: str, limit: int, label: str) -> str | None:
    """The Vietnamese message for a field over its bound, or None. A line break counts as one character, as in the
    browser's maxlength (a form sends it as CR LF)."""
    size = len(value) - value.count("\r\n") if len(value) > limit else len(value)
    if size <= limit:
        return None
    return f"{label} dài quá {_number(limit)} ký tự (bạn đã nhập {_number(size)}). Bạn hãy rút gọn rồi gửi lại."


def faq_fields_error(variants: str, answer: str, procedure: str) -> str | None:
    return (too_long(variants, MAX_VARIANTS_FIELD_CHARS, "Phần cách hỏi")
            or too_long(answer, MAX_ANSWER_CHARS, "Câu trả lời")
            or too_long(procedure, MAX_PROCEDURE_CHARS, "Mã thủ tục"))


def faq_form_values(variants: str, answer: str, procedure: str) -> dict:
    """The FAQ form's fields with line breaks as LF (a browser sends CR LF), each cut to its bound: what is stored,
    or shown again after an error."""
    return {"variants": lf(variants)[:MAX_VARIANTS_FIELD_CHARS], "answer": lf(answer)[:MAX_ANSWER_CHARS],
            "procedure": procedure[:MAX_PROCEDURE_CHARS].strip()}


def lf(text: str) -> str:
    return text.replace("\r\n", "\n")
