"""Acronyms learned from the procedure titles (bot/text/acronyms.py): what is learned, what is left, and that the
engine finds a procedure by initials no hand lexicon entry lists."""

from __future__ import annotations

import doctest
from dataclasses import replace

import bot.text.acronyms
from bot.engine import Engine
from bot.text.acronyms import derive_acronyms, with_acronyms
from bot.text.lexicon import Lexicon, load_lexicon


def test_the_examples_in_the_docstrings_hold() -> None:
    result = doctest.testmod(bot.text.acronyms)
    assert result.attempted and not result.failed


def test_rare_and_word_shaped_initials_are_left_out() -> None:
    titles = [
        "Cấp giấy phép xây dựng",
        "Gia hạn giấy phép xây dựng",
        "Điều chỉnh giấy phép xây dựng",
        "Thẩm định dự án",  # "thẩm định dự án": two titles only
        "Phê duyệt thẩm định dự án",
        "Bảo an nhân dân",  # "bảo an nhân" → "ban", a word of the knowledge: never an acronym
        "Bảo an nhân viên",
        "Bảo an nhân chứng",
    ]
    learned = derive_acronyms(titles, vocabulary={"ban", "cap", "giay", "phep", "xay", "dung"})
    assert learned["gpxd"] == "giấy phép xây dựng"
    assert "tdda" not in learned
    assert "ban" not in learned


def test_a_tie_between_two_names_is_not_an_acronym() -> None:
    titles = ["Cấp giấy thông hành", "Gia hạn giấy thông hành", "Đổi giấy thông hành"]
    titles += ["Cấp giấy tạm hoãn", "Gia hạn giấy tạm hoãn", "Đổi giấy tạm hoãn"]
    learned = derive_acronyms(titles, vocabulary=set())
    assert "gth" not in learned  # "giấy thông hành" and "giấy tạm hoãn": three titles each


def test_the_hand_lexicon_keeps_its_meaning_and_gains_the_rest() -> None:
    hand = load_lexicon()
    merged = with_acronyms(hand, {"đkkd": "điều kiện kinh doanh", "xkld": "xuất khẩu lao động"})
    assert len(merged.entries) == len(hand.entries) + 1
    expanded = merged.expand("thay đổi đkkd và hồ sơ xkld")
    assert "đăng ký kinh doanh" in expanded and "điều kiện kinh doanh" not in expanded
    assert "xuất khẩu lao động" in expanded
    assert with_acronyms(hand, {}) is hand


def test_the_index_learns_the_initials_of_its_own_titles(engine: Engine) -> None:
    learned = engine.index.acronyms
    # the test index holds the driving-licence and judicial-record domains (tests/conftest.py)
    assert learned["gplx"] == "giấy phép lái xe"
    assert learned["lltp"] == "lý lịch tư pháp"
    assert learned["đkks"] == "đăng ký khai sinh"  # with its "đ"; the lexicon matches "dkks" too
    assert engine.index.manifest["acronyms"] == len(learned)
    assert not {"ban", "hoc", "tan", "con"} & set(learned)


def test_the_engine_finds_a_procedure_by_initials_no_lexicon_entry_lists(engine: Engine) -> None:
    question = "hồ sơ đkks cho con gồm gì"  # đăng ký khai sinh
    without_hand = Engine(engine.index, engine.encoder, engine.settings, lexicon=Lexicon(entries=[]))
    reply, _ = without_hand.answer(question)
    assert reply.outcome == "answered" and reply.sources[0].title == "Thủ tục đăng ký khai sinh", reply.text

    # the same engine without the learned acronyms: the initials mean nothing to it
    unlearned = Engine(replace(engine.index, acronyms={}), engine.encoder, engine.settings,
                       lexicon=Lexicon(entries=[]))  # fmt: skip
    reply, _ = unlearned.answer(question)
    assert reply.outcome != "answered" or reply.sources[0].title != "Thủ tục đăng ký khai sinh"
