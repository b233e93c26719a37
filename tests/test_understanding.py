"""Reading one message before anything is searched (bot.understanding), with real citizens' wording."""

from __future__ import annotations

import doctest

import pytest

import bot.answer.replies
import bot.understanding
from bot.domain import ConversationState
from bot.text.lexicon import load_lexicon
from bot.understanding import understand


@pytest.mark.parametrize("module", [bot.understanding, bot.answer.replies])
def test_the_examples_in_the_docstrings_hold(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted and not result.failed


def test_a_question_is_read_once_with_everything_the_engine_routes_on() -> None:
    q = understand("Kế hoạch chuyển đổi số của BRVT đặt tỷ lệ bao nhiêu phần trăm?", ConversationState(), load_lexicon())
    assert q.scope is None and q.plan_cue and q.percent
    assert q.provinces == frozenset({"ba ria - vung tau"})
    assert q.folded.startswith("ke hoach chuyen doi so")


def test_off_topic_and_small_talk_carry_their_verdict() -> None:
    lexicon = load_lexicon()
    assert understand("hôm nay thời tiết thế nào", ConversationState(), lexicon).scope.category == "weather"
    assert understand("cảm ơn bạn", ConversationState(), lexicon).scope.small_talk


def test_a_number_picks_an_offered_option_only_when_options_were_offered() -> None:
    lexicon = load_lexicon()
    offered = ConversationState(options=["1.000894", "2.000528"])
    assert understand("2", offered, lexicon).choice == "2.000528"
    assert understand("số hai", offered, lexicon).choice == "2.000528"
    assert understand("2", ConversationState(), lexicon).choice is None


def test_a_bare_follow_up_keeps_its_own_aspect_and_a_new_procedure_inherits_the_last_one() -> None:
    lexicon = load_lexicon()
    before = ConversationState(procedure="1.000894", aspects=["fee"])
    bare = understand("mất bao lâu?", before, lexicon)
    assert bare.bare_followup and bare.aspects == ["time"]
    other = understand("còn đăng ký khai sinh thì sao?", before, lexicon)
    assert not other.bare_followup and other.aspects == ["general"] and other.aspects_in_context == ["fee"]
