"""The answering engine: one question (and the conversation state) in, one grounded reply out.

It orchestrates only: understand → route → retrieve and rank → gate → compose.

- understand (:mod:`bot.understanding`): normalised text, scope verdict, choice, aspects, variant, plan cues, place;
- route: small talk and off-topic questions get their reply at once, a choice or a bare follow-up ("còn lệ phí thì
  sao?") is answered on the procedure under discussion, and so is a message that only names a place ("ở Bình Dương");
  in a conversation, any other message stays on the procedure under discussion unless it clearly names another
  one (:mod:`bot.ranking.followup`);
- retrieve and rank (:mod:`bot.ranking`): BM25 and dense channels fused and scored, weights in one object;
- gate: a leader that is not confident is not answered; the closest procedures are offered instead;
- compose (:mod:`bot.answer`): the reply from the record, naming its source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.answer import replies
from bot.answer.aspects import Aspect
from bot.answer.compose import compose_plan, compose_procedure
from bot.answer.places import REORGANISED, place_note
from bot.answer.structured import structured_answer
from bot.answer.variants import base_title
from bot.config import PROJECT_DIR, Settings
from bot.domain import Candidate, ConversationState, Mode, Reply, Source
from bot.knowledge.models import Procedure
from bot.learning.model import load_learned
from bot.places import Place
from bot.ranking.ranker import Ranker
from bot.ranking.weights import WEIGHTS, RankingWeights
from bot.retrieval.embedding_model import Encoder
from bot.retrieval.index import KnowledgeIndex
from bot.retrieval.onnx_encoder import OnnxQueryEncoder
from bot.text.acronyms import with_acronyms
from bot.text.diacritics import CONVERSATION_WEIGHT, Restorer, conversation_texts
from bot.text.lexicon import Lexicon, load_lexicon
from bot.text.vietnamese import normalize
from bot.understanding import Question, known_aspects, read, understand

MAX_ALTERNATIVES = 3  # variants of the answered procedure listed after the answer
MAX_OPTIONS = 3  # closest procedures offered when the engine is unsure
MAX_SOURCES = 5

Answer = tuple[Reply, ConversationState]
NLU_EXAMPLES = PROJECT_DIR / "nlu_data" / "nlu.yml"


class Engine:
    """Answers questions from one knowledge index; stateless between calls (the state travels with the call)."""

    def __init__(self, index: KnowledgeIndex, encoder: Encoder | OnnxQueryEncoder, settings: Settings,
                 lexicon: Lexicon | None = None, weights: RankingWeights = WEIGHTS) -> None:  # fmt: skip
        self.index = index
        self.kb = index.kb
        self.encoder = encoder
        self.settings = settings
        # the hand lexicon, plus the acronyms learned from the titles that it does not list (bot/text/acronyms.py)
        self.lexicon = with_acronyms(lexicon if lexicon is not None else load_lexicon(), index.acronyms)
        # diacritics put back on questions typed without them, for the meaning channel: counted from the records at
        # build time, plus citizens' wording (the NLU examples and the lexicon's terms) counted here
        phrases = [p for e in self.lexicon.entries if not e.learned for p in (*e.terms, *e.canonical)]
        self.restorer = Restorer.learn([*conversation_texts(NLU_EXAMPLES), *phrases], weight=CONVERSATION_WEIGHT,
                                       base=index.restorer)  # fmt: skip
        learned = load_learned(settings.resolved_learned_ranking_path) if settings.learned_ranking else None
        self.ranker = Ranker(index, encoder, self.lexicon, weights, settings.skip_dense_when_decisive, learned,
                             self.restorer)  # fmt: skip

    # ------------------------------------------------------------------ public
    def answer(self, text: object, state: ConversationState | None = None, mode: Mode = "hybrid") -> Answer:
        state = state or ConversationState()
        invalid = self.validate(text)
        if invalid:
            return Reply(text if isinstance(text, str) else "", invalid, None, True, outcome="invalid"), state
        assert isinstance(text, str)  # validate refused anything that is not text
        question = understand(text, state, self.lexicon)
        if question.scope is not None:
            return self._scoped(question, state)
        place = self._place(question, state)
        if question.choice is not None:
            proc = self.kb.procedures[question.choice]
            return self._procedure_reply(question.text, proc, known_aspects(state.aspects), [], 1.0, place=place)
        discussed = self.kb.procedures.get(state.procedure) if state.procedure else None
        if discussed is not None and (question.bare_followup or question.choice_only):
            # an aspect alone ("còn lệ phí thì sao?") or a pick by number that picks nothing offered: no search
            aspects = question.aspects if question.bare_followup else known_aspects(state.aspects)
            return self._procedure_reply(question.text, discussed, aspects, [], 1.0, place=place)
        if question.choice_only:
            # a number that picks nothing ("số 5" when three were offered, "số 2" when nothing was) is not a question:
            # no search, the options still pending are offered again
            return self._reoffer(question.text, state)
        if question.place_only and question.place is not None:
            if state.procedure in self.kb.procedures:
                # "ở Bình Dương thì sao?" about the procedure under discussion: where it is done, for that place
                proc = self.kb.procedures[state.procedure]
                return self._procedure_reply(question.text, proc, ["where"], [], 1.0, place=place)
            # "phường Bến Nghé giờ thuộc phường nào?", or the answer to the assistant's question about a place
            return self._place_reply(question.text, place, state)
        aspects = question.aspects_in_context

        if discussed is not None:
            candidates, moves_on, implied = self.ranker.rank_in_conversation(question, discussed.code, mode)
            if not moves_on and (not candidates or candidates[0].unknown == 0):
                # The procedure under discussion stays until a message clearly names another one
                # (bot.ranking.followup): "đăng ký có phải đóng đồng nào không?" after "đăng ký khai tử". A message
                # with words the knowledge never uses goes through the gate as a new question.
                # "có cần giấy chứng sinh không" (a paper of its dossier), "có phải lên phòng tư pháp không" (its
                # office): the documents, where to go, then whatever else the message asks
                implied = [a for a in implied if a not in aspects]
                if implied:
                    aspects = [*implied, *(a for a in aspects if a != "general")]
                discussed = self.kb.procedures[self.ranker.asked_variant(question, discussed.code)]
                return self._procedure_reply(question.text, discussed, aspects, [], 1.0, place=place)
        else:
            candidates = self.ranker.rank(question, mode)
        if not candidates or not self.ranker.confident(candidates[0]):
            return self._unsure(question.text, candidates, state, place[0])
        top = candidates[0]
        if top.doc.kind == "plan":
            passage = self.kb.passages[top.doc.doc_id]
            doc = self.kb.documents[passage.doc_id]
            reply = Reply(question.text, compose_plan(passage, doc, question.text), "ask_plan", False,
                          [self._source(c) for c in candidates[:MAX_SOURCES]], ["plan"])  # fmt: skip
            # the plan's own note says what its province is now (compose_plan): the place is only remembered
            return reply, ConversationState(procedure=state.procedure, aspects=state.aspects, place=_stored(place[0]))
        proc = self.kb.procedures[top.doc.doc_id]
        alternatives = self._alternatives(proc, candidates)
        return self._procedure_reply(question.text, proc, aspects, alternatives, top.score, candidates, place)

    def describe(self, code: str, question: str, aspects: Sequence[str] = (),
                 state: ConversationState | None = None) -> Answer:  # fmt: skip
        """The answer about one procedure the citizen picked among offered options (by button, number or words);
        the conversation's place (``state``) is kept."""
        proc = self.kb.procedures[code]
        place = (Place.from_dict(state.place) if state is not None else None), False
        return self._procedure_reply(normalize(question), proc, known_aspects(aspects), [], 1.0, place=place)

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

    @staticmethod
    def _place(question: Question, state: ConversationState) -> tuple[Place | None, bool]:
        """The place this turn is about (the one the message names, else the conversation's), and whether the
        reply says what it is today: once, when the message names a place the conversation had not yet heard."""
        previous = Place.from_dict(state.place)
        if question.place is None:
            return previous, False
        heard = previous is not None and (previous.named, previous.status) == (question.place.named,
                                                                               question.place.status)
        return question.place, not heard

    def _place_reply(self, question: str, place: tuple[Place | None, bool], state: ConversationState) -> Answer:
        """A message naming only a place: what it is now (or what the data cannot tell), no procedure."""
        found, _ = place
        assert found is not None
        note = place_note(found)
        if found.resolved:
            unchanged = f"{found.now} là đơn vị hành chính hiện nay (từ ngày {REORGANISED})."
            text = f"{note or unchanged} Bạn cần hỏi thủ tục hành chính nào ở đó?"
        else:
            text = note
        new_state = ConversationState(procedure=state.procedure, aspects=state.aspects, options=state.options,
                                      place=_stored(found))  # fmt: skip
        return Reply(question, text, "inform_place", False, outcome="answered" if found.resolved else "clarify"), new_state

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
                         score: float, candidates: list[Candidate] | None = None,
                         place: tuple[Place | None, bool] = (None, False)) -> Answer:  # fmt: skip
        found, announce = place
        text = compose_procedure(proc, aspects, alternatives, found, announce)
        sources = [Source(proc.code, "procedure", proc.title, proc.url, round(float(score), 4))]
        for c in candidates or []:
            if c.doc.doc_id != proc.code:
                sources.append(self._source(c))
        intent = "ask_" + aspects[0] if aspects else "ask_general"
        new_state = ConversationState(
            procedure=proc.code,
            aspects=list(aspects),
            options=[proc.code] + [a.code for a in alternatives] if alternatives else [],
            place=_stored(found),
        )
        reply = Reply(question, text, intent, False, sources[:MAX_SOURCES], list(aspects),
                      answer=structured_answer(proc, aspects, found))  # fmt: skip
        return reply, new_state

    def _unsure(self, question: str, candidates: list[Candidate], state: ConversationState,
                place: Place | None = None) -> Answer:  # fmt: skip
        options = [c for c in candidates if c.doc.kind == "procedure" and c.coverage > 0][:MAX_OPTIONS]
        text = replies.unsure([(c.doc.doc_id, self.kb.procedures[c.doc.doc_id].title) for c in options], self.settings)
        new_state = ConversationState(
            procedure=state.procedure,
            aspects=state.aspects,
            options=[c.doc.doc_id for c in options],
            misses=state.misses + 1,
            place=_stored(place),
        )
        reply = Reply(question, text, "unknown", True, [self._source(c) for c in options], outcome="unknown")
        return reply, new_state

    def _reoffer(self, question: str, state: ConversationState) -> Answer:
        pending = [self.kb.procedures[code] for code in state.options if code in self.kb.procedures]
        text = replies.unsure([(p.code, p.title) for p in pending], self.settings)
        sources = [Source(p.code, "procedure", p.title, p.url, 0.0) for p in pending]
        new_state = replace(state, options=[p.code for p in pending], misses=state.misses + 1)
        return Reply(question, text, "unknown", True, sources, outcome="unknown"), new_state

    def _source(self, c: Candidate) -> Source:
        if c.doc.kind == "procedure":
            proc = self.kb.procedures[c.doc.doc_id]
            return Source(proc.code, "procedure", proc.title, proc.url, round(c.score, 4))
        passage = self.kb.passages[c.doc.doc_id]
        doc = self.kb.documents[passage.doc_id]
        title = f"{doc.title} ({doc.number})" if doc.number else doc.title
        if doc.successor:  # the province is part of another one since the reorganisation: say so where it is cited
            title += f" — tỉnh {doc.province} cũ, nay thuộc {doc.successor}"
        return Source(passage.passage_id, "plan", title, None, round(c.score, 4))


def _stored(place: Place | None) -> dict | None:
    return place.to_dict() if place is not None else None
