"""Curated FAQ answers (bot/faq.py): the store, the matcher's threshold, live reload, and the assistant's use of them.

Store and matcher tests run on their own temporary database; the assistant tests use the session fixtures and
remove every entry they create, with wordings no other test asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from bot.conversation import ConversationStore
from bot.faq import (
    MATCH_THRESHOLD,
    UNSET,
    FaqError,
    FaqMatcher,
    FaqNotFound,
    FaqStore,
    question_key,
)
from bot.schema import faqs

KNOWN = {"1.001193", "1.014064"}
LUNCH = "Bộ phận một cửa nghỉ trưa lúc mấy giờ?"
LUNCH_ANSWER = "Bộ phận một cửa nghỉ trưa từ 11 giờ 30 đến 13 giờ 30, từ thứ Hai đến thứ Sáu."


@pytest.fixture()
def store(tmp_path: Path) -> FaqStore:
    db = ConversationStore(f"sqlite:///{tmp_path / 'faq.db'}").db  # migrated, like the assistant's
    return FaqStore(db, known_procedure=KNOWN.__contains__)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------------ store
def test_create_get_and_list(store: FaqStore) -> None:
    faq_id = store.create(["  Bộ phận  một cửa nghỉ trưa lúc mấy giờ? ", "bộ phận MỘT CỬA nghỉ trưa lúc mấy giờ?",
                           "", "giờ nghỉ trưa của bộ phận một cửa"], "  Từ 11 giờ 30.\n\n\n\nĐến 13 giờ 30. ",
                          None, author="cán bộ A", source_turn_id=42)
    entry = store.get(faq_id)
    assert entry is not None
    assert set(entry) == {"id", "variants", "answer", "procedure", "status", "source_turn_id", "created_by",
                          "created_at", "updated_by", "updated_at"}
    # stripped, whitespace collapsed, empty ones dropped, case-insensitive duplicates dropped (first kept)
    assert entry["variants"] == ["Bộ phận một cửa nghỉ trưa lúc mấy giờ?", "giờ nghỉ trưa của bộ phận một cửa"]
    assert entry["answer"] == "Từ 11 giờ 30.\n\nĐến 13 giờ 30."
    assert entry["status"] == "active" and entry["source_turn_id"] == 42
    assert entry["created_by"] == entry["updated_by"] == "cán bộ A"
    assert [e["id"] for e in store.list()] == [faq_id]
    assert store.get(faq_id + 100) is None


def test_variants_are_stored_nfc_with_canonical_tone_marks(store: FaqStore) -> None:
    decomposed = "thu\u0309 tu\u0323c hoa\u0300 gia\u0309i"  # NFD, and "hoà" with the mark on the a
    faq_id = store.create([decomposed], None, "1.001193", author="a")
    assert store.get(faq_id)["variants"] == ["thủ tục hòa giải"]


def test_update_keeps_clears_and_changes_fields(store: FaqStore) -> None:
    faq_id = store.create(["câu hỏi một"], "trả lời một", "1.001193", author="a")
    before = store.get(faq_id)
    after = store.update(faq_id, author="b", answer="trả lời hai")
    assert after["answer"] == "trả lời hai" and after["procedure"] == "1.001193"  # procedure untouched
    assert after["variants"] == ["câu hỏi một"] and after["updated_by"] == "b" and after["created_by"] == "a"
    assert after["updated_at"] > before["updated_at"]
    after = store.update(faq_id, author="b", procedure=None)  # an explicit None clears the field
    assert after["procedure"] is None and after["answer"] == "trả lời hai"
    after = store.update(faq_id, author="b", variants=["câu hỏi hai", "câu hỏi ba"], procedure="1.014064",
                         answer=UNSET)
    assert after["variants"] == ["câu hỏi hai", "câu hỏi ba"] and after["procedure"] == "1.014064"
    with pytest.raises(FaqError, match="answer, a linked procedure, or both"):
        store.update(faq_id, author="b", answer=None, procedure=None)  # would leave nothing to answer with
    assert store.get(faq_id)["answer"] == "trả lời hai"  # the failed update changed nothing
    with pytest.raises(FaqNotFound):
        store.update(faq_id + 1, author="b", answer="x")


def test_retire_and_restore(store: FaqStore) -> None:
    faq_id = store.create(["câu hỏi"], "trả lời", None, author="a")
    assert store.retire(faq_id, author="b")["status"] == "retired"
    assert store.list() == []
    assert [e["id"] for e in store.list(include_retired=True)] == [faq_id]
    restored = store.restore(faq_id, author="c")
    assert restored["status"] == "active" and restored["updated_by"] == "c"
    with pytest.raises(FaqNotFound):
        store.retire(faq_id + 1, author="b")


@pytest.mark.parametrize(
    ("variants", "answer", "procedure", "message"),
    [
        ([], "trả lời", None, "at least one non-empty variant"),
        (["  ", ""], "trả lời", None, "at least one non-empty variant"),
        ("một chuỗi", "trả lời", None, "must be a list"),
        (["câu hỏi", 5], "trả lời", None, "variant 1 is not a string"),
        (["?!…"], "trả lời", None, "variant 0 has no words"),
        (["x" * 501], "trả lời", None, "longer than 500"),
        ([f"câu hỏi số {i}" for i in range(51)], "trả lời", None, "at most 50 variants"),
        (["câu hỏi"], "x" * 4001, None, "longer than 4000"),
        (["câu hỏi"], None, None, "answer, a linked procedure, or both"),
        (["câu hỏi"], "   ", "", "answer, a linked procedure, or both"),
        (["câu hỏi"], None, "9.999999", "unknown procedure code"),
        (["câu hỏi"], 12, None, "answer must be a string"),
    ],
)
def test_invalid_input_is_refused(store: FaqStore, variants, answer, procedure, message: str) -> None:
    with pytest.raises(FaqError, match=message):
        store.create(variants, answer, procedure, author="a")
    assert store.list(include_retired=True) == []


def test_limits_are_inclusive_and_author_is_required(store: FaqStore) -> None:
    variants = ["x" * 500] + [f"câu hỏi số {i}" for i in range(49)]
    faq_id = store.create(variants, "y" * 4000, None, author="a")
    assert len(store.get(faq_id)["variants"]) == 50
    for author in ("", "   ", None, "a" * 65):
        with pytest.raises(FaqError, match="author"):
            store.create(["câu hỏi"], "trả lời", None, author=author)
    with pytest.raises(FaqError, match="source_turn_id"):
        store.create(["câu hỏi"], "trả lời", None, author="a", source_turn_id=-1)


def test_export_import_round_trip(store: FaqStore, tmp_path: Path) -> None:
    import json

    first = store.create(["câu hỏi một", "cách hỏi khác"], "trả lời một", None, author="a", source_turn_id=7)
    store.create(["câu hỏi hai"], None, "1.001193", author="a")
    store.retire(first, author="a")
    exported = store.export()
    assert exported == [
        {"variants": ["câu hỏi một", "cách hỏi khác"], "answer": "trả lời một", "procedure": None,
         "status": "retired", "source_turn_id": 7},
        {"variants": ["câu hỏi hai"], "answer": None, "procedure": "1.001193", "status": "active",
         "source_turn_id": None},
    ]
    text = json.dumps(exported, ensure_ascii=False)  # JSON-serialisable as is
    other = FaqStore(ConversationStore(f"sqlite:///{tmp_path / 'other.db'}").db, known_procedure=KNOWN.__contains__)
    assert other.import_(json.loads(text), author="b") == 2
    assert other.export() == exported
    assert all(e["created_by"] == "b" for e in other.list(include_retired=True))
    # a listing (with ids and timestamps) imports too: the bookkeeping keys are ignored
    assert other.import_(store.list(), author="b") == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"variants": [], "answer": "x"}, "item 1: at least one non-empty variant"),
        ({"variants": ["câu hỏi"], "procedure": "0.000000"}, "item 1: unknown procedure code"),
        ({"variants": ["câu hỏi"], "answer": "x", "answers": "y"}, r"item 1: unknown keys \['answers'\]"),
        ({"answer": "x"}, "item 1: missing 'variants'"),
        ({"variants": ["câu hỏi"], "answer": "x", "status": "deleted"}, "item 1: status must be one of"),
        ("câu hỏi", "item 1: not an object"),
    ],
)
def test_import_is_all_or_nothing(store: FaqStore, bad: object, message: str) -> None:
    items = [{"variants": ["câu hỏi tốt"], "answer": "trả lời"}, bad, {"variants": ["câu khác"], "answer": "y"}]
    with pytest.raises(FaqError, match=message):
        store.import_(items, author="a")
    assert store.list(include_retired=True) == []  # not even the valid first item


def test_markup_in_a_variant_is_kept_as_plain_text(store: FaqStore) -> None:
    variant = "<script>alert('xss')</script> giờ mở cửa của bộ phận một cửa"
    faq_id = store.create([variant], "<b>Từ 7 giờ 30.</b>", None, author="<img src=x onerror=alert(1)>")
    entry = store.get(faq_id)
    assert entry["variants"] == [variant] and entry["answer"] == "<b>Từ 7 giờ 30.</b>"
    assert entry["created_by"] == "<img src=x onerror=alert(1)>"
    assert FaqMatcher(store).match("giờ mở cửa của bộ phận một cửa script alert xss script") is not None


def test_version_changes_on_every_write(store: FaqStore) -> None:
    versions = [store.version()]
    faq_id = store.create(["câu hỏi"], "trả lời", None, author="a")
    versions.append(store.version())
    for action in (lambda: store.update(faq_id, author="a", answer="khác"), lambda: store.retire(faq_id, "a"),
                   lambda: store.restore(faq_id, "a"), lambda: store.update(faq_id, author="a", answer="lại khác")):
        action()
        versions.append(store.version())
    assert versions[0] == (0, None)
    assert len(set(versions)) == len(versions)


# ------------------------------------------------------------------------------------------------ matching
def test_question_key_drops_frames_and_uses_the_lexicon() -> None:
    assert question_key("Cho em hỏi bộ phận một cửa nghỉ trưa lúc mấy giờ vậy ạ?") == question_key(
        "bộ phận một cửa nghỉ trưa lúc mấy giờ")
    assert question_key("làm lại cccd ở đâu") == question_key("làm lại thẻ căn cước ở đâu") == (
        "cấp", "lại", "thẻ", "căn", "cước", "ở", "đâu")
    assert question_key("cho em hỏi") == ("cho", "em", "hỏi")  # nothing but a frame: kept


@pytest.mark.parametrize(
    "question",
    [
        "Bộ phận một cửa nghỉ trưa lúc mấy giờ?",  # the variant itself
        "bộ phận một cửa nghỉ trưa lúc mấy giờ",  # case, punctuation
        "BO PHAN MOT CUA NGHI TRUA LUC MAY GIO",  # no diacritics, upper case
        "cho em hỏi bộ phận một cửa nghỉ trưa mấy giờ vậy ạ",  # politeness frame, one word left out: 8/9
        "bo phan mot cua nghi trua luc may gio a",
        "bộ phận một cửa nghỉ trưa lúc mấy giờ thế",  # one word more: 9/10
        "bo\u0323\u0302 pha\u0323\u0302n mo\u0323\u0302t cu\u031b\u0309a nghi\u0309 tru\u031ba lu\u0301c ma\u0302\u0301y gio\u031b\u0300",
    ],
)
def test_a_rewording_of_a_variant_matches(store: FaqStore, question: str) -> None:
    faq_id = store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    found = FaqMatcher(store).match(question)
    assert found is not None and found.faq["id"] == faq_id and found.score >= MATCH_THRESHOLD
    assert found.variant == LUNCH


@pytest.mark.parametrize(
    "question",
    [
        "bộ phận một cửa ở đâu",  # shares the subject only
        "bộ phận một cửa làm việc lúc mấy giờ",  # shares 7 of 11 words: another question
        "bộ phận một cửa nghỉ trưa lúc mấy giờ vào thứ bảy",  # a narrower question: 9/12
        "nghỉ trưa",
        "bộ phận một cửa nghỉ trưa lúc mấy giờ, có nhận hồ sơ trong giờ nghỉ không",
    ],
)
def test_a_question_that_merely_shares_words_does_not_match(store: FaqStore, question: str) -> None:
    store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    assert FaqMatcher(store).match(question) is None


def test_abbreviations_match_their_official_wording(store: FaqStore) -> None:
    faq_id = store.create(["Làm lại thẻ căn cước ở đâu?"], "Tại công an xã nơi cư trú.", None, author="a")
    matcher = FaqMatcher(store)
    for question in ("làm lại cccd ở đâu", "lam lai cccd o dau", "làm lại căn cước công dân ở đâu ạ"):
        found = matcher.match(question)
        assert found is not None and found.faq["id"] == faq_id, question


def test_diacritics_written_must_agree(store: FaqStore) -> None:
    """A word typed without diacritics matches any it folds from; two differently marked words do not."""
    store.create(["Cấp lại bằng lái xe mất bao lâu"], "Theo hồ sơ.", None, author="a")
    matcher = FaqMatcher(store)
    assert matcher.match("cap lai bang lai xe mat bao lau") is not None
    assert matcher.match("cấp đổi bằng lái xe mất bao lâu") is None  # one substituted word
    assert matcher.match("cấp lái bằng lại xe mất bao lâu") is None  # marked words that only fold alike


def test_threshold_boundary() -> None:
    """Scores on both sides of MATCH_THRESHOLD, from the multiset overlap of the words."""
    from collections import Counter

    from bot.faq import overlap_score

    def score(a: str, b: str) -> float:
        return overlap_score(Counter(question_key(a)), Counter(question_key(b)))

    six = "giờ làm việc phòng tiếp dân"  # six words
    assert score(six + " thế", six) == pytest.approx(6 / 7)  # 0.857: one word more matches
    assert score(six, "giờ làm việc phòng tiếp") == pytest.approx(5 / 6)  # 0.833: one word fewer does not
    assert 5 / 6 < MATCH_THRESHOLD <= 6 / 7
    twelve = "thời gian làm việc của bộ phận một cửa sáng thứ bảy"  # twelve words
    assert score(twelve, twelve.replace("sáng", "chiều")) == pytest.approx(11 / 13)  # 0.846: no match
    assert score(twelve, twelve.replace("sáng", "chiều")) < MATCH_THRESHOLD
    longer = twelve + " hàng tuần"  # fourteen words: one substituted word is 13/15 = 0.867
    assert score(longer, longer.replace("sáng", "chiều")) >= MATCH_THRESHOLD


def test_retired_entries_never_match(store: FaqStore) -> None:
    faq_id = store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    clock = Clock()
    matcher = FaqMatcher(store, clock=clock)
    assert matcher.match(LUNCH) is not None
    store.retire(faq_id, "a")
    clock.now += matcher.refresh_s
    assert matcher.match(LUNCH) is None


def test_edits_are_picked_up_after_the_refresh_interval(store: FaqStore) -> None:
    clock = Clock()
    matcher = FaqMatcher(store, refresh_s=2.0, clock=clock)
    assert matcher.match(LUNCH) is None
    faq_id = store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    clock.now = 1.0
    assert matcher.match(LUNCH) is None  # checked less than refresh_s ago: the store is not asked
    clock.now = 2.0
    assert matcher.match(LUNCH).faq["answer"] == LUNCH_ANSWER
    store.update(faq_id, author="b", answer="Nghỉ trưa từ 12 giờ.")
    clock.now = 4.0
    assert matcher.match(LUNCH).faq["answer"] == "Nghỉ trưa từ 12 giờ."
    store.update(faq_id, author="b", variants=["giờ nghỉ trưa của bộ phận một cửa"])
    clock.now = 6.0
    assert matcher.match(LUNCH) is None
    assert matcher.match("giờ nghỉ trưa của bộ phận một cửa") is not None


def test_a_database_error_keeps_the_last_index(store: FaqStore) -> None:
    from sqlalchemy.exc import OperationalError

    store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    clock = Clock()
    matcher = FaqMatcher(store, clock=clock)
    assert matcher.match(LUNCH) is not None

    def down() -> tuple:
        raise OperationalError("SELECT", {}, Exception("database is down"))

    store.version = down  # type: ignore[method-assign]
    clock.now += matcher.refresh_s
    assert matcher.match(LUNCH) is not None


def test_the_matcher_is_thread_safe(store: FaqStore) -> None:
    faq_id = store.create([LUNCH], LUNCH_ANSWER, None, author="a")
    matcher = FaqMatcher(store, refresh_s=0.0)  # check the store on every call
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        try:
            while not stop.is_set():
                found = matcher.match(LUNCH)
                assert found is None or found.faq["id"] == faq_id
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(20):
        store.update(faq_id, author="a", answer=f"trả lời {i}")
        store.retire(faq_id, "a")
        store.restore(faq_id, "a")
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert matcher.match(LUNCH).faq["answer"] == "trả lời 19"


# ------------------------------------------------------------------------------------------------ assistant
@pytest.fixture()
def curated(assistant) -> Iterator[FaqStore]:
    """The assistant's FAQ store; every entry created in the test is deleted afterwards."""
    faq_store: FaqStore = assistant.faqs
    before = {e["id"] for e in faq_store.list(include_retired=True)}
    yield faq_store
    created = {e["id"] for e in faq_store.list(include_retired=True)} - before
    if created:
        with faq_store.db.begin() as conn:
            conn.execute(delete(faqs).where(faqs.c.id.in_(created)))
    assistant.faq_matcher.refresh(force=True)


def chat(client: TestClient, session: str, text: str) -> dict:
    r = client.post("/api/chat", json={"session_id": session, "text": text})
    assert r.status_code == 200
    return r.json()


def wait_for(client: TestClient, session: str, text: str, condition, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = chat(client, session, text)
        if condition(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.25)


def test_a_curated_answer_is_served_and_edits_go_live(client: TestClient, assistant, curated: FaqStore) -> None:
    question = "bộ phận một cửa nghỉ trưa lúc mấy giờ"
    without = chat(client, "faq-lunch-0", question)
    assert not without["sources"] or without["sources"][0]["kind"] != "faq"
    faq_id = curated.create([LUNCH, "giờ nghỉ trưa của bộ phận một cửa"], LUNCH_ANSWER, None, author="test")
    refresh = assistant.faq_matcher.refresh_s
    started = time.monotonic()
    body = wait_for(client, "faq-lunch-1", "Cho em hỏi bo phan mot cua nghi trua luc may gio a", lambda b: (
        b["sources"] and b["sources"][0]["kind"] == "faq"), refresh + 1)
    assert time.monotonic() - started <= refresh + 1.5
    assert body["reply"] == LUNCH_ANSWER
    assert body["fallback"] is False and body["intent"] == "faq"
    assert body["sources"] == [{"id": f"faq-{faq_id}", "kind": "faq", "title": LUNCH, "url": None,
                                "score": body["sources"][0]["score"]}]
    assert assistant.store.history("faq-lunch-1")[-1]["outcome"] == "answered"

    new_answer = "Bộ phận một cửa nghỉ trưa từ 12 giờ đến 13 giờ."
    curated.update(faq_id, author="test", answer=new_answer)
    started = time.monotonic()
    body = wait_for(client, "faq-lunch-2", question, lambda b: b["reply"] == new_answer, refresh + 1)
    assert body["reply"] == new_answer and time.monotonic() - started <= refresh + 1.5

    curated.retire(faq_id, author="test")
    body = wait_for(client, "faq-lunch-3", question, lambda b: not b["sources"] or b["sources"][0]["kind"] != "faq",
                    refresh + 1)
    assert not body["sources"] or body["sources"][0]["kind"] != "faq"


def test_an_answer_with_a_linked_procedure_cites_it(assistant, curated: FaqStore) -> None:
    faq_id = curated.create(["giấy khai sinh bản gốc bị ướt mưa nhòe chữ thì có phải làm lại không"],
                            "Bạn có thể xin cấp bản sao trích lục khai sinh tại UBND cấp xã.", "1.001193",
                            author="test")
    assistant.faq_matcher.refresh(force=True)
    reply, state = assistant.ask("Giấy khai sinh bản gốc bị ướt mưa, nhòe chữ thì có phải làm lại không?")
    proc = assistant.engine.kb.procedures["1.001193"]
    assert [s.id for s in reply.sources] == [f"faq-{faq_id}", "1.001193"]
    assert reply.reply.startswith("Bạn có thể xin cấp bản sao trích lục khai sinh")
    assert reply.reply.endswith(f"Nguồn: {proc.title}, mã 1.001193 — {proc.url}")
    assert reply.intent == "ask_conditions"  # the yes/no question's aspect
    assert state.procedure == "1.001193" and state.options == [] and state.misses == 0


def test_an_answer_with_a_linked_procedure_keeps_the_place_named_earlier(assistant, curated: FaqStore) -> None:
    from bot.domain import ConversationState

    curated.create(["giấy khai sinh bản gốc bị ướt mưa nhòe chữ thì có phải làm lại không"],
                   "Bạn có thể xin cấp bản sao trích lục khai sinh tại UBND cấp xã.", "1.001193", author="test")
    assistant.faq_matcher.refresh(force=True)
    place = {"named": "Phường Phước Hiệp", "now": "Phường Bà Rịa"}  # as stored by an earlier turn (opaque here)
    reply, state = assistant.ask("Giấy khai sinh bản gốc bị ướt mưa, nhòe chữ thì có phải làm lại không?",
                                 ConversationState(place=place))
    assert reply.sources[0].kind == "faq"
    assert state.procedure == "1.001193" and state.place == place


def test_a_procedure_only_entry_answers_with_the_record_and_follow_ups_stay_on_it(
    client: TestClient, assistant, curated: FaqStore,
) -> None:
    question = "nhà tôi vừa có thêm một thành viên nhỏ xíu thì phải khai báo với nhà nước thế nào"
    faq_id = curated.create([question], None, "1.001193", author="test")
    assistant.faq_matcher.refresh(force=True)
    proc = assistant.engine.kb.procedures["1.001193"]
    body = chat(client, "faq-proc", question)
    assert body["sources"][0]["id"] == "1.001193" and body["sources"][0]["kind"] == "procedure"
    assert body["sources"][-1]["id"] == f"faq-{faq_id}"
    assert body["reply"].startswith(f"Thủ tục: {proc.title} (mã 1.001193).")
    assert body["intent"] == "ask_steps"  # "thế nào": the steps of the record
    follow = chat(client, "faq-proc", "thế còn lệ phí?")
    assert follow["sources"][0]["id"] == "1.001193" and follow["intent"] == "ask_fee"
    assert assistant.store.load("faq-proc").procedure == "1.001193"


def test_a_curated_answer_does_not_take_over_follow_ups_or_choices(assistant, curated: FaqStore) -> None:
    from bot.domain import ConversationState

    curated.create(["hết bao nhiêu tiền"], "Tùy thủ tục, bạn hỏi cụ thể giúp mình nhé.", None, author="test")
    curated.create(["1"], "Số một.", None, author="test")
    assistant.faq_matcher.refresh(force=True)
    reply, _ = assistant.ask("hết bao nhiêu tiền")  # no procedure being discussed: the FAQ answers
    assert reply.sources[0].kind == "faq"
    on_topic = ConversationState(procedure="1.014064", aspects=["documents"])
    reply, state = assistant.ask("hết bao nhiêu tiền", on_topic)  # a follow-up on the procedure
    assert reply.sources[0].id == "1.014064" and reply.intent == "ask_fee"
    offered = ConversationState(options=["1.014064", "1.001193"])
    reply, state = assistant.ask("1", offered)  # a choice among the options
    assert reply.sources[0].id == "1.014064"


def test_a_curated_answer_without_procedure_keeps_the_conversation(assistant, curated: FaqStore) -> None:
    from bot.domain import ConversationState

    curated.create([LUNCH], LUNCH_ANSWER, None, author="test")
    assistant.faq_matcher.refresh(force=True)
    state = ConversationState(procedure="1.014064", aspects=["documents"], misses=2)
    reply, new_state = assistant.ask(LUNCH, state)
    assert reply.reply == LUNCH_ANSWER
    assert new_state == ConversationState(procedure="1.014064", aspects=["documents"], misses=0)


def test_invalid_text_never_reaches_the_faqs(assistant, curated: FaqStore) -> None:
    reply, _ = assistant.ask("   ")
    assert reply.outcome == "invalid"
    reply, _ = assistant.ask(b"\xff")  # type: ignore[arg-type]
    assert reply.outcome == "invalid"
