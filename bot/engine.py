"""The answering engine: one question (and the conversation state) in, one grounded reply out.

It orchestrates only: understand → route → retrieve and rank → gate → compose.

- understand (:mod:`bot.understanding`): normalised text, scope verdict, choice, aspects, variant, plan cues;
- route: small talk and off-topic questions get their reply at once, a choice or a bare follow-up ("còn lệ phí thì
  sao?") is answered on the procedure under discussion;
- retrieve and rank (:mod:`bot.ranking`): BM25 and dense channels fused and scored, weights in one object;
- gate: a leader that is not confident is not answered; the closest procedures are offered instead;
- compose (:mod:`bot.answer`): the reply from the record, naming its source.
"""

from __future__ import annotations

from bot.answer import replies
from bot.answer.aspects import Aspect
from bot.answer.compose import compose_plan, compose_procedure
from bot.answer.variants import base_title
from bot.config import Settings
from bot.domain import Candidate, ConversationState, Mode, Reply, Source
from bot.knowledge.models import Procedure
from bot.ranking.ranker import Ranker
from bot.ranking.weights import WEIGHTS, RankingWeights
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.onnx_encoder import OnnxQueryEncoder
from bot.text.lexicon import Lexicon, load_lexicon
from bot.text.vietnamese import normalize
from bot.understanding import Question, read, understand

MAX_ALTERNATIVES = 3  # variants of the answered procedure listed after the answer
MAX_OPTIONS = 3  # closest procedures offered when the engine is unsure
MAX_SOURCES = 5

Answer = tuple[Reply, ConversationState]


class Engine:
    """Answers questions from one knowledge index; stateless between calls (the state travels with the call)."""

    def __init__(self, index: KnowledgeIndex, encoder: Encoder | OnnxQueryEncoder, settings: Settings,
                 lexicon: Lexicon | None = None, weights: RankingWeights = WEIGHTS) -> None:  # fmt: skip
        self.index = index
        self.kb = index.kb
        self.encoder = encoder
        self.settings = settings
        self.lexicon = lexicon or load_lexicon()
        self.ranker = Ranker(index, encoder, self.lexicon, weights, settings.skip_dense_when_decisive)

    # ------------------------------------------------------------------ public
    def answer(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> Answer:
        state = state or ConversationState()
        invalid = self.validate(text)
        if invalid:
            return Reply(text if isinstance(text, str) else "", invalid, None, True, outcome="invalid"), state
        question = understand(text, state, self.lexicon)  # type: ignore[arg-type]
        if question.scope is not None:
            return self._scoped(question, state)
        if question.choice is not None:
            proc = self.kb.procedures[question.choice]
            return self._procedure_reply(question.text, proc, state.aspects or ["general"], [], 1.0)
        if question.bare_followup and state.procedure in self.kb.procedures:
            return self._procedure_reply(question.text, self.kb.procedures[state.procedure], question.aspects, [], 1.0)
        aspects = question.aspects_in_context

        candidates = self.ranker.rank(question, mode)
        if not candidates or not self.ranker.confident(candidates[0]):
            if self._continues(question, candidates, state):
                # "có cần đưa bé đi cùng không?" after "làm căn cước cho bé 3 tuổi": nothing in it names another
                # procedure the knowledge knows, so it is about the one under discussion
                proc = self.kb.procedures[state.procedure]  # type: ignore[index]
                return self._procedure_reply(question.text, proc, aspects, [], 1.0)
            return self._unsure(question.text, candidates, state)
        top = candidates[0]
        if top.doc.kind == "plan":
            passage = self.kb.passages[top.doc.doc_id]
            doc = self.kb.documents[passage.doc_id]
            reply = Reply(question.text, compose_plan(passage, doc, question.text), "ask_plan", False,
                          [self._source(c) for c in candidates[:MAX_SOURCES]], ["plan"])  # fmt: skip
            return reply, ConversationState(procedure=state.procedure, aspects=state.aspects)
        proc = self.kb.procedures[top.doc.doc_id]
        alternatives = self._alternatives(proc, candidates)
        return self._procedure_reply(question.text, proc, aspects, alternatives, top.score, candidates)

    def describe(self, code: str, question: str, aspects: list[str] | None = None) -> Answer:
        """The answer about one procedure the citizen picked among offered options (by button, number or words)."""
        proc = self.kb.procedures[code]
        return self._procedure_reply(normalize(question), proc, list(aspects or ["general"]), [], 1.0)  # type: ignore[arg-type]

    def retrieve(self, question: str, mode: Mode = "hybrid", k: int = 10) -> list[Candidate]:
        """Ranked candidates for a question read as given (no conversation): see :meth:`Ranker.rank`."""
        return self.ranker.rank(self.read(question), mode, k)

    def read(self, question: str) -> Question:
        """The question as understanding reads it outside a conversation, without normalising it again."""
        return read(question, ConversationState(), self.lexicon)

    def validate(self, text: object) -> str | None:
        """A clear reply for a message that cannot be a question (empty, too long, binary), else None."""
        return replies.refusal(text, self.settings)

    # ------------------------------------------------------------------ routes
    def _scoped(self, question: Question, state: ConversationState) -> Answer:
        verdict = question.scope
        assert verdict is not None
        if verdict.small_talk:
            text = replies.small_talk(verdict, self.settings)
            return Reply(question.text, text, verdict.category, False, outcome="small_talk"), state
        return Reply(question.text, replies.declined(verdict, self.settings), "out_of_scope", True,
                     outcome="declined"), state  # fmt: skip

    def _continues(self, question: Question, candidates: list[Candidate], state: ConversationState) -> bool:
        """A short message in a conversation about a procedure, that names no other procedure confidently and
        has no word the knowledge never uses, continues the conversation."""
        if state.procedure not in self.kb.procedures or not question.short:
            return False
        return not candidates or candidates[0].unknown == 0

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

    # ------------------------------------------------------------------ compose
    def _procedure_reply(self, question: str, proc: Procedure, aspects: list[Aspect], alternatives: list[Procedure],
                         score: float, candidates: list[Candidate] | None = None) -> Answer:  # fmt: skip
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
        return Reply(question, text, intent, False, sources[:MAX_SOURCES], list(aspects)), new_state

    def _unsure(self, question: str, candidates: list[Candidate], state: ConversationState) -> Answer:
        options = [c for c in candidates if c.doc.kind == "procedure" and c.coverage > 0][:MAX_OPTIONS]
        text = replies.unsure([(c.doc.doc_id, self.kb.procedures[c.doc.doc_id].title) for c in options], self.settings)
        new_state = ConversationState(
            procedure=state.procedure,
            aspects=state.aspects,
            options=[c.doc.doc_id for c in options],
            misses=state.misses + 1,
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
