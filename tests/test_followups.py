"""A conversation state that holds: the procedure under discussion stays until a message clearly names another one
(bot.ranking.followup), aspect-only and choice-only messages are answered without a search, and the evaluation
scores every later turn of a conversation (bot.eval.score_followup)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from bot.domain import ConversationState, Reply
from bot.engine import Engine
from bot.eval import TurnOutcome, score_followup
from bot.ranking.followup import implied_aspects
from bot.ranking.weights import WEIGHTS
from bot.text.lexicon import load_lexicon
from bot.understanding import is_choice_only, naming_phrases


def play(engine: Engine, *messages: str) -> list[tuple[Reply, ConversationState]]:
    state, out = None, []
    for text in messages:
        reply, state = engine.answer(text, state)
        out.append((reply, state))
    return out


def answered(reply: Reply) -> str | None:
    return reply.sources[0].id if reply.sources and not reply.fallback else None


# ------------------------------------------------------------------------------------------------ staying
@pytest.mark.parametrize(
    ("first", "code", "follow_up"),
    [
        # an ordinary word the follow-up shares with some other title ("nộp", "đồng", "được cấp", "loại giấy")
        ("đăng ký khai sinh cho con", "1.001193", "đăng ký thì có phải nộp đồng nào không"),
        ("cấp phiếu lý lịch tư pháp", "3.000333", "Điều kiện để được cấp là gì?"),
        ("cấp phiếu lý lịch tư pháp", "3.000333", "nop tren cong dich vu cong duoc khong"),
        ("đăng ký thường trú cho con", "1.004222", "thế phải đem theo những loại giấy nào"),
        ("đăng ký thường trú cho con", "1.004222", "khoảng mấy hôm thì xong"),
        ("đổi bằng lái xe", "3.000347", "đến cơ quan nào để làm"),
    ],
)
def test_a_follow_up_in_ordinary_words_stays_on_the_procedure(engine: Engine, first: str, code: str,
                                                             follow_up: str) -> None:  # fmt: skip
    (opening, _), (reply, state) = play(engine, first, follow_up)
    assert answered(opening) == code
    assert answered(reply) == code, engine.kb.procedures[answered(reply) or code].title
    assert state.procedure == code


def test_the_thread_holds_over_several_turns(engine: Engine) -> None:
    turns = play(engine, "đăng ký khai tử cho bố", "hồ sơ gồm những gì", "đăng ký xong bao lâu thì có giấy",
                 "nộp qua mạng được không", "ai được đứng ra đi khai")  # fmt: skip
    codes = [answered(reply) for reply, _ in turns]
    first = codes[0]
    assert first is not None and codes == [first] * len(codes)
    assert engine.kb.procedures[first].title.lower().endswith("khai tử")
    assert [reply.aspects[0] for reply, _ in turns[1:4]] == ["documents", "time", "online"]


@pytest.mark.parametrize(
    ("first", "code", "follow_up"),
    [
        # a paper of the dossier whose words another title has ("Chứng thực … hợp đồng ủy quyền", "Cấp bản sao có
        # chứng thực từ bản chính …", "Chứng thực văn bản từ chối nhận di sản"): each moved on before the dossier
        # was read
        ("đăng ký khai sinh cho con", "1.001193", "văn bản ủy quyền thì sao"),
        ("đăng ký khai sinh cho con", "1.001193", "giấy chứng sinh cần bản chính hay bản sao"),
        ("đăng ký khai sinh cho con", "1.001193", "neu khong co giay chung sinh thi co lam duoc khong"),
        ("đăng ký thường trú cho con", "1.004222", "có cần văn bản đồng ý của chủ hộ không"),
        ("đăng ký thường trú cho con", "1.004222", "giấy tờ chứng minh chỗ ở hợp pháp thì sao"),
        ("cấp phiếu lý lịch tư pháp", "3.000333", "bản chụp giấy tờ tùy thân cần bản chính hay bản sao"),
    ],
)
def test_a_paper_of_the_dossier_stays_on_the_procedure_and_is_answered_with_the_documents(
        engine: Engine, first: str, code: str, follow_up: str) -> None:  # fmt: skip
    (opening, _), (reply, state) = play(engine, first, follow_up)
    assert answered(opening) == code
    assert answered(reply) == code, engine.kb.procedures[answered(reply) or code].title
    assert state.procedure == code
    assert "documents" in reply.aspects and "Giấy tờ cần chuẩn bị:" in reply.reply


@pytest.mark.parametrize(
    ("first", "code", "follow_up"),
    [
        ("đăng ký kết hôn", "1.000894", "có phải lên ủy ban nhân dân xã không"),
        ("đăng ký thường trú cho con", "1.004222", "nộp ở công an cấp xã được không"),
        ("cấp phiếu lý lịch tư pháp", "3.000333", "nộp ở công an tỉnh được không"),
    ],
)
def test_an_office_that_handles_the_procedure_is_answered_with_where_to_go(
        engine: Engine, first: str, code: str, follow_up: str) -> None:  # fmt: skip
    (opening, _), (reply, state) = play(engine, first, follow_up)
    assert answered(opening) == answered(reply) == state.procedure == code
    assert reply.aspects[0] == "where" and "Cơ quan thực hiện:" in reply.reply


def test_the_dossier_and_offices_of_a_record_are_its_own_words_not_its_title(engine: Engine) -> None:
    records = engine.ranker.records
    birth = records.position["1.001193"]
    assert {"chung_sinh", "uy_quyen", "ban_chinh"} <= records.dossier[birth]  # names and copies of its papers
    assert "chung_sinh" not in records.tokens[birth]
    assert implied_aspects(frozenset({"giay_chung", "chung_sinh"}), birth, records) == ["documents"]
    assert implied_aspects(frozenset({"khai_sinh"}), birth, records) == []  # its own title: not a paper
    assert implied_aspects(frozenset({"bao_hiem_xa_hoi"}), birth, records) == []
    marriage = records.position["1.000894"]  # registered by the commune's people's committee
    assert {"uy_ban", "nhan_dan"} <= records.offices[marriage]
    assert implied_aspects(frozenset({"uy_ban", "ban_nhan", "nhan_dan"}), marriage, records) == ["where"]
    assert implied_aspects(frozenset({"uy_ban_nhan_dan"}), marriage, records) == ["where"]  # a longer word, bigram by bigram
    plan = next(i for i, d in enumerate(engine.index.docs) if d.kind == "plan")
    assert records.dossier[plan] == records.offices[plan] == frozenset()


# ------------------------------------------------------------------------------------------------ moving on
@pytest.mark.parametrize(
    ("first", "follow_up", "named"),
    [
        ("lệ phí đăng ký khai sinh", "còn đăng ký kết hôn thì sao?", "kết hôn"),
        ("đăng ký kết hôn cần giấy tờ gì", "còn làm lại bằng lái xe bị mất thì sao", "lái xe"),
        ("đăng ký thường trú", "còn cccd thì sao", "căn cước"),  # an everyday name the lexicon knows
        ("dang ky khai sinh", "the con cap phieu ly lich tu phap thi nop o dau", "lý lịch tư pháp"),
    ],
)
def test_a_message_naming_another_procedure_moves_on(engine: Engine, first: str, follow_up: str,
                                                     named: str) -> None:  # fmt: skip
    (opening, _), (reply, state) = play(engine, first, follow_up)
    assert named in engine.kb.procedures[answered(reply)].title.lower()  # type: ignore[index]
    assert answered(reply) != answered(opening) and state.procedure == answered(reply)


def test_a_plan_question_in_a_conversation_is_answered_from_the_plans(engine: Engine) -> None:
    _, (reply, state) = play(engine, "đăng ký khai sinh", "kế hoạch chuyển đổi số của Bình Dương đặt mục tiêu gì")
    assert reply.sources[0].kind == "plan" and not reply.fallback
    assert state.procedure == "1.001193"  # the procedure is still there for the next follow-up


@pytest.mark.parametrize(
    ("first", "follow_up", "variant"),
    [
        ("làm lại cccd ở đâu", "ở tỉnh thì làm ở đâu", "2.001194"),
        ("đăng ký kết hôn", "nếu chồng là người Hàn Quốc thì sao", "2.000806"),
        ("đăng ký khai sinh", "đăng ký lưu động thì sao", "1.003583"),
    ],
)
def test_a_variant_asked_in_a_follow_up_is_the_variant_of_the_procedure_discussed(engine: Engine, first: str,
                                                                                 follow_up: str, variant: str) -> None:  # fmt: skip
    _, (reply, _) = play(engine, first, follow_up)
    assert answered(reply) == variant


def test_words_the_knowledge_never_uses_are_not_pinned_to_the_procedure(engine: Engine) -> None:
    _, (reply, _) = play(engine, "đăng ký kết hôn ở đâu", "thế còn youtube thì sao")
    assert reply.fallback


def test_the_switch_margin_is_a_ranking_weight(engine: Engine) -> None:
    """With a margin no leader can beat, nothing moves the conversation on; the default lets a named one."""
    stubborn = Engine(engine.index, engine.encoder, engine.settings, engine.lexicon,
                      weights=replace(WEIGHTS, switch_margin=10.0))  # fmt: skip
    _, (reply, _) = play(stubborn, "lệ phí đăng ký khai sinh", "còn đăng ký kết hôn thì sao?")
    assert answered(reply) == "1.001193"
    _, (reply, _) = play(engine, "lệ phí đăng ký khai sinh", "còn đăng ký kết hôn thì sao?")
    assert answered(reply) == "1.000894"


# ------------------------------------------------------------------------------------------------ no search
class CountingSearches:
    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("rank", "rank_in_conversation"):
            method = getattr(engine.ranker, name)

            def counted(*args: object, _method: Callable[..., object] = method, **kwargs: object) -> object:
                self.calls += 1
                return _method(*args, **kwargs)

            monkeypatch.setattr(engine.ranker, name, counted)


@pytest.mark.parametrize("message", ["mất bao lâu", "Hết bao nhiêu tiền vậy?", "số 5", "cái thứ hai nhé", "chọn 2"])
def test_aspect_only_and_choice_only_messages_are_answered_without_a_search(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, message: str) -> None:  # fmt: skip
    opening, state = engine.answer("đăng ký kết hôn cần giấy tờ gì")
    searches = CountingSearches(engine, monkeypatch)
    reply, new_state = engine.answer(message, state)
    assert searches.calls == 0
    # an offered option when the number picks one, else the procedure under discussion
    expected = state.options[1] if message in ("cái thứ hai nhé", "chọn 2") else answered(opening)
    assert answered(reply) == expected and new_state.procedure == expected


def test_a_number_that_picks_nothing_is_not_searched(engine: Engine) -> None:
    reply, _ = engine.answer("số 2")
    assert reply.fallback and not reply.sources  # nothing to pick, nothing under discussion: no record is offered
    offered = ConversationState(options=["1.000894", "2.000806"])  # as after an unsure reply: nothing discussed
    reply, new_state = engine.answer("số 9", offered)
    assert reply.fallback and [s.id for s in reply.sources] == offered.options == new_state.options  # offered again
    assert "kết hôn" in reply.reply.lower()


# ------------------------------------------------------------------------------------------------ reading
def test_compounds_name_procedures_and_ordinary_words_do_not() -> None:
    lexicon = load_lexicon()
    assert {"ket_hon"} <= naming_phrases("thế còn đăng ký kết hôn thì sao", lexicon)
    assert {"ho_chieu"} <= naming_phrases("còn hộ chiếu thì làm ở đâu", lexicon)
    assert {"giay_phep", "lai_xe"} <= naming_phrases("còn gplx thì sao", lexicon)  # the lexicon's official wording
    for ordinary in ("có phải đóng tiền không", "Phải mang theo những loại giấy nào?", "đi đâu để làm vậy",
                     "nộp trên cổng dịch vụ công được không", "mất bao nhiêu tiền một lần?"):  # fmt: skip
        assert not naming_phrases(ordinary, lexicon), ordinary


def test_choice_only_is_a_number_and_at_most_a_polite_ending() -> None:
    for pick in ("2", "số 2", "cái thứ hai", "chọn số 3 nhé", "lấy cái số 1", "phương án 2"):
        assert is_choice_only(pick), pick
    for question in ("ba tôi mất thì làm giấy chứng tử ở đâu", "hai vợ chồng cùng đi được không", "số nhà 12 ở đâu"):
        assert not is_choice_only(question), question


# ------------------------------------------------------------------------------------------------ scoring
def scripted(outcomes: list[TurnOutcome]) -> Callable[[str], TurnOutcome]:
    replies = iter(outcomes)
    return lambda _text: next(replies)


def score(row: dict, outcomes: list[TurnOutcome]) -> tuple[dict[str, list[float]], list[str]]:
    counts: dict[str, list[float]] = {}
    problems = score_followup(row, scripted(outcomes), lambda key, value: counts.setdefault(key, []).append(value))
    return counts, problems


def test_every_later_turn_is_scored_not_only_the_second() -> None:
    row = {"turns": ["lam lai cccd o dau", "mat bao lau", "phi bao nhieu"], "expected": ["1.014064"],
           "acceptable": ["2.001194"], "aspect": "fee"}  # fmt: skip
    counts, problems = score(row, [TurnOutcome("1.014064", ["where"], []), TurnOutcome("2.001194", ["time"], []),
                                   TurnOutcome("1.000894", ["fee"], [])])  # fmt: skip
    assert counts["followup"] == [1.0, 0.0]  # the third turn lost the procedure: a two-turn harness would not see it
    assert counts["followup:conversation"] == [0.0] and counts["followup:aspect"] == [0.0]
    assert counts["followup:held"] == [0.0, 0.0]  # 1.014064 -> 2.001194 -> 1.000894: the thread moved twice
    assert len(problems) == 1 and problems[0].startswith("turn 3")


def test_a_pick_by_number_and_a_switch_change_what_later_turns_are_scored_against() -> None:
    row = {"turns": ["cap lai cccd", "so 2", "mat bao lau", "con dang ky ket hon thi sao", "le phi"],
           "expected": ["1.014064"], "aspect": "fee",
           "turn_expect": [None, "choice:2", "same", {"expected": ["1.000894"]}, "same"]}  # fmt: skip
    outcomes = [TurnOutcome("1.014064", ["general"], ["1.014064", "2.001194"]), TurnOutcome("2.001194", [], []),
                TurnOutcome("2.001194", ["time"], []), TurnOutcome("1.000894", [], []),
                TurnOutcome("1.000894", ["fee"], [])]  # fmt: skip
    counts, problems = score(row, outcomes)
    assert problems == []
    assert counts["followup"] == [1.0] * 4 and counts["followup:choice"] == [1.0] and counts["followup:switch"] == [1.0]
    assert counts["followup:aspect"] == [1.0]


def test_a_pick_after_a_reply_that_offered_nothing_is_not_scored() -> None:
    row = {"turns": ["dang ky khai tu", "so 2"], "expected": ["1.000656"], "turn_expect": [None, "choice:2"]}
    counts, _ = score(row, [TurnOutcome("1.000656", [], []), TurnOutcome("1.000656", [], [])])
    assert counts["followup:choice_unoffered"] == [1.0] and "followup" not in counts
