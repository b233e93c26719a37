"""Understanding one message: what it says, read once per turn, before anything is searched.

:func:`understand` turns the citizen's text and the conversation state into a :class:`Question`: the normalised
and folded text, the scope verdict (off-topic, injection, small talk), a choice among offered options, the
aspects asked, the variant the citizen describes, whether it speaks of the provincial plans and which provinces it
names, and the place it names (old or new units, :mod:`bot.places`). Every part is a plain function of the text
(and, for the choice, the aspects and the place, of the state), so each can be read and tested on its own; the
engine only routes on the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from bot.answer.aspects import ASPECTS, Aspect, blank_aspect_phrases, detect_aspects
from bot.answer.scope import ScopeVerdict, classify_scope
from bot.answer.variants import VariantPreference
from bot.domain import ConversationState
from bot.places import Place, place_in, without_places
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold, has_diacritics, lexical_tokens, normalize, segment, syllables

# Words that carry no topic: a message made only of these (plus aspect phrases) is a follow-up on the
# procedure already being discussed ("còn lệ phí thì sao?", "mất bao lâu?", "nộp online được không?").
FILLER = frozenset(
    "con the thi sao vay a nhi nha nhe khong ko k hok duoc dc co cho toi minh em anh chi ban hoi xin la lam nop can "
    "mat bao nhieu lau gi j o dau nao ra may het ton phai nhu va voi cua thu tuc nay do kia ay di den tai nhung cac "
    "mot muon biet cai viec neu roi luon ah u uh vang da oi giup voi ve tren qua bang".split()
)
# Words that, in a message that asks an aspect, still do not name another procedure ("làm lại ở đâu?",
# "mất bao lâu thì nhận được?", "có phải đến tận nơi không?").
_FOLLOWUP_GENERIC = frozenset(
    "lai nhan tan noi hay theo mang moi trang gom ket qua xong truc tiep phai nua them gium dum ha ho sao roi "
    "chuan bi giay to thuc hien".split()
)
# Words that, beside a place, only ask what the place is now ("phường Bến Nghé giờ thuộc phường nào?", "tỉnh Bình
# Dương sau sáp nhập là gì?") or say where the citizen lives ("địa chỉ mới của tôi"): no procedure in them.
_PLACE_TALK = frozenset(
    "phuong xa thi tran quan huyen tinh thanh pho dac khu thuoc bay gio hien nay tai moi cu ten goi sap nhap sau "
    "truoc doi chua van dia chi gop chia gom nha song que".split()
)
# Provinces whose plans are in the knowledge base, as citizens write them (folded), keyed like
# fold(PlanDocument.province).
_PROVINCE_RE = {
    "ba ria - vung tau": re.compile(r"\b(ba ria|vung tau|brvt|br vt|br-vt)\b"),
    "binh duong": re.compile(r"\bbinh duong\b"),
}
# A question asking for a share ("bao nhiêu phần trăm", "tỷ lệ … đạt bao nhiêu") is answered by a passage that
# states one; the preamble and task lists of the same plan share its words but not its figures.
_PERCENT_ASKED = re.compile(r"\b(phan tram|ty le|ti le|ty trong|ti trong)\b|%")
_PLAN_CUES = re.compile(
    r"\b(ke hoach|chuong trinh hanh dong|muc tieu|chi tieu|den nam|nam 20\d\d|chuyen doi so|kinh te so|xa hoi so"
    r"|chinh quyen so|do thi thong minh|ban chi dao|binh duong|ba ria|vung tau|brvt|br vt|br-vt|callbot|tong dai|1022"
    r"|ty le|ti le|phan tram|%|cmcn|cach mang cong nghiep|nghi quyet|quyet dinh so|tinh uy|ubnd tinh|tro ly ao)\b"
)
_CHOICE_RE = re.compile(r"^(?:chon |lay |cai |so |phuong an |thu tuc |muc )*(?:thu |so )?(\d|mot|hai|ba|bon|nam)\b")
_KNOWN_ASPECTS: tuple[Aspect, ...] = (*ASPECTS, "general")
_CHOICE_WORDS = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "nam": 5}
_CHOICE_MAX_WORDS = 5  # a longer message that starts with a number is a question ("hai vợ chồng cùng đi được không")
_CHOICE_ONLY_RE = re.compile(
    r"(?:(?:(?:chon|lay|cai|so|phuong an|muc|thu)\s+)+(?:\d|mot|hai|ba|bon|nam)|(?:(?:chon|lay|cai|so|phuong an|muc|thu)\s+)*\d)"
    r"(?:\s+(?:nhe|nha|nhe ban|a|ah|di|luon|nhe a|ban oi|voi))?"
)


@dataclass(frozen=True)
class Question:
    """One message as the engine reads it."""

    text: str  # normalised (NFC, look-alike letters mapped), case kept
    folded: str  # lowercase, without diacritics
    scope: ScopeVerdict | None  # off-topic, injection or small talk; None for a possible procedure or plan question
    choice: str | None  # the code of the offered option the message picks ("2", "số hai"), if any
    aspects: list[Aspect]  # what it asks (documents, fee, …), ["general"] when nothing recognisable
    # what it asks about a newly named procedure: "còn đăng ký kết hôn thì sao?" asks what the turn before asked
    aspects_in_context: list[Aspect]
    prefer: VariantPreference  # the variant it describes (level, foreign element, operation, …)
    plan_cue: bool  # it speaks of the provincial plans
    provinces: frozenset[str]  # provinces it names, folded
    percent: bool  # it asks for a share
    bare_followup: bool  # only an aspect and words that cannot name a procedure ("làm lại ở đâu?")
    # the place it names, completed by the conversation's place when that one was left open (bot.places.place_in)
    place: Place | None = None
    place_only: bool = False  # it names a place and nothing that could name a procedure ("ở Bình Dương ạ")
    # only a pick by number ("số 2", "cái thứ hai"), whether or not the conversation offered such an option
    choice_only: bool = False


def understand(text: str, state: ConversationState, lexicon: Lexicon) -> Question:
    """Read one (valid) message in the context of the conversation.

    >>> from bot.text.lexicon import load_lexicon
    >>> q = understand("Còn lệ phí thì sao?", ConversationState(procedure="1.000894"), load_lexicon())
    >>> q.aspects, q.bare_followup, q.scope
    (['fee'], True, None)
    """
    return read(normalize(text), state, lexicon)


def read(question: str, state: ConversationState, lexicon: Lexicon) -> Question:
    """:func:`understand` for text already normalised (retrieval of a bare question uses it as given)."""
    folded = fold(question)
    return Question(
        text=question,
        folded=folded,
        scope=classify_scope(question),
        choice=choice(question, state),
        aspects=detect_aspects(question),
        aspects_in_context=asked_aspects(question, state),
        prefer=VariantPreference.of(question, lexicon),
        plan_cue=bool(_PLAN_CUES.search(folded)),
        provinces=named_provinces(folded),
        percent=bool(_PERCENT_ASKED.search(folded)),
        bare_followup=is_bare_followup(question),
        choice_only=is_choice_only(question),
        place=place_in(question, Place.from_dict(state.place)),
        place_only=is_place_only(question),
    )


def topic_words(text: str) -> list[str]:
    """Folded syllables that can name a procedure (not fillers, pronouns or question words), without repeats.

    >>> topic_words("Cho em hỏi làm lại CCCD ở đâu ạ")
    ['lai', 'cccd']
    """
    return list(dict.fromkeys(t for t in syllables(fold(text)) if t not in FILLER))


def is_place_only(question: str) -> bool:
    """The message names a place and nothing else that could name a procedure.

    >>> is_place_only("tôi ở xã Tân Hiệp, huyện Phú Giáo"), is_place_only("phường Bến Nghé giờ thuộc phường nào?")
    (True, True)
    >>> is_place_only("làm sổ đỏ ở Bình Dương"), is_place_only("đổi bằng lái ở Vũng Tàu")
    (False, False)
    """
    rest = without_places(question)
    return rest != question and not [w for w in topic_words(rest) if w not in _PLACE_TALK]


def choice(question: str, state: ConversationState) -> str | None:
    """The offered option a short message picks by its number, in digits or words.

    >>> choice("chọn số 2", ConversationState(options=["1.000894", "2.000528"]))
    '2.000528'
    >>> choice("hai", ConversationState(options=["1.000894"])) is None  # no second option
    True
    """
    number = picked_number(question) if state.options else None
    if number is not None and 1 <= number <= len(state.options):
        return state.options[number - 1]
    return None


def picked_number(question: str) -> int | None:
    """The number a short message picks ("2", "số hai", "cái thứ 2 nhé"), whatever was offered.

    >>> picked_number("cái thứ hai"), picked_number("chọn số 2 nhé")
    (2, 2)
    """
    folded = fold(question).strip(" .!?")
    match = _CHOICE_RE.match(folded)
    if not match or len(folded.split()) > _CHOICE_MAX_WORDS:
        return None
    token = match.group(1)
    return int(token) if token.isdigit() else _CHOICE_WORDS[token]


def is_choice_only(question: str) -> bool:
    """Only a pick by number, in digits or after a word that picks ("số", "cái", "thứ", "chọn"), and at most a
    polite ending: answered from the conversation (the option, or the procedure under discussion when no such
    option was offered), never searched for ("số 2" would otherwise match any record with a 2 in it).

    >>> is_choice_only("chọn số 2"), is_choice_only("cái thứ hai nhé"), is_choice_only("2")
    (True, True, True)
    >>> is_choice_only("ba tôi mất"), is_choice_only("số 2 Lý Thường Kiệt làm hộ chiếu được không")
    (False, False)
    """
    return bool(_CHOICE_ONLY_RE.fullmatch(fold(question).strip(" .!?")))


def asked_aspects(question: str, state: ConversationState) -> list[Aspect]:
    """What the message asks; "còn đăng ký kết hôn thì sao?" asks the same thing as the turn before about
    another procedure.

    >>> asked_aspects("còn đăng ký kết hôn thì sao?", ConversationState(aspects=["fee"]))
    ['fee']
    """
    aspects = detect_aspects(question)
    if aspects == ["general"] and state.aspects and fold(question).startswith(("con ", "the con ")):
        return known_aspects(state.aspects)
    return aspects


def known_aspects(names: Iterable[str]) -> list[Aspect]:
    """The aspects among ``names`` (a stored state or a keypad choice is data), else ["general"].

    >>> known_aspects(["fee", "time"]), known_aspects([]), known_aspects(["lệ phí"])
    (['fee', 'time'], ['general'], ['general'])
    """
    return [a for a in names if a in _KNOWN_ASPECTS] or ["general"]


def is_bare_followup(question: str) -> bool:
    """Only an aspect ("hết bao nhiêu tiền?", "làm lại ở đâu?") and words that cannot name a procedure.

    >>> is_bare_followup("làm lại ở đâu?"), is_bare_followup("đăng ký kết hôn ở đâu?")
    (True, False)
    """
    rest = [w for w in topic_words(blank_aspect_phrases(fold(question))) if w not in _FOLLOWUP_GENERIC]
    return not rest


def naming_phrases(question: str, lexicon: Lexicon) -> frozenset[str]:
    """What in a message can name a procedure, spelled as the index's bigram tokens: its compound words outside its
    aspect phrases, and the official wording of the everyday names the lexicon knows ("cccd" -> "thẻ căn cước").

    Names of procedures are compounds ("kết hôn", "lý lịch tư pháp", "trình báo"): a message in a conversation
    names another procedure only through one, which an ordinary word that happens to be in some title ("đóng",
    "loại", "cổng", "khoảng") or two words side by side ("đăng ký | thì", "trên | cổng") are not
    (bot.ranking.followup). With diacritics, underthesea's word segmentation finds the compounds; without, they are
    read as adjacent words neither of which is a filler or a question word (segmentation needs the diacritics).

    >>> from bot.text.lexicon import load_lexicon
    >>> sorted(naming_phrases("còn trình báo mất thẻ ABTC thì sao", load_lexicon()))
    ['cap_lai', 'the_abtc', 'trinh_bao']
    >>> sorted(naming_phrases("nộp trên cổng dịch vụ công được không", load_lexicon()))
    []
    >>> sorted(naming_phrases("con dang ky ket hon thi sao", load_lexicon()))
    ['dang_ky', 'ket_hon', 'ky_ket']
    >>> sorted(naming_phrases("còn cccd thì sao", load_lexicon()))
    ['can_cuoc', 'the_can']
    >>> sorted(naming_phrases("đi đâu để làm vậy", load_lexicon())), sorted(naming_phrases("mất bao lâu", load_lexicon()))
    ([], [])
    """
    kept = blank_aspect_phrases(question) if len(fold(question)) == len(question) else question
    if has_diacritics(kept):
        compounds = [fold(w).split("_") for w in segment(kept) if "_" in w]
        own = {f"{a}_{b}" for parts in compounds if not all(p in FILLER for p in parts) for a, b in pairwise(parts)}
    else:
        own = {t for t in lexical_tokens(kept) if "_" in t and not any(w in FILLER for w in t.split("_"))}
    official = {t for _, canonical in lexicon.matches(kept) for t in lexical_tokens(canonical) if "_" in t}
    return frozenset(own | official)


def named_provinces(folded: str) -> frozenset[str]:
    """Provinces with plans in the knowledge that a folded message names.

    >>> sorted(named_provinces("ke hoach chuyen doi so brvt"))
    ['ba ria - vung tau']
    """
    return frozenset(p for p, regex in _PROVINCE_RE.items() if regex.search(folded))


def without_aspect_phrases(question: str) -> str:
    """The question minus what it asks about ("cần giấy tờ gì", "ở đâu", "lệ phí bao nhiêu"): those words say
    which field to answer from, not which procedure, and would otherwise pull in titles that happen to contain
    them ("… cho người đã có hồ sơ, giấy tờ cá nhân")."""
    if len(fold(question)) != len(question):  # spans are found on folded text; cut only when positions agree
        return question
    kept = blank_aspect_phrases(question)
    return kept if topic_words(kept) else question
