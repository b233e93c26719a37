"""A training corpus generated from the knowledge itself: citizen-style questions with their gold procedure.

Nothing here reads an evaluation set. For each procedure record the generator writes a few questions from its
title, the way citizens ask (docs/architecture.md, "Learned ranking"):

- the title itself, or shortened: without its variant qualifiers ("(thực hiện tại cấp xã)", "… bằng dịch vụ công
  trực tuyến toàn trình"), only its first clause ("Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu …" →
  "cấp giấy chứng nhận quyền sử dụng đất"), or the shortest start of it that names at most a few records (how
  citizens name it: "Đăng ký kết hôn"); a shortened name that begins too many titles ("Cấp giấy phép") is not used;
- inside an aspect phrasing ("… cần giấy tờ gì", "lệ phí … bao nhiêu", "… mất bao lâu", "… nộp ở đâu");
- with the lexicon read in reverse: an official phrase of the title replaced by one of the citizen terms that mean
  it ("thẻ căn cước" → "cccd", "cấp lại" → "làm lại"), abbreviations preferred for the ``abbreviation`` rows;
- without diacritics (folded, sometimes with teencode: "ko", "dc", "j").

A shortened question names every record whose title it begins (the variants sharing it): those are
``acceptable`` too, and the variant preference, not the label, decides among them. A full title names its own
record only, so its near-identical variants are the hard negatives the ranker's pool brings.

Out-of-scope rows (``code`` None) are made without the evaluation sets: everyday topics the assistant does not
serve in the same aspect phrasings, the same phrasings with the topic replaced by words the knowledge never uses,
and the small talk and portal-support questions of ``/work/shared/data/dev/ward_office_intents.jsonl`` when it is
there. Procedures citizens do themselves (their subjects name citizens, or they are done at the commune) get twice
as many rows as the others. Every choice is drawn from a ``random.Random`` seeded with the seed and the procedure's code, so the corpus
is the same for the same seed and knowledge, and a subset of procedures gets the same rows it gets in the whole.
"""

from __future__ import annotations

import json
import random
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answer.variants import _CHANNEL_QUALIFIER_RE, _LEVEL_QUALIFIER_RE, _PAREN_RE, unqualified_title
from bot.knowledge.models import Procedure
from bot.text.lexicon import Lexicon
from bot.text.vietnamese import fold

# Small talk and portal support, no procedure: intents of the shared development questions kept as out-of-scope.
SHARED_INTENTS = Path("/work/shared/data/dev/ward_office_intents.jsonl")
_OFF_INTENTS = re.compile(
    r"^(greet|goodbye|affirm|deny|mood_\w+|bot_challenge|ask_(loi|khong|quen|trang_web|man_hinh|he_thong|server|"
    r"access|app_mobile|file_not|treo|mat_ket_noi|cap_nhat_trinh_duyet|dang_nhap_google|chuyen_ngon_ngu|"
    r"xuat_du_lieu|tai_app|danh_gia_dich_vu|xem_lich_su_danh_gia|gop_y)\w*)$"
)

# How citizens wrap the name of a procedure; {x} is the name, lowercase first letter.
ASPECT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "general": ("{x}", "cho em hỏi về {x}", "tôi muốn {x}", "mình cần làm {x}", "thủ tục {x}"),
    "documents": ("{x} cần giấy tờ gì", "hồ sơ {x} gồm những gì", "làm {x} cần chuẩn bị những gì",
                  "cho hỏi {x} cần mang theo giấy tờ gì"),
    "fee": ("lệ phí {x} là bao nhiêu", "{x} hết bao nhiêu tiền", "phí {x} bao nhiêu", "{x} có mất phí không"),
    "time": ("{x} mất bao lâu", "{x} bao lâu thì có kết quả", "thời gian giải quyết {x} là bao lâu"),
    "where": ("{x} nộp ở đâu", "{x} làm ở đâu", "đi đâu để {x}", "muốn {x} thì đến cơ quan nào"),
    "steps": ("thủ tục {x} như thế nào", "các bước {x}", "hướng dẫn {x}", "{x} làm thế nào"),
    "conditions": ("điều kiện {x} là gì", "ai được {x}"),
    "online": ("{x} có làm online được không", "nộp hồ sơ {x} trực tuyến được không"),
}
# Everyday things the assistant does not serve, asked the same way (out-of-scope rows).
OFF_TOPICS = (
    "mua vé máy bay đi Đà Nẵng", "sửa điện thoại bị vỡ màn hình", "nấu phở bò", "đặt bàn nhà hàng", "học tiếng Anh",
    "mua iphone trả góp", "thuê xe du lịch", "đăng ký gói cước 4G", "đổi quà tích điểm siêu thị", "mua bảo hiểm xe máy online",
    "chơi game online", "làm bánh sinh nhật", "tập gym giảm cân", "mua vàng miếng", "chữa đau lưng", "đặt vé xem phim",
    "trồng cây cảnh", "nuôi cá cảnh", "cắt tóc nam", "sửa máy giặt", "mở tài khoản chứng khoán", "nạp tiền điện thoại",
    "học lập trình python", "mua đồ ăn vặt", "tải nhạc về máy", "đặt phòng khách sạn ở Đà Lạt", "sửa xe đạp",
    "gửi hàng đi Mỹ", "thay pin laptop", "mua sữa cho bé", "tìm việc làm thêm buổi tối", "đăng bài lên facebook",
    "xem bóng đá trực tiếp", "mua cây thông noel", "làm đẹp da mặt", "học bơi cho trẻ", "đặt trà sữa",
)
# Words the knowledge never uses stand in for a topic ("lệ phí tiktok là bao nhiêu"); those the vocabulary has
# are dropped when the rows are made.
OFF_WORDS = (
    "tiktok", "youtube", "shopee", "netflix", "spotify", "bitcoin", "karaoke", "pizza", "iphone", "laptop", "gym",
    "yoga", "lazada", "grab", "instagram", "chatgpt", "playstation", "skincare", "livestream", "crypto", "tinder",
    "minecraft", "airpods", "sushi", "kpop", "idol", "esport", "photoshop", "streamer", "hamburger",
)
_TEENCODE = ((r"\bkhong\b", "ko"), (r"\bduoc\b", "dc"), (r"\bgi\b", "j"), (r"\bbao nhieu\b", "bn"))
_ABBREVIATION = re.compile(r"^[a-z]{2,6}$")
_CLAUSE_CUT = re.compile(r"[,;:(]| - | đối với | trong trường hợp | theo quy định")
_THU_TUC = re.compile(r"^thủ tục\s+", re.IGNORECASE)  # "Thủ tục hải quan …": the templates say "thủ tục" themselves
_MIN_NAME_WORDS = 3
_MAX_COVERED = 5  # a shortened name that begins more other titles than this names no procedure ("cấp giấy phép")
_NAME_COVERS = 3  # a citizen's name for a procedure: the shortest start of its title naming at most this many others
_SHORTENED = 0.75  # share of the questions made from a shortened name rather than the whole title
_LEXICON = 0.35  # share of the questions that try the lexicon in reverse
_MAX_HEAD_WORDS = 9


@dataclass(frozen=True)
class Example:
    """One generated question and what answers it."""

    text: str
    code: str | None  # the procedure it was made from; None for an out-of-scope row
    acceptable: tuple[str, ...] = ()  # other records that answer it as well (variants a shortened name covers)
    kind: str = "title"  # how it was made: title, short, head, name, lexicon, abbreviation, folded, off_topic, …
    form: str = ""  # the name of the procedure it was made from: title, short, head or name ("" out of scope)

    @property
    def gold(self) -> frozenset[str]:
        return frozenset({self.code, *self.acceptable}) if self.code else frozenset()

    def to_dict(self) -> dict:
        return {"text": self.text, "code": self.code, "acceptable": list(self.acceptable), "kind": self.kind,
                "form": self.form}


def short_title(title: str) -> str:
    """The title without the qualifiers variants differ by (brackets, submission channel, level), diacritics kept.

    >>> short_title("Cấp lại thẻ căn cước (thực hiện tại cấp xã)")
    'Cấp lại thẻ căn cước'
    """
    folded = fold(title)
    if len(folded) != len(title):
        return " ".join(title.split())
    chars = list(title)
    for regex in (_PAREN_RE, _CHANNEL_QUALIFIER_RE, _LEVEL_QUALIFIER_RE):
        for m in regex.finditer(folded):
            chars[m.start():m.end()] = " " * (m.end() - m.start())
    return " ".join("".join(chars).split()).strip(" ,.;-")


def head_title(title: str) -> str:
    """The title's first clause, at most a few words ("Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở
    …" → "Cấp giấy chứng nhận quyền sử dụng đất"); "" when that leaves too little to name anything.

    >>> head_title("Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác gắn liền với đất")
    'Cấp giấy chứng nhận quyền sử dụng đất'
    """
    first = _CLAUSE_CUT.split(short_title(title), maxsplit=1)[0]
    words = first.split()[:_MAX_HEAD_WORDS]
    return " ".join(words) if len(words) >= _MIN_NAME_WORDS else ""


class _Reverse:
    """The lexicon read backwards: an official phrase → the citizen terms that mean it."""

    def __init__(self, lexicon: Lexicon) -> None:
        table: dict[str, list[str]] = {}
        for entry in lexicon.entries:
            if entry.strict or entry.learned:  # the acronyms learned from the titles are not how citizens were seen to write
                continue
            for canonical in entry.canonical:
                key = fold(canonical).strip()
                if len(key.split()) < 2:  # one-word targets are teencode ("không", "được"), not names
                    continue
                for term in entry.terms:
                    if fold(term) != key:
                        table.setdefault(key, []).append(term)
        self.table = {k: sorted(set(v)) for k, v in table.items()}
        # longest phrases first, so "thẻ căn cước công dân" is tried before "thẻ căn cước"
        self.keys = sorted(self.table, key=len, reverse=True)

    def rewrite(self, name: str, rng: random.Random, abbreviations: bool) -> str | None:
        """``name`` with one official phrase replaced by a citizen term (an abbreviation when ``abbreviations``),
        or None when it has none."""
        folded = fold(name)
        if len(folded) != len(name):
            return None
        found = []
        for key in self.keys:
            m = re.search(rf"\b{re.escape(key)}\b", folded)
            if m is None:
                continue
            terms = [t for t in self.table[key] if _ABBREVIATION.match(t) is not None] if abbreviations else self.table[key]
            if terms:
                found.append((m, terms))
        if not found:
            return None
        m, terms = found[rng.randrange(len(found))]
        return name[: m.start()] + rng.choice(terms) + name[m.end():]


def citizen_name(short: str, covered: Sequence[tuple[str, str]], own: str) -> str:
    """The shortest start of the (shortened) title, three syllables or more, that begins at most _NAME_COVERS other
    titles: how a citizen names it ("Đăng ký kết hôn" for "Đăng ký kết hôn (thực hiện tại cấp xã)"); "" if none."""
    words = short.split()
    for k in range(_MIN_NAME_WORDS, len(words) + 1):
        name = " ".join(words[:k]).rstrip(" ,;:")
        if len(_covered(name, covered, own)) <= _NAME_COVERS:
            return name
    return ""


def citizen_facing(proc: Procedure) -> bool:
    """A procedure citizens themselves do (the subjects name them, or it is done at the commune)."""
    return "cong dan" in fold(proc.subjects) or "xa" in proc.levels


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _phrase(name: str, rng: random.Random, aspect: str | None = None) -> str:
    aspect = aspect or rng.choice(list(ASPECT_TEMPLATES))
    return rng.choice(ASPECT_TEMPLATES[aspect]).format(x=_lower_first(name))


def _without_diacritics(text: str, rng: random.Random) -> str:
    folded = fold(text)
    if rng.random() < 0.3:
        pattern, short = rng.choice(_TEENCODE)
        folded = re.sub(pattern, short, folded)
    return folded


def _key(title: str) -> str:
    return " ".join(fold(_THU_TUC.sub("", " ".join(title.split()))).split()).rstrip(" .")


def _prefix_index(procs: Iterable[Procedure]) -> list[tuple[str, str]]:
    """Each record's title twice, sorted: (unqualified folded title + " ", code) for the records a shortened name
    begins, and ("=" + folded title, code) for records with the same title ("Thủ tục X" and "X" alike)."""
    return sorted([(_key(unqualified_title(p.title)) + " ", p.code) for p in procs]
                  + [("=" + _key(p.title), p.code) for p in procs])  # fmt: skip


def _covered(name: str, index: Sequence[tuple[str, str]], own: str, exact: bool = False) -> tuple[str, ...]:
    """Other records a name also names: those whose (unqualified, folded) title it begins, or with ``exact``
    those with the very same title."""
    start = "=" + _key(name) if exact else _key(name) + " "
    found = []
    for title, code in index[bisect_left(index, (start, "")):]:
        if title != start if exact else not title.startswith(start):
            break
        if code != own:
            found.append(code)
    return tuple(sorted(found))


def procedure_questions(proc: Procedure, lexicon: Lexicon | _Reverse, seed: int, per_procedure: int = 3,
                        covered: Sequence[tuple[str, str]] = ()) -> list[Example]:  # fmt: skip
    """A few questions about one procedure (see the module's docstring); ``covered`` is the title index that says
    which other records a shortened name also names (:func:`generate` builds it)."""
    reverse = lexicon if isinstance(lexicon, _Reverse) else _Reverse(lexicon)
    rng = random.Random(f"{seed}:{proc.code}")
    title = _THU_TUC.sub("", " ".join(proc.title.split()).rstrip(" ."))
    short, head = short_title(title), head_title(title)
    cover: dict[str, tuple[str, ...]] = {title: _covered(title, covered, proc.code, exact=True)}
    names: list[tuple[str, str]] = [("title", title)]
    for kind, name in (("short", short), ("head", head), ("name", citizen_name(short, covered, proc.code))):
        if name and all(name != other for _, other in names):
            cover[name] = _covered(name, covered, proc.code)
            if len(cover[name]) <= _MAX_COVERED:
                names.append((kind, name))
    forms = {name: form for form, name in reversed(names)}
    out: list[Example] = []
    seen: set[str] = set()

    def add(text: str, kind: str, name: str) -> None:
        text = " ".join(text.split())
        if not text or text in seen:
            return
        seen.add(text)
        out.append(Example(text, proc.code, cover[name], kind, forms[name]))

    attempts = 0
    while len(out) < per_procedure and attempts < per_procedure * 4:
        attempts += 1
        kind, name = rng.choice(names[1:]) if len(names) > 1 and rng.random() < _SHORTENED else names[0]
        style = rng.random()
        if style < _LEXICON:
            rewritten = reverse.rewrite(name, rng, abbreviations=rng.random() < 0.5)
            if rewritten is not None:
                text = _phrase(rewritten, rng)
                abbreviation = any(_ABBREVIATION.match(w) for w in rewritten.split() if w not in name.split())
                add(_without_diacritics(text, rng) if rng.random() < 0.4 else text,
                    "abbreviation" if abbreviation else "lexicon", name)  # fmt: skip
                continue
        text = _phrase(name, rng, "general" if style > 0.9 else None)
        if rng.random() < 0.4:
            add(_without_diacritics(text, rng), "folded", name)
        else:
            add(text, kind, name)
    return out


def off_topic_questions(vocabulary: Iterable[str], seed: int, count: int = 400,
                        shared: Path | None = SHARED_INTENTS) -> list[Example]:  # fmt: skip
    """Out-of-scope rows: everyday topics in the aspect phrasings, the phrasings around words the knowledge never
    uses, and the shared small talk / portal-support questions (when the file is there)."""
    rng = random.Random(f"{seed}:off-topic")
    vocab = frozenset(vocabulary)
    unknown = [w for w in OFF_WORDS if w not in vocab]
    out: list[Example] = []
    seen: set[str] = set()
    while len(out) < count and len(seen) < count * 3:
        if unknown and rng.random() < 0.4:
            topic = " ".join(rng.sample(unknown, k=rng.choice((1, 2))))
            kind = "unknown_words"
        else:
            topic, kind = rng.choice(OFF_TOPICS), "off_topic"
        text = _phrase(topic, rng)
        if rng.random() < 0.35:
            text = _without_diacritics(text, rng)
        if text not in seen:
            seen.add(text)
            out.append(Example(text, None, (), kind))
    if shared is not None and shared.exists():
        for line in shared.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if _OFF_INTENTS.match(str(row.get("intent", ""))) and row.get("question") not in seen:
                seen.add(row["question"])
                out.append(Example(row["question"], None, (), "shared_off_topic"))
    return out


def generate(procedures: Iterable[Procedure], lexicon: Lexicon, seed: int = 16, per_procedure: int = 3,
             vocabulary: Iterable[str] = (), off_topic: int = 400, shared: Path | None = SHARED_INTENTS,
             known: Iterable[Procedure] | None = None) -> list[Example]:  # fmt: skip
    """The whole corpus: ``per_procedure`` questions per procedure, then ``off_topic`` out-of-scope rows (plus the
    shared ones), in a stable order. ``known`` (default: ``procedures``) are the records a shortened name may
    also name: the whole knowledge base when questions are made for a part of it."""
    procs = sorted(procedures, key=lambda p: p.code)
    reverse = _Reverse(lexicon)
    index = _prefix_index(procs if known is None else known)
    # citizens ask about their own procedures far more than about a bank's or an importer's: twice as many rows
    rows = [e for p in procs
            for e in procedure_questions(p, reverse, seed, per_procedure * (2 if citizen_facing(p) else 1), index)]
    if off_topic:
        rows += off_topic_questions(vocabulary, seed, off_topic, shared)
    return rows
