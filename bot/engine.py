"""The answering engine: one question (and the conversation state) in, one grounded reply out.

Flow: validate → scope (injection, off-topic, small talk) → follow-up or option choice on the current
procedure → hybrid retrieval (BM25 + dense, fused) with variant preference → confidence check → compose from
the record. Every factual reply comes from a record and names it; when unsure, it says so and offers options.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from bot.answer.aspects import Aspect, aspect_spans, blank_aspect_phrases, detect_aspects
from bot.answer.compose import compose_plan, compose_procedure
from bot.answer.scope import ScopeVerdict, classify_scope
from bot.answer.variants import VariantPreference, VariantProfile, base_title, unqualified_title
from bot.config import Settings
from bot.domain import Candidate, ConversationState, Mode, Reply, Source
from bot.knowledge.models import Procedure
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.onnx_encoder import OnnxQueryEncoder
from bot.text.lexicon import Lexicon, load_lexicon
from bot.text.vietnamese import fold, has_diacritics, lexical_tokens, normalize, syllables

CANDIDATES = 60  # per channel, before fusion
MAX_ALTERNATIVES = 3
# Below this fused score the engine does not answer but offers the closest procedures. Chosen from the score
# distributions of in-scope and off-topic development questions (docs/evaluation.md, "Confidence gate").
CONFIDENT_SCORE = 0.65
# Fusion weights (normalised BM25, normalised dense similarity, question coverage, title precision), chosen on the
# development set (docs/evaluation.md).
HYBRID_LEXICAL = 0.5
HYBRID_DENSE = 0.2
COVERAGE_WEIGHT = 0.15
PRECISION_WEIGHT = 0.3
NO_DIACRITICS_DENSE = 0.1
UNKNOWN_WORD_PENALTY = 1.0

# Words that carry no topic: a message made only of these (plus aspect phrases) is a follow-up on the
# procedure already being discussed ("còn lệ phí thì sao?", "mất bao lâu?", "nộp online được không?").
_FILLER = set(
    "con the thi sao vay a nhi nha nhe khong ko k hok duoc dc co cho toi minh em anh chi ban hoi xin la lam nop can "
    "mat bao nhieu lau gi j o dau nao ra may het ton phai nhu va voi cua thu tuc nay do kia ay di den tai nhung cac "
    "mot muon biet cai viec neu roi luon ah u uh vang da oi giup voi ve tren qua bang".split()
)
# Provinces whose plans are in the knowledge base, as citizens write them (folded), keyed like
# fold(PlanDocument.province).
_PROVINCE_RE = {
    "ba ria - vung tau": re.compile(r"\b(ba ria|vung tau|brvt|br vt|br-vt)\b"),
    "binh duong": re.compile(r"\bbinh duong\b"),
}
PLAN_PROVINCE_MATCH, PLAN_PROVINCE_MISMATCH = 0.05, -0.2
PLAN_NUMBER_MATCH = 0.15
# A question asking for a share ("bao nhiêu phần trăm", "tỷ lệ … đạt bao nhiêu") is answered by a passage that states
# one; the preamble and task lists of the same plan share its words but not its figures.
_PERCENT_ASKED = re.compile(r"\b(phan tram|ty le|ti le|ty trong|ti trong)\b|%")
PLAN_PERCENT = 0.1
# The lexical ranking alone decides (no dense pass) when its leader is a procedure at least this far ahead of the
# next candidate and this far above the confidence gate: on the dev set the dense pass then changed the top
# answer for 2.6 % of such questions and never turned a wrong answer right (docs/evaluation.md).
DECISIVE_MARGIN = 0.05
# A message of at most this many syllables that retrieval cannot place may continue the conversation.
FOLLOWUP_MAX_WORDS = 12
DECISIVE_CONFIDENCE = 0.1
# ... and only when the leader covers at least this share of the question's topic words: a leader that matches a
# few heavily weighted words ("xe mô tô, xe gắn máy") of a long question is not decisive.
DECISIVE_COVERAGE = 0.4
# Words that, in a message that asks an aspect, still do not name another procedure ("làm lại ở đâu?",
# "mất bao lâu thì nhận được?", "có phải đến tận nơi không?").
_FOLLOWUP_GENERIC = set(
    "lai nhan tan noi hay theo mang moi trang gom ket qua xong truc tiep phai nua them gium dum ha ho sao roi "
    "chuan bi giay to thuc hien".split()
)
_PAREN_RE = re.compile(r"\([^)]*\)")
_CHOICE_RE = re.compile(r"^(?:chon |lay |cai |so |phuong an |thu tuc |muc )*(?:thu |so )?(\d|mot|hai|ba|bon|nam)\b")
_CHOICE_WORDS = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "nam": 5}
_PLAN_CUES = re.compile(
    r"\b(ke hoach|chuong trinh hanh dong|muc tieu|chi tieu|den nam|nam 20\d\d|chuyen doi so|kinh te so|xa hoi so"
    r"|chinh quyen so|do thi thong minh|ban chi dao|binh duong|ba ria|vung tau|brvt|br vt|br-vt|callbot|tong dai|1022"
    r"|ty le|ti le|phan tram|%|cmcn|cach mang cong nghiep|nghi quyet|quyet dinh so|tinh uy|ubnd tinh|tro ly ao)\b"
)


def _without_aspect_phrases(question: str) -> str:
    """The question minus what it asks about ("cần giấy tờ gì", "ở đâu", "lệ phí bao nhiêu"): those words say
    which field to answer from, not which procedure, and would otherwise pull in titles that happen to contain
    them ("… cho người đã có hồ sơ, giấy tờ cá nhân")."""
    if len(fold(question)) != len(question):  # spans are found on folded text; cut only when positions agree
        return question
    kept = blank_aspect_phrases(question)
    return kept if _topic_words(kept) else question


def _topic_words(text: str) -> list[str]:
    """Folded syllables that can name a procedure (not fillers, pronouns or question words), without repeats."""
    return list(dict.fromkeys(t for t in syllables(fold(text)) if t not in _FILLER))

_SHORT_NUMBER_RE = re.compile(r"^\s*[1-9][.)]?\s*$")


@dataclass(frozen=True)
class _QueryFeatures:
    """What scoring needs to know about the question, computed once per retrieval."""

    prefer: VariantPreference
    plan_cue: bool
    provinces: frozenset[str]
    coverage: object  # callable(doc tokens) -> share of the question's topic words the record covers
    asked: frozenset[str]
    numbers: frozenset[str]
    unknown: float
    percent: bool = False  # asks for a share (see _PERCENT_ASKED)

    @classmethod
    def of(cls, engine: Engine, question: str, expanded: str) -> _QueryFeatures:
        folded = fold(question)
        asked = frozenset(_topic_words(expanded))
        return cls(
            prefer=VariantPreference.of(question, engine.lexicon),
            plan_cue=bool(_PLAN_CUES.search(folded)),
            provinces=frozenset(p for p, regex in _PROVINCE_RE.items() if regex.search(folded)),
            coverage=engine._coverage_fn(question),
            asked=asked,
            numbers=frozenset(w for w in asked if any(ch.isdigit() for ch in w) and len(w) >= 3),
            unknown=engine._unknown_share(question),
            percent=bool(_PERCENT_ASKED.search(folded)),
        )


class Engine:
    def __init__(self, index: KnowledgeIndex, encoder: Encoder | OnnxQueryEncoder, settings: Settings, lexicon: Lexicon | None = None):
        self.index = index
        self.kb = index.kb
        self.encoder = encoder
        self.settings = settings
        self.lexicon = lexicon or load_lexicon()
        self._doc_tokens = [frozenset(lexical_tokens(d.lexical_text)) for d in index.docs]
        # qualifiers in brackets ("(thực hiện tại cấp tỉnh)") are judged by the variant preference instead
        self._title_words = [frozenset(_topic_words(unqualified_title(d.title))) if d.kind == "procedure"
                             else frozenset() for d in index.docs]
        # per plan passage: (province of its document, folded; the document's number, e.g. "2207")
        self._plan_meta = [self._plan_profile(d.doc_id) if d.kind == "plan" else None for d in index.docs]
        self._plan_numbers = frozenset(m[1] for m in self._plan_meta if m and m[1])
        self._plan_percent = [d.kind == "plan" and "%" in self.kb.passages[d.doc_id].text for d in index.docs]
        # Passages of OCR-damaged scans are embedded from their damaged spelling ("Chtro'ng trInh hành dng"), so
        # their dense score says little; for a question about the plans their lexical score, computed on the
        # repaired copy, is trusted alone (other questions keep the usual vote, so that a damaged passage does
        # not gain confidence for a question the plans do not answer).
        self._ocr_damaged = [
            d.kind == "plan" and self.kb.documents[self.kb.passages[d.doc_id].doc_id].ocr_damaged for d in index.docs
        ]
        self._variants = [VariantProfile.of(self.kb.procedures[d.doc_id]) if d.kind == "procedure" else None
                          for d in index.docs]  # fmt: skip

    # ------------------------------------------------------------------ public
    def answer(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> tuple[
        Reply, ConversationState
    ]:
        state = state or ConversationState()
        question = text if isinstance(text, str) else ""
        invalid = self.validate(text)
        if invalid:
            return Reply(question, invalid, None, True, outcome="invalid"), state
        question = normalize(question)

        verdict = classify_scope(question)
        if verdict is not None:
            return self._scoped(question, verdict, state)

        choice = self._choice(question, state)
        if choice is not None:
            proc = self.kb.procedures[choice]
            aspects = state.aspects or ["general"]
            return self._procedure_reply(question, proc, aspects, [], 1.0, state)

        aspects = detect_aspects(question)
        if self._is_bare_followup(question) and state.procedure in self.kb.procedures:
            proc = self.kb.procedures[state.procedure]
            return self._procedure_reply(question, proc, aspects, [], 1.0, state)
        if aspects == ["general"] and state.aspects and fold(question).startswith(("con ", "the con ")):
            aspects = state.aspects  # "còn đăng ký kết hôn thì sao?" asks the same thing about another procedure

        candidates = self.retrieve(question, mode)
        if not candidates or not self._confident(candidates[0]):
            if self._continues(question, candidates, state):
                # "có cần đưa bé đi cùng không?" after "làm căn cước cho bé 3 tuổi": nothing in it names another
                # procedure the knowledge knows, so it is about the one under discussion
                proc = self.kb.procedures[state.procedure]  # type: ignore[index]
                return self._procedure_reply(question, proc, aspects, [], 1.0, state)
            return self._unsure(question, candidates, state)
        top = candidates[0]
        if top.doc.kind == "plan":
            passage = self.kb.passages[top.doc.doc_id]
            doc = self.kb.documents[passage.doc_id]
            reply = Reply(
                question, compose_plan(passage, doc, question), "ask_plan", False,
                [self._source(c) for c in candidates[:5]], ["plan"],
            )
            return reply, ConversationState(procedure=state.procedure, aspects=state.aspects)
        proc = self.kb.procedures[top.doc.doc_id]
        alternatives = self._alternatives(proc, candidates)
        return self._procedure_reply(question, proc, aspects, alternatives, top.score, state, candidates)

    def describe(self, code: str, question: str, aspects: list[str] | None = None) -> tuple[Reply, ConversationState]:
        """The answer about one procedure the citizen picked among offered options (by button, number or words)."""
        proc = self.kb.procedures[code]
        return self._procedure_reply(normalize(question), proc, list(aspects or ["general"]), [], 1.0,
                                     ConversationState())

    def retrieve(self, question: str, mode: Mode = "hybrid", k: int = 10) -> list[Candidate]:
        """Ranked candidates for a question: fused lexical + dense scores, adjusted for the variant asked.

        In hybrid mode the lexical ranking is scored first; when it is decisive (a confident leader well ahead
        of the next candidate) the dense pass is skipped, which saves the transformer pass on about half of the
        questions without changing the answer (docs/evaluation.md, "Skipping the dense pass")."""
        expanded = self._search_text(question)
        n = len(self.index.docs)
        lex_all = self.index.lexical.scores(expanded) if mode != "dense" else np.zeros(n, dtype=np.float32)
        lex_max = float(lex_all.max()) if lex_all.size else 0.0
        pool: dict[int, float] = {}
        cosines: dict[int, float] = {}
        if mode != "dense" and lex_max > 0:
            for i in np.argpartition(-lex_all, min(CANDIDATES, n - 1))[:CANDIDATES]:
                if lex_all[i] > 0:
                    pool[int(i)] = 0.0
        query = _QueryFeatures.of(self, question, expanded)
        lexical_weights = (HYBRID_LEXICAL + HYBRID_DENSE, 0.0)
        if mode == "hybrid" and pool and self.settings.skip_dense_when_decisive:
            quick = self._score(pool, cosines, lex_all, lex_max, lexical_weights, query)
            if self._decisive(quick):
                return quick[:k]
        if mode != "lexical":
            vector = self.encoder.encode_queries([expanded])[0]
            ids, sims = self.index.dense.search(vector, min(CANDIDATES, n))
            floor = float(sims[-1]) if len(sims) else 0.0
            span = max(float(sims[0]) - floor, 1e-6) if len(sims) else 1.0
            for i, s in zip(ids, sims, strict=True):
                pool[int(i)] = (float(s) - floor) / span
                cosines[int(i)] = float(s)
        if not pool:
            return []
        hybrid = (HYBRID_LEXICAL, HYBRID_DENSE)
        if not has_diacritics(question):
            # The embedding model reads Vietnamese typed without diacritics poorly (dense-only hit@1 0.37 on such
            # questions against 0.61 for BM25 over folded text), so its vote counts for less there.
            hybrid = (HYBRID_LEXICAL + HYBRID_DENSE - NO_DIACRITICS_DENSE, NO_DIACRITICS_DENSE)
        weights = {"hybrid": hybrid, "lexical": lexical_weights, "dense": (0.0, HYBRID_LEXICAL + HYBRID_DENSE)}[mode]
        return self._score(pool, cosines, lex_all, lex_max, weights, query)[:k]

    def _search_text(self, question: str) -> str:
        """The question minus its aspect phrases, plus the lexicon's official wording for what it names. Terms
        inside an aspect phrase are not expanded ("trên VNeID" asks for the channel), but every term's context
        is read in the whole question ("thông tin trên VNeID bị sai" is about the population database)."""
        kept = _without_aspect_phrases(question)
        if kept == question:
            return self.lexicon.expand(question)
        return self.lexicon.expand(question, base=kept, skip=aspect_spans(question))

    def _decisive(self, ranked: list[Candidate]) -> bool:
        if len(ranked) < 2:
            return False
        top, second = ranked[0], ranked[1]
        return (top.doc.kind == "procedure" and top.score - second.score >= DECISIVE_MARGIN
                and top.coverage >= DECISIVE_COVERAGE
                and top.score - UNKNOWN_WORD_PENALTY * top.unknown >= CONFIDENT_SCORE + DECISIVE_CONFIDENCE)  # fmt: skip

    def _score(self, pool: dict[int, float], cosines: dict[int, float], lex_all: np.ndarray, lex_max: float,
               weights: tuple[float, float], query: _QueryFeatures) -> list[Candidate]:  # fmt: skip
        out = []
        for i, dense_n in pool.items():
            doc = self.index.docs[i]
            lex_n = float(lex_all[i]) / lex_max if lex_max > 0 else 0.0
            cov = query.coverage(self._doc_tokens[i])
            # Title precision: of two titles that both match, the one with fewer words the citizen did not say
            # is the one meant ("đăng ký khai sinh" over "đăng ký khai sinh cho người đã có hồ sơ, giấy tờ…").
            title = self._title_words[i]
            precision = len(title & query.asked) / len(title) if title else 0.0
            if self._ocr_damaged[i] and query.plan_cue and weights[0] > 0:
                score = (weights[0] + weights[1]) * lex_n
            else:
                score = weights[0] * lex_n + weights[1] * dense_n
            score += COVERAGE_WEIGHT * cov + PRECISION_WEIGHT * precision
            # a number the citizen quotes ("tổng đài 1022", "nghị định 100") singles out the record that has it
            score += min(0.2, 0.1 * len(query.numbers & self._doc_tokens[i]))
            if doc.kind == "procedure":
                score += query.prefer.adjustment(self._variants[i])
                score -= 0.1 if query.plan_cue else 0.0
            elif doc.kind == "plan":
                score += 0.05 if query.plan_cue else -0.15
                province, number = self._plan_meta[i]
                # the province and the document number the citizen names single out a document
                if query.provinces:
                    score += PLAN_PROVINCE_MATCH if province in query.provinces else PLAN_PROVINCE_MISMATCH
                named = query.numbers & self._plan_numbers
                if named:
                    score += PLAN_NUMBER_MATCH if number in named else -PLAN_NUMBER_MATCH
                if query.percent and self._plan_percent[i]:
                    score += PLAN_PERCENT
            out.append(Candidate(i, doc, score, lex_n, dense_n, cov, cosines.get(i, 0.0), query.unknown))
        out.sort(key=lambda c: c.score, reverse=True)
        return out

    # ------------------------------------------------------------------ steps
    def _plan_profile(self, passage_id: str) -> tuple[str, str]:
        document = self.kb.documents[self.kb.passages[passage_id].doc_id]
        number = document.number.split("/")[0].strip()
        return fold(document.province).lower(), number

    def validate(self, text: object) -> str | None:
        """A clear reply for a message that cannot be a question (empty, too long, binary), else None."""
        if not isinstance(text, str) or not text.strip():
            return "Bạn chưa nhập câu hỏi. Hãy hỏi về một thủ tục hành chính, ví dụ: “làm lại căn cước ở đâu?”"
        if len(text) > self.settings.max_input_chars:
            return (
                f"Câu hỏi dài quá (tối đa {self.settings.max_input_chars} ký tự). "
                "Bạn hãy rút gọn và hỏi lại nhé."
            )
        if _SHORT_NUMBER_RE.match(text):
            return None  # "2": a choice among offered options, or a rating
        letters = sum(1 for ch in text if unicodedata.category(ch).startswith("L"))
        # control characters or U+FFFD (undecodable bytes) mean binary data, whatever letters it happens to hold
        garbage = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"))
        if letters < 2 or letters < 0.3 * len(text.strip()) or garbage > 0.1 * len(text):
            return (
                "Mình chưa hiểu tin nhắn này. Bạn hãy gõ câu hỏi bằng chữ, ví dụ: "
                "“đăng ký khai sinh cần giấy tờ gì?”"
            )
        return None

    def _scoped(self, question: str, verdict: ScopeVerdict, state: ConversationState) -> tuple[
        Reply, ConversationState
    ]:
        s = self.settings
        help_line = f"Bạn có thể tra cứu tại Cổng Dịch vụ công quốc gia ({s.portal_url}) hoặc gọi tổng đài {s.hotline}."
        small_talk = {
            "greet": "Xin chào! Mình là trợ lý thủ tục hành chính. Bạn cần hỏi thủ tục nào: giấy tờ, lệ phí, "
            "thời gian, nơi nộp hay các bước?",
            "thanks": "Rất vui được giúp bạn! Bạn còn cần hỏi thủ tục nào nữa không?",
            "goodbye": "Tạm biệt bạn! Khi cần tra cứu thủ tục hành chính, bạn cứ quay lại nhé.",
            "bot_challenge": "Mình là trợ lý ảo (không phải người thật), trả lời dựa trên cơ sở dữ liệu thủ tục "
            f"hành chính công. Cần gặp cán bộ, bạn gọi tổng đài {s.hotline}.",
        }
        if verdict.small_talk:
            return Reply(question, small_talk[verdict.category], verdict.category, False, outcome="small_talk"), state
        extra = {
            "injection": "Mình không thể làm theo yêu cầu đó. ",
            "medical": "Với vấn đề sức khỏe, bạn hãy hỏi bác sĩ hoặc cơ sở y tế. ",
            "financial": "Mình không tư vấn đầu tư hay tài chính cá nhân. ",
        }.get(verdict.category, "")
        text = (
            f"{extra}Xin lỗi, mình chỉ hỗ trợ thông tin về thủ tục hành chính công và kế hoạch chuyển đổi số của "
            f"tỉnh, nên không trả lời được câu hỏi này. {help_line}"
        )
        return Reply(question, text, "out_of_scope", True, outcome="declined"), state

    def _choice(self, question: str, state: ConversationState) -> str | None:
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

    def _coverage_fn(self, question: str):  # noqa: ANN202 - returns a closure over the question's words
        """How much of what the citizen said a record covers: the share of the question's topic words found in
        the record, where a word the lexicon rewrote ("cccd", "sổ đỏ") counts when the record has most of its
        official wording ("thẻ căn cước", "giấy chứng nhận quyền sử dụng đất")."""
        words = _topic_words(question)
        aliases: dict[str, list[frozenset[str]]] = {}
        for surface, canonical in self.lexicon.matches(question):
            official = frozenset(lexical_tokens(canonical)) - _FILLER
            for word in _topic_words(surface):
                aliases.setdefault(word, []).append(official)

        def coverage(doc_tokens: frozenset[str]) -> float:
            if not words:
                return 0.0
            hit = 0
            for word in words:
                if word in doc_tokens or any(
                    len(alias & doc_tokens) * 2 >= len(alias) for alias in aliases.get(word, ()) if alias
                ):
                    hit += 1
            return hit / len(words)

        return coverage

    def _unknown_share(self, question: str) -> float:
        question = _without_aspect_phrases(question)  # "online", "vneid" are channel words, handled as aspects
        words = _topic_words(question)
        if not words:
            return 0.0
        rewritten = {w for surface, _ in self.lexicon.matches(question) for w in _topic_words(surface)}
        unknown = [w for w in words if w not in self.index.vocabulary and w not in rewritten and not w.isdigit()]
        return len(unknown) / len(words)

    def _is_bare_followup(self, question: str) -> bool:
        """Only an aspect ("hết bao nhiêu tiền?", "làm lại ở đâu?") and words that cannot name a procedure."""
        rest = [w for w in _topic_words(blank_aspect_phrases(fold(question))) if w not in _FOLLOWUP_GENERIC]
        return not rest

    def _continues(self, question: str, candidates: list[Candidate], state: ConversationState) -> bool:
        """A short message in a conversation about a procedure, that names no other procedure confidently and
        has no word the knowledge never uses, continues the conversation."""
        if state.procedure not in self.kb.procedures or len(syllables(fold(question))) > FOLLOWUP_MAX_WORDS:
            return False
        return not candidates or candidates[0].unknown == 0

    def _confident(self, top: Candidate) -> bool:
        # Words the knowledge never uses ("youtube", "shopee", "flan") mean the question is about something else,
        # however well its other words match.
        return top.score - UNKNOWN_WORD_PENALTY * top.unknown >= CONFIDENT_SCORE

    def _alternatives(self, proc: Procedure, candidates: list[Candidate]) -> list[Procedure]:
        base = base_title(proc.title)
        out = []
        for c in candidates[1:]:
            if c.doc.kind != "procedure" or c.doc.doc_id == proc.code:
                continue
            other = self.kb.procedures[c.doc.doc_id]
            if base_title(other.title) == base:
                out.append(other)
        return out[:MAX_ALTERNATIVES]

    def _procedure_reply(
        self,
        question: str,
        proc: Procedure,
        aspects: list[Aspect],
        alternatives: list[Procedure],
        score: float,
        state: ConversationState,
        candidates: list[Candidate] | None = None,
    ) -> tuple[Reply, ConversationState]:
        text = compose_procedure(proc, aspects, alternatives)
        sources = [Source(proc.code, "procedure", proc.title, proc.url, round(float(score), 4))]
        for c in candidates or []:
            if c.doc.doc_id != proc.code:
                sources.append(self._source(c))
        intent = "ask_" + aspects[0] if aspects else "ask_general"
        new_state = ConversationState(
            procedure=proc.code,
            aspects=list(aspects),
            options=[proc.code] + [a.code for a in alternatives] if alternatives else [],
        )
        return Reply(question, text, intent, False, sources[:5], list(aspects)), new_state

    def _unsure(self, question: str, candidates: list[Candidate], state: ConversationState) -> tuple[
        Reply, ConversationState
    ]:
        s = self.settings
        options = [c for c in candidates if c.doc.kind == "procedure" and c.coverage > 0][:3]
        misses = state.misses + 1
        if options:
            listing = "\n".join(
                f"{i}. {self.kb.procedures[c.doc.doc_id].title} (mã {c.doc.doc_id})" for i, c in enumerate(options, 1)
            )
            text = (
                "Mình chưa chắc đã hiểu đúng câu hỏi. Có phải bạn muốn hỏi một trong các thủ tục sau?\n"
                f"{listing}\nTrả lời số thứ tự để chọn, hoặc hỏi cụ thể hơn. "
            )
        else:
            text = (
                "Xin lỗi, mình không tìm thấy thông tin phù hợp trong cơ sở dữ liệu thủ tục hành chính. "
                "Bạn có thể hỏi lại cụ thể hơn (tên thủ tục, giấy tờ cần làm). "
            )
        text += f"Cần hỗ trợ trực tiếp, bạn gọi tổng đài {s.hotline} hoặc xem {s.portal_url}."
        new_state = ConversationState(
            procedure=state.procedure,
            aspects=state.aspects,
            options=[c.doc.doc_id for c in options],
            misses=misses,
        )
        reply = Reply(question, text, "unknown", True, [self._source(c) for c in options], outcome="unknown")
        return reply, new_state

    def _source(self, c: Candidate) -> Source:
        if c.doc.kind == "procedure":
            proc = self.kb.procedures[c.doc.doc_id]
            return Source(proc.code, "procedure", proc.title, proc.url, round(c.score, 4))
        passage = self.kb.passages[c.doc.doc_id]
        doc = self.kb.documents[passage.doc_id]
        title = f"{doc.title} ({doc.number})" if doc.number else doc.title
        return Source(passage.passage_id, "plan", title, None, round(c.score, 4))
