"""The shapes every part of the assistant shares: a reply and its sources, the offered options, the conversation
state between turns, and a ranked candidate.

Plain dataclasses with no behaviour beyond (de)serialisation, so that the engine, the service, the dialogue
layer, the conversation store and the channels can all speak them without importing one another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from bot.retrieval.documents import SearchDoc

Mode = Literal["hybrid", "lexical", "dense"]  # which retrieval channels answer: both fused, BM25 only, dense only


@dataclass
class Source:
    """A knowledge record a reply was composed from, with the score it was ranked by."""

    id: str  # the procedure's national code, the plan passage id, or "faq:<id>"
    kind: Literal["procedure", "plan", "faq"]
    title: str
    url: str | None
    score: float


@dataclass
class Option:
    """A choice offered with a reply: what a channel shows, and the text that chooses it when sent back."""

    title: str
    payload: str  # sent back as the next message's text to choose it

    def contract(self) -> dict:
        return {"title": self.title, "payload": self.payload}


@dataclass
class Reply:
    """What the assistant says, in the shape of the public JSON contract (plus internal detail)."""

    question: str
    reply: str
    intent: str | None
    fallback: bool
    sources: list[Source] = field(default_factory=list)
    aspects: list[str] = field(default_factory=list)
    outcome: str = "answered"  # answered | declined | clarify | unknown | invalid | small_talk | handoff
    # the procedure's answer as fields, for portals (bot.answer.structured; README, "answer"); None when the
    # reply is not about one procedure
    answer: dict | None = None

    def contract(self) -> dict:
        return {
            "question": self.question,
            "reply": self.reply,
            "intent": self.intent,
            "fallback": self.fallback,
            "sources": [asdict(s) for s in self.sources],
            "answer": self.answer,
        }


@dataclass
class ConversationState:
    """What the engine remembers between turns of one conversation."""

    procedure: str | None = None
    aspects: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    misses: int = 0  # consecutive turns the assistant could not answer
    # the place the citizen named last, as bot.places.Place.to_dict() (what it is since 1 July 2025); kept until
    # another place is named
    place: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> ConversationState:
        return cls(**(data or {}))


@dataclass
class Candidate:
    """One indexed record as ranked for a question, with the signals its score was made of."""

    doc_index: int
    doc: SearchDoc
    score: float
    lexical: float
    dense: float
    coverage: float = 0.0
    cosine: float = 0.0  # raw dense similarity (0 when the dense channel did not see it)
    unknown: float = 0.0  # share of the question's topic words the knowledge base never uses
    # the score's terms and the extra signals (bot.ranking.scorers TERMS then EXTRAS): what a learned ranker reads
    features: tuple[float, ...] = ()
    confidence: float | None = None  # the learned probability that this leader is right (bot.learning.model)
