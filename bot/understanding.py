"""Understanding one message: what it says, read once per turn, before anything is searched.

:func:`understand` turns the citizen's text and the conversation state into a :class:`Question`: the normalised
and folded text, the scope verdict (off-topic, injection, small talk), a choice among offered options, the
aspects asked, the variant the citizen describes, whether it speaks of the provincial plans and which provinces it
names. Every part is a plain function of the text (and, for the choice and the aspects, of the state), so each can
be read and tested on its own; the engine only routes on the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.aspects import Aspect, blank_aspect_phrases, detect_aspects
from bot.answer.scope import ScopeVerdict, classify_scope
from bot.answer.variants import VariantPreference
from bot.domain import ConversationState
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold, normalize, syllables

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
# A message of at most this many syllables that retrieval cannot place may continue the conversation.
FOLLOWUP_MAX_WORDS = 12
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
_CHOICE_WORDS = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "nam": 5}


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
    short: bool  # short enough to continue the conversation when retrieval cannot place it


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
        short=len(syllables(folded)) <= FOLLOWUP_MAX_WORDS,
    )


def topic_words(text: str) -> list[str]:
    """Folded syllables that can name a procedure (not fillers, pronouns or question words), without repeats.

    >>> topic_words("Cho em hỏi làm lại CCCD ở đâu ạ")
    ['lai', 'cccd']
    """
    return list(dict.fromkeys(t for t in syllables(fold(text)) if t not in FILLER))


def choice(question: str, state: ConversationState) -> str | None:
    """The offered option a short message picks by its number, in digits or words.

    >>> choice("chọn số 2", ConversationState(options=["1.000894", "2.000528"]))
    '2.000528'
    >>> choice("hai", ConversationState(options=["1.000894"])) is None  # no second option
    True
    """
    if not state.options:
        return None
    folded = fold(question).strip(" .!?")
    match = _CHOICE_RE.match(folded)
    if not match or len(folded.split()) > 5:
        return None
    token = match.group(1)
    number = int(token) if token.isdigit() else _CHOICE_WORDS[token]
    if 1 <= number <= len(state.options):
        return state.options[number - 1]
    return None


def asked_aspects(question: str, state: ConversationState) -> list[Aspect]:
    """What the message asks; "còn đăng ký kết hôn thì sao?" asks the same thing as the turn before about
    another procedure.

    >>> asked_aspects("còn đăng ký kết hôn thì sao?", ConversationState(aspects=["fee"]))
    ['fee']
    """
    aspects = detect_aspects(question)
    if aspects == ["general"] and state.aspects and fold(question).startswith(("con ", "the con ")):
        return list(state.aspects)
    return aspects


def is_bare_followup(question: str) -> bool:
    """Only an aspect ("hết bao nhiêu tiền?", "làm lại ở đâu?") and words that cannot name a procedure.

    >>> is_bare_followup("làm lại ở đâu?"), is_bare_followup("đăng ký kết hôn ở đâu?")
    (True, False)
    """
    rest = [w for w in topic_words(blank_aspect_phrases(fold(question))) if w not in _FOLLOWUP_GENERIC]
    return not rest


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
