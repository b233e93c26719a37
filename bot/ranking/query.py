"""What ranking needs to know about a question, beyond what understanding read: the search text, the topic words,
how much of them a record covers, and the share of words the knowledge never uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.aspects import aspect_spans
from bot.text.diacritics import Restorer
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold, has_diacritics, lexical_tokens, syllables
from bot.understanding import FILLER, Question, topic_words, without_aspect_phrases

# a record's tokens and spellings -> share of the question's topic words it covers
Coverage = Callable[[frozenset[str], frozenset[str]], float]


def search_text(question: str, lexicon: Lexicon) -> str:
    """The question minus its aspect phrases, plus the lexicon's official wording for what it names. Terms inside an
    aspect phrase are not expanded ("trên VNeID" asks for the channel), but every term's context is read in the
    whole question ("thông tin trên VNeID bị sai" is about the population database)."""
    kept = without_aspect_phrases(question)
    if kept == question:
        return lexicon.expand(question)
    return lexicon.expand(question, base=kept, skip=aspect_spans(question))


def meaning_text(query: QueryFeatures, lexicon: Lexicon, restorer: Restorer | None) -> str:
    """The text the dense channel encodes: the search text of the question with its diacritics put back
    (bot/text/diacritics.py), or the search text itself when it has them (or there is no restorer). Computed only
    when the dense pass runs."""
    if restorer is None:
        return query.search
    restored = restorer.restore(query.question.text)
    return query.search if restored == query.question.text else search_text(restored, lexicon)


def coverage_of(question: str, lexicon: Lexicon) -> Coverage:
    """How much of what the citizen said a record covers: the share of the question's topic words found in the
    record, where a word the lexicon rewrote ("cccd", "sổ đỏ") counts when the record has most of its official
    wording ("thẻ căn cước", "giấy chứng nhận quyền sử dụng đất")."""
    words = topic_words(question)
    aliases: dict[str, list[frozenset[str]]] = {}
    for surface, canonical in lexicon.matches(question):
        official = frozenset(lexical_tokens(canonical)) - FILLER
        for word in topic_words(surface):
            aliases.setdefault(word, []).append(official)
    typed = typed_spellings(question)

    def coverage(doc_tokens: frozenset[str], doc_spellings: frozenset[str]) -> float:
        if not words:
            return 0.0
        hit = 0
        for word in words:
            spelt = typed.get(word)
            agrees = spelt is None or not doc_spellings or not spelt.isdisjoint(doc_spellings)
            if (word in doc_tokens and agrees) or any(
                len(alias & doc_tokens) * 2 >= len(alias) for alias in aliases.get(word, ()) if alias
            ):
                hit += 1
        return hit / len(words)

    return coverage


def typed_spellings(question: str) -> dict[str, frozenset[str]]:
    """For a question typed with diacritics: each folded word -> how the citizen wrote it, where that spelling says
    which word is meant (it has marks: "giảm" is not "giám"). Words typed bare say nothing (a citizen may leave a
    word's marks out): they are matched folded. Empty for a question typed without diacritics."""
    if not has_diacritics(question):
        return {}
    out: dict[str, set[str]] = {}
    for spelt in syllables(question):
        if fold(spelt) != spelt:
            out.setdefault(fold(spelt), set()).add(spelt)
    return {word: frozenset(s) for word, s in out.items()}


def unknown_share(question: str, lexicon: Lexicon, vocabulary: frozenset[str]) -> float:
    """The share of the question's topic words that no record uses and the lexicon does not rewrite."""
    question = without_aspect_phrases(question)  # "online", "vneid" are channel words, handled as aspects
    words = topic_words(question)
    if not words:
        return 0.0
    rewritten = {w for surface, _ in lexicon.matches(question) for w in topic_words(surface)}
    unknown = [w for w in words if w not in vocabulary and w not in rewritten and not w.isdigit()]
    return len(unknown) / len(words)


@dataclass(frozen=True)
class QueryFeatures:
    """What the scorers need to know about the question, computed once per retrieval."""

    question: Question
    search: str  # the text the lexical channel searches (see search_text; the dense channel: meaning_text)
    coverage: Coverage
    asked: frozenset[str]  # topic words of the search text
    numbers: frozenset[str]  # numbers of three digits or more it quotes ("1022", "2207")
    unknown: float  # see unknown_share

    @classmethod
    def of(cls, question: Question, lexicon: Lexicon, vocabulary: frozenset[str]) -> QueryFeatures:
        search = search_text(question.text, lexicon)
        asked = frozenset(topic_words(search))
        return cls(
            question=question,
            search=search,
            coverage=coverage_of(question.text, lexicon),
            asked=asked,
            numbers=frozenset(w for w in asked if any(ch.isdigit() for ch in w) and len(w) >= 3),
            unknown=unknown_share(question.text, lexicon, vocabulary),
        )
