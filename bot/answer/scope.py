"""Questions the assistant must not answer from the knowledge base: prompt injection, off-topic requests
(weather, sport, medical or financial advice, jokes) and small talk (greetings, thanks, goodbye).

The rules are data (knowledge/scope.yml, read and checked by bot.rules) and run on diacritic-folded text.
Whatever passes here still has to find a confident match in the knowledge base (see `bot.engine`), so these lists
only need to catch what shares words with the domain or must be refused outright, not every possible off-topic
question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from bot.rules import PatternSet, RuleError, load_rules, pattern_set, pattern_sets
from bot.text.vietnamese import fold, normalize

Category = Literal["injection", "weather", "sport", "medical", "financial", "joke", "entertainment", "commercial",
                   "writing", "translation", "general_knowledge", "greet", "thanks", "goodbye", "bot_challenge"]


@dataclass(frozen=True)
class ScopeRules:
    """The scope rules of ``knowledge/scope.yml``, compiled."""

    domain_guard: PatternSet
    topics: dict[str, PatternSet]
    small_talk: dict[str, PatternSet]

    @classmethod
    def load(cls, directory: Path | None = None) -> ScopeRules:
        data, where = load_rules("scope", directory), "scope.yml"
        missing = {"domain_guard", "topics", "small_talk"} - set(data)
        if missing:
            raise RuleError(f"{where}: missing {sorted(missing)}")
        rules = cls(pattern_set("domain_guard", data["domain_guard"], where), pattern_sets(data["topics"], where),
                    pattern_sets(data["small_talk"], where))  # fmt: skip
        unknown = (set(rules.topics) | set(rules.small_talk)) - set(get_args(Category))
        if unknown or "injection" not in rules.topics:
            raise RuleError(f"{where}: unknown categories {sorted(unknown)} (an 'injection' topic is required)")
        return rules


_RULES = ScopeRules.load()


@dataclass(frozen=True)
class ScopeVerdict:
    category: Category
    small_talk: bool  # greet / thanks / goodbye / bot_challenge: answered politely, not a decline


def classify_scope(text: str, rules: ScopeRules = _RULES) -> ScopeVerdict | None:
    """A verdict when the message is off-topic, an injection attempt or small talk; None when it may be a
    procedure or plan question.

    >>> classify_scope("thời tiết Vũng Tàu mai thế nào").category, classify_scope("cảm ơn nhé").small_talk
    ('weather', True)
    >>> classify_scope("khám chữa bệnh bằng thẻ BHYT ở đâu") is None  # the domain guard
    True
    >>> classify_scope("bị cấm xuất cảnh thì làm sao") is None  # typed marks disagree with "bị cảm" (medical)
    True
    """
    folded, typed = fold(text), normalize(text).lower()
    injection = rules.topics["injection"]
    if injection.search(folded) or injection.search(text.lower()):
        return ScopeVerdict("injection", small_talk=False)
    guarded = bool(rules.domain_guard.search(folded))
    for category, topic in rules.topics.items():
        if category == "injection" or not topic.agrees(folded, typed):
            continue
        # "khám chữa bệnh bằng thẻ BHYT" is a procedure question; the guard only protects the topics whose
        # words procedures share (health insurance, fees, registrations).
        if guarded and topic.guarded:
            continue
        return ScopeVerdict(category, small_talk=False)  # type: ignore[arg-type]  # a Category: checked at load
    words = folded.split()
    # Small talk only when the message is short: "cảm ơn, còn lệ phí thì sao" is a question.
    if len(words) <= 6:
        for category, talk in rules.small_talk.items():
            if talk.agrees(folded, typed):
                return ScopeVerdict(category, small_talk=True)  # type: ignore[arg-type]  # checked at load
    return None
