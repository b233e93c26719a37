"""Curated FAQ entries written by staff, and the matcher that answers with them without a restart.

An entry has several wordings of one question (variants), a curated answer and/or a linked procedure code.
`FaqStore` keeps them in the ``faqs`` table (bot/schema.py); `FaqMatcher` answers a citizen's question with an
entry only when the question is essentially one of its variants, and picks up the staff's edits within
``refresh_s`` seconds by polling `FaqStore.version`; `faq_answer` turns a match into the assistant's reply.

Several instances: with ``VNA_REDIS_URL`` each write is announced on a Redis channel (bot.shared.Announcements,
given to `FaqStore`) and every instance's matcher rebuilds its index as soon as it hears it, whichever instance the
staff member used; the polling stays as the fallback for an announcement lost while Redis was away.

Matching is deliberately strict (see `MATCH_THRESHOLD`): a curated answer that fires because a question merely
shares a few words with it would be a confident wrong answer, which is worse than the engine's own reply.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import SQLAlchemyError

from bot.answer.aspects import detect_aspects
from bot.answer.compose import procedure_source
from bot.domain import ConversationState, Reply, Source
from bot.engine import Engine
from bot.schema import faqs
from bot.shared import Announcements
from bot.text.lexicon import Lexicon, load_lexicon
from bot.text.vietnamese import fold, normalize, syllables
from bot.understanding import choice, is_bare_followup

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_REFRESH_S",
    "MATCH_THRESHOLD",
    "FaqError",
    "FaqMatch",
    "FaqMatcher",
    "FaqNotFound",
    "FaqStore",
    "faq_answer",
    "question_key",
]

# A question is answered from an FAQ entry only when the multiset Jaccard overlap of its normalised words with
# one variant's (shared / all distinct) is at least this. With 0.85 a variant of k words tolerates one added word
# from k = 6 (6/7 = 0.857), one missing word from k = 7 (6/7), and one substituted word only from k = 13 (12/14):
# "cấp lại bằng lái xe" never answers "cấp đổi bằng lái xe", nor a variant a question that only shares its subject.
# Shorter variants must be matched word for word, which staff handle by writing several variants. Politeness
# frames ("cho em hỏi", "ạ", "vậy") are not counted, and the lexicon's abbreviations count as their wording.
MATCH_THRESHOLD = 0.85
DEFAULT_REFRESH_S = 2.0

MAX_VARIANTS = 50
MAX_VARIANT_CHARS = 500
MAX_ANSWER_CHARS = 4000
MAX_AUTHOR_CHARS = 64  # faqs.created_by / updated_by
MAX_PROCEDURE_CHARS = 32  # faqs.procedure
STATUSES = ("active", "retired")

# Keys an imported item may have: what `FaqStore.export` writes, plus what `FaqStore.list` adds (ignored), so a
# listing can be imported as well.
_IMPORT_KEYS = frozenset({"variants", "answer", "procedure", "status", "source_turn_id"})
_IGNORED_KEYS = frozenset({"id", "created_by", "created_at", "updated_by", "updated_at"})


class FaqError(ValueError):
    """Invalid FAQ input; the message is for developers (the console shows its own wording)."""


class FaqNotFound(LookupError):
    """No FAQ entry has this id."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()  # "leave this field as it is" in FaqStore.update (None clears it)


# ------------------------------------------------------------------------------------------------ validation
def _clean_variants(variants: object) -> list[str]:
    if isinstance(variants, str) or not isinstance(variants, (list, tuple)):
        raise FaqError("variants must be a list of strings")
    out: list[str] = []
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        if not isinstance(variant, str):
            raise FaqError(f"variant {i} is not a string")
        text = normalize(variant)  # NFC, control characters removed, whitespace collapsed, tone marks canonical
        if not text:
            continue
        if len(text) > MAX_VARIANT_CHARS:
            raise FaqError(f"variant {i} is longer than {MAX_VARIANT_CHARS} characters")
        if not syllables(text):
            raise FaqError(f"variant {i} has no words")
        key = text.casefold()
        if key not in seen:
            seen.add(key)
            out.append(text)
    if not out:
        raise FaqError("at least one non-empty variant is required")
    if len(out) > MAX_VARIANTS:
        raise FaqError(f"at most {MAX_VARIANTS} variants are allowed, got {len(out)}")
    return out


def _clean_answer(answer: object) -> str | None:
    if answer is None:
        return None
    if not isinstance(answer, str):
        raise FaqError("answer must be a string or null")
    # keep the line structure (lists, paragraphs); clean each line like any other text
    lines = [normalize(line) for line in unicodedata.normalize("NFC", answer).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(text) > MAX_ANSWER_CHARS:
        raise FaqError(f"answer is longer than {MAX_ANSWER_CHARS} characters")
    return text or None


def _clean_author(author: object) -> str:
    if not isinstance(author, str) or not normalize(author):
        raise FaqError("author must be a non-empty string")
    author = normalize(author)
    if len(author) > MAX_AUTHOR_CHARS:
        raise FaqError(f"author is longer than {MAX_AUTHOR_CHARS} characters")
    return author


def _clean_turn_id(turn_id: object) -> int | None:
    if turn_id is None:
        return None
    if isinstance(turn_id, bool) or not isinstance(turn_id, int) or turn_id < 1:
        raise FaqError("source_turn_id must be a positive integer or null")
    return turn_id


class FaqStore:
    """CRUD over the ``faqs`` table. ``db`` is the SQLAlchemy engine of the conversation store (future style).

    ``known_procedure(code)`` says whether a procedure code exists in the knowledge base; without it, any code
    is accepted. ``announcements`` (Redis, several instances): every committed write is announced there, and
    every `FaqMatcher` of this store listens."""

    def __init__(self, db: SqlEngine, known_procedure: Callable[[str], bool] | None = None,
                 announcements: Announcements | None = None) -> None:
        self.db = db
        self.known_procedure = known_procedure
        self.announcements = announcements

    def _changed(self) -> None:
        """Tell the other instances (after the commit: they read the change as soon as they hear of it)."""
        if self.announcements is not None:
            self.announcements.announce()

    # ------------------------------------------------------------------ validation
    def _clean_procedure(self, procedure: object) -> str | None:
        if procedure is None:
            return None
        if not isinstance(procedure, str):
            raise FaqError("procedure must be a string or null")
        code = procedure.strip()
        if not code:
            return None
        if len(code) > MAX_PROCEDURE_CHARS:
            raise FaqError(f"procedure code is longer than {MAX_PROCEDURE_CHARS} characters")
        if self.known_procedure is not None and not self.known_procedure(code):
            raise FaqError(f"unknown procedure code {code!r}")
        return code

    def _clean(self, variants: object, answer: object, procedure: object) -> tuple[list[str], str | None, str | None]:
        variants = _clean_variants(variants)
        answer = _clean_answer(answer)
        procedure = self._clean_procedure(procedure)
        if answer is None and procedure is None:
            raise FaqError("an FAQ needs an answer, a linked procedure, or both")
        return variants, answer, procedure

    # ------------------------------------------------------------------ writes
    @staticmethod
    def _now(conn: Connection) -> float:
        """A timestamp later than every stored one, so `version` changes on every write even if clocks of two
        processes disagree or two writes fall in the same clock tick."""
        latest = conn.execute(select(func.max(faqs.c.updated_at))).scalar()
        now = time.time()
        return now if latest is None or now > latest else latest + 1e-3

    def create(self, variants: list[str], answer: str | None, procedure: str | None, author: str,
               source_turn_id: int | None = None) -> int:
        variants, answer, procedure = self._clean(variants, answer, procedure)
        author = _clean_author(author)
        turn_id = _clean_turn_id(source_turn_id)
        with self.db.begin() as conn:
            faq_id = self._insert(conn, variants, answer, procedure, "active", turn_id, author)
        self._changed()
        return faq_id

    def _insert(self, conn: Connection, variants: list[str], answer: str | None, procedure: str | None,
                status: str, turn_id: int | None, author: str) -> int:
        now = self._now(conn)
        result = conn.execute(insert(faqs).values(
            variants=json.dumps(variants, ensure_ascii=False), answer=answer, procedure=procedure, status=status,
            source_turn_id=turn_id, created_by=author, created_at=now, updated_by=author, updated_at=now,
        ))
        return int(result.inserted_primary_key[0])

    def update(self, faq_id: int, *, author: str, variants: list[str] | None = None,
               answer: str | None | _Unset = UNSET, procedure: str | None | _Unset = UNSET) -> dict:
        """Change the given fields (``variants=None`` and an omitted ``answer``/``procedure`` keep them; an
        explicit ``None`` clears the answer or the procedure). Returns the updated entry."""
        author = _clean_author(author)
        with self.db.begin() as conn:
            current = self._fetch(conn, faq_id)
            new_variants, new_answer, new_procedure = self._clean(
                current["variants"] if variants is None else variants,
                current["answer"] if answer is UNSET else answer,
                current["procedure"] if procedure is UNSET else procedure,
            )
            conn.execute(update(faqs).where(faqs.c.id == faq_id).values(
                variants=json.dumps(new_variants, ensure_ascii=False), answer=new_answer, procedure=new_procedure,
                updated_by=author, updated_at=self._now(conn),
            ))
            entry = self._fetch(conn, faq_id)
        self._changed()
        return entry

    def retire(self, faq_id: int, author: str) -> dict:
        """Stop answering with this entry (kept for the record; `restore` brings it back)."""
        return self._set_status(faq_id, "retired", _clean_author(author))

    def restore(self, faq_id: int, author: str) -> dict:
        """Answer with a retired entry again; it is validated again (its procedure may have left the knowledge)."""
        return self._set_status(faq_id, "active", _clean_author(author))

    def _set_status(self, faq_id: int, status: str, author: str) -> dict:
        with self.db.begin() as conn:
            current = self._fetch(conn, faq_id)
            if status == "active":
                self._clean(current["variants"], current["answer"], current["procedure"])
            conn.execute(update(faqs).where(faqs.c.id == faq_id).values(
                status=status, updated_by=author, updated_at=self._now(conn)))
            entry = self._fetch(conn, faq_id)
        self._changed()
        return entry

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _row(row: Row) -> dict:
        entry = dict(row._mapping)
        entry["variants"] = json.loads(entry["variants"])
        return entry

    def _fetch(self, conn: Connection, faq_id: int) -> dict:
        row = conn.execute(select(faqs).where(faqs.c.id == faq_id)).first()
        if row is None:
            raise FaqNotFound(f"no FAQ entry with id {faq_id}")
        return self._row(row)

    def get(self, faq_id: int) -> dict | None:
        with self.db.connect() as conn:
            row = conn.execute(select(faqs).where(faqs.c.id == faq_id)).first()
        return self._row(row) if row is not None else None

    def list(self, include_retired: bool = False) -> list[dict]:
        query = select(faqs).order_by(faqs.c.id)
        if not include_retired:
            query = query.where(faqs.c.status == "active")
        with self.db.connect() as conn:
            return [self._row(r) for r in conn.execute(query).all()]

    def version(self) -> tuple[int, float | None]:
        """(number of entries, latest change): changes whenever an entry is created, edited, retired or restored."""
        with self.db.connect() as conn:
            count, latest = conn.execute(select(func.count(), func.max(faqs.c.updated_at)).select_from(faqs)).one()
        return int(count), latest

    # ------------------------------------------------------------------ import / export
    def export(self) -> builtins.list[dict]:  # `list` is also the name of a method of this class
        """Every entry (retired ones too) as JSON-ready dicts that `import_` accepts."""
        return [
            {"variants": e["variants"], "answer": e["answer"], "procedure": e["procedure"], "status": e["status"],
             "source_turn_id": e["source_turn_id"]}
            for e in self.list(include_retired=True)
        ]

    def import_(self, items: Iterable[dict], author: str) -> int:
        """Add every item as a new entry, all or nothing; returns how many were added.

        An item has ``variants`` and ``answer`` and/or ``procedure``; ``status`` (default "active") and
        ``source_turn_id`` are optional; the bookkeeping keys of `list` (id, timestamps, authors) are ignored."""
        author = _clean_author(author)
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Iterable):
            raise FaqError("import expects a list of FAQ items")
        cleaned = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise FaqError("not an object")
                unknown = set(item) - _IMPORT_KEYS - _IGNORED_KEYS
                if unknown:
                    raise FaqError(f"unknown keys {sorted(unknown)}")
                if "variants" not in item:
                    raise FaqError("missing 'variants'")
                status = item.get("status", "active")
                if status not in STATUSES:
                    raise FaqError(f"status must be one of {STATUSES}")
                variants, answer, procedure = self._clean(item["variants"], item.get("answer"), item.get("procedure"))
                cleaned.append((variants, answer, procedure, status, _clean_turn_id(item.get("source_turn_id"))))
            except FaqError as exc:
                raise FaqError(f"item {i}: {exc}") from None
        with self.db.begin() as conn:
            for variants, answer, procedure, status, turn_id in cleaned:
                self._insert(conn, variants, answer, procedure, status, turn_id, author)
        self._changed()
        return len(cleaned)


# ------------------------------------------------------------------------------------------------ matching
# Ways of opening a question that do not change what is asked ("cho em hỏi", "ad ơi", "xin chào bạn, …"), on the
# folded words joined by single spaces (plus one trailing space).
_LEADING_FRAME = re.compile(
    r"^(?:(?:xin )?chao (?:ban |ad |admin |anh |chi |em |bot )?|(?:ad|admin|ban|bot|anh|chi|em) oi |alo )*"
    r"(?:(?:lam on |vui long )?(?:xin )?cho (?:em |toi |minh |chau |tui |con |anh |chi )?(?:duoc )?hoi "
    r"(?:chut |xiu |ti |ty )?(?:la )?|xin hoi (?:la )?|(?:em|toi|minh|tui|chau) (?:muon |can |xin )?hoi "
    r"(?:chut |xiu )?(?:la )?)?"
)
# Sentence-final particles ("… mấy giờ vậy ạ?"): as written with diacritics, or typed without them.
_TRAILING_MARKED = frozenset({"ạ", "nhé", "nha", "vậy", "nhỉ", "nè", "hả", "ơi", "hen", "nhen"})
_TRAILING_BARE = frozenset({"a", "nhe", "nha", "vay", "nhi", "ne", "ak", "ah", "z", "ha", "oi", "hen", "nhen"})


def _is_particle(token: str) -> bool:
    return token in _TRAILING_MARKED or token in _TRAILING_BARE


def question_key(text: str, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    """The words that say what a question asks, for FAQ matching: lowercase syllables (diacritics kept, tone
    marks in canonical places), the politeness frame and final particles dropped, and every lexicon term
    replaced by its canonical wording ("cccd", "căn cước", "can cuoc" → "thẻ căn cước"; "ko" → "không").

    Two texts that differ only in diacritics get the same rewrites; the words left as written keep their
    diacritics, which `overlap_score` compares."""
    lexicon = lexicon or load_lexicon()
    text = normalize(text)
    tokens = syllables(text)
    folded = [fold(t) for t in tokens]
    frame = _LEADING_FRAME.match(" ".join(folded) + " ")
    lo = frame.group(0).count(" ") if frame else 0
    hi = len(tokens)
    while hi > lo and _is_particle(tokens[hi - 1]):
        hi -= 1
    if hi <= lo:  # nothing but a frame: keep it all
        lo, hi = 0, len(tokens)
    # The lexicon reads the folded text, so a term is rewritten alike whether or not it was typed with diacritics
    # (on the text as typed, "mất" → "cấp lại" but not "mat"); entries that demand exact diacritics never apply.
    folded_text = fold(text)
    found = lexicon.find(folded_text) if len(syllables(folded_text)) == len(tokens) else []
    replacements: dict[int, tuple[int, list[str]]] = {}
    for m in found:
        if m.first >= lo and m.end <= hi:
            end, words = replacements.get(m.first, (m.end, []))
            for phrase in m.entry.canonical:
                for word in syllables(phrase):
                    if word not in words:
                        words.append(word)
            replacements[m.first] = (max(end, m.end), words)
    out: list[str] = []
    i = lo
    while i < hi:
        if i in replacements:
            end, words = replacements[i]
            # "thẻ" + "căn cước" → "thẻ" + "thẻ căn cước": drop what the canonical wording repeats
            overlap = min(len(out), len(words))
            while overlap and [fold(w) for w in out[-overlap:]] != [fold(w) for w in words[:overlap]]:
                overlap -= 1
            del out[len(out) - overlap:]
            out.extend(words)
            i = end
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out)


def _bare(token: str) -> bool:
    return token == fold(token)


def overlap_score(a: Counter[str], b: Counter[str]) -> float:
    """Multiset Jaccard overlap of two question keys, where a word typed without diacritics ("lai") matches any
    word it folds from ("lại", "lái") but two words written with different diacritics ("lại", "lái") do not."""
    size_a, size_b = sum(a.values()), sum(b.values())
    if not size_a or not size_b:
        return 0.0
    exact = a & b
    shared = sum(exact.values())
    # per folded form: [a words, a words without diacritics, b words, b words without diacritics]
    groups: dict[str, list[int]] = {}
    for side, rest in ((0, a - exact), (2, b - exact)):
        for token, count in rest.items():
            group = groups.setdefault(fold(token), [0, 0, 0, 0])
            group[side] += count
            if _bare(token):
                group[side + 1] += count
    # the largest matching when only two marked words cannot pair: min(|A|, |B|, bare A + bare B)
    shared += sum(min(g[0], g[2], g[1] + g[3]) for g in groups.values())
    return shared / (size_a + size_b - shared)


@dataclass(frozen=True)
class FaqMatch:
    faq: dict
    score: float
    variant: str  # the wording that matched


@dataclass(frozen=True)
class _Indexed:
    faq: dict
    variant: str
    words: Counter
    size: int


class FaqMatcher:
    """Answers a question with the active FAQ entry one of whose variants it essentially is.

    The in-memory index is rebuilt when `FaqStore.version` changes, checked at most every ``refresh_s`` seconds,
    so the staff's edits go live without a restart; when the store has announcements (Redis), also as soon as an
    edit is announced, on any instance (:meth:`close` stops listening). Safe to call from several threads."""

    def __init__(self, store: FaqStore, lexicon: Lexicon | None = None, threshold: float = MATCH_THRESHOLD,
                 refresh_s: float = DEFAULT_REFRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.lexicon = lexicon or load_lexicon()
        self.threshold = threshold
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._index: tuple[_Indexed, ...] = ()
        self._version: tuple | None = None
        self._checked_at: float | None = None
        self.announced = 0  # announcements heard (each one rebuilt the index if the store had changed)
        if store.announcements is not None:
            store.announcements.listen(self._heard)

    def _heard(self, _message: str) -> None:
        self.refresh(force=True)
        self.announced += 1

    def close(self) -> None:
        """Stop listening for announcements (the matcher keeps polling)."""
        if self.store.announcements is not None:
            self.store.announcements.close()

    def refresh(self, force: bool = False) -> None:
        """Rebuild the index if the store changed (checked at most every ``refresh_s`` unless ``force``)."""
        with self._lock:
            now = self._clock()
            if not force and self._checked_at is not None and now - self._checked_at < self.refresh_s:
                return
            self._checked_at = now
            try:
                version = self.store.version()
                if version == self._version:
                    return
                entries = self.store.list()
            except SQLAlchemyError:  # a citizen's turn must not fail over the FAQ table: keep the last index
                log.warning("could not read the FAQ entries; answering with the last ones read", exc_info=True)
                return
            index = []
            for faq in entries:
                for variant in faq["variants"]:
                    words = Counter(question_key(variant, self.lexicon))
                    if words:
                        index.append(_Indexed(faq, variant, words, sum(words.values())))
            self._index, self._version = tuple(index), version

    def match(self, text: str) -> FaqMatch | None:
        self.refresh()
        index = self._index  # an immutable snapshot: a concurrent rebuild swaps it whole
        if not index or not isinstance(text, str):
            return None
        words = Counter(question_key(text, self.lexicon))
        size = sum(words.values())
        if not size:
            return None
        best: FaqMatch | None = None
        for entry in index:
            # Jaccard can reach the threshold only if the sizes are close enough
            if min(size, entry.size) < self.threshold * max(size, entry.size):
                continue
            score = overlap_score(words, entry.words)
            if score >= self.threshold and (best is None or score > best.score):
                best = FaqMatch(entry.faq, score, entry.variant)
        return best


# ------------------------------------------------------------------------------------------------ replying
def faq_answer(engine: Engine, matcher: FaqMatcher, text: str, state: ConversationState) -> tuple[
    Reply, ConversationState
] | None:
    """The reply to a (valid) question from a curated FAQ entry, or None to let the engine answer.

    A choice among offered options ("2") and a bare follow-up on the procedure being discussed ("thế còn lệ
    phí?") stay with the engine, whatever FAQ they resemble: they are about the conversation, not a question of
    their own."""
    question = normalize(text)
    if state.options and choice(question, state) is not None:
        return None
    if state.procedure in engine.kb.procedures and is_bare_followup(question):
        return None
    found = matcher.match(question)
    if found is None:
        return None
    faq = found.faq
    proc = engine.kb.procedures.get(faq["procedure"]) if faq["procedure"] else None
    aspects = detect_aspects(question)
    cited = Source(f"faq-{faq['id']}", "faq", faq["variants"][0], None, round(found.score, 4))
    if not faq["answer"]:
        if proc is None:  # its procedure left the knowledge base since it was written
            return None
        reply, new_state = engine.describe(proc.code, question, aspects)
        reply.sources.append(cited)
        return reply, new_state
    intent = "faq" if aspects == ["general"] else f"ask_{aspects[0]}"
    sources = [cited]
    text_out = faq["answer"]
    if proc is not None:
        sources.append(Source(proc.code, "procedure", proc.title, proc.url, round(found.score, 4)))
        text_out = f"{text_out}\n{procedure_source(proc)}"
        # a new procedure under discussion; the place the citizen named stays (it is not about the procedure)
        new_state = ConversationState(procedure=proc.code, aspects=list(aspects), place=state.place)
    else:
        new_state = dataclasses.replace(state, misses=0)
    return Reply(question, text_out, intent, False, sources, list(aspects), outcome="answered"), new_state
