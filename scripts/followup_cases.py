"""Generate multi-turn conversations from the knowledge itself, for developing and checking the conversation state.

    .venv/bin/python scripts/followup_cases.py              # writes eval/generated/{dev,check}/followups.jsonl
    .venv/bin/python scripts/followup_cases.py --papers 200 # writes eval/generated/papers/followups.jsonl
    .venv/bin/python scripts/followup_cases.py --offices 200 # writes eval/generated/offices/followups.jsonl

Each conversation opens with a question naming one procedure (its title, shortened as a citizen would say it), then
asks about other aspects of it in ordinary words ("thế phải mang theo những giấy nào", "đóng tiền bao nhiêu vậy"),
sometimes picks an offered variant by its number ("số 2", "cái thứ hai") and sometimes moves on to another procedure
by naming it ("còn cấp phiếu lý lịch tư pháp thì sao?"). What each later turn must be answered with is written in
``turn_expect`` (see bot/eval.py, ``score_followup``): ``same`` (the procedure under discussion), ``choice:N`` (the
N-th option the previous reply offered) or the codes a switch names.

Two disjoint halves, by procedure (a hash of the code) and by wording (two separate template lists written for
each aspect): ``dev`` is the half rules may be developed on, ``check`` the half that measures whether they generalise.
The generator never runs the assistant, so the set does not depend on its answers. Deterministic (``--seed``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answer.variants import base_title  # noqa: E402
from bot.knowledge.models import Procedure  # noqa: E402
from bot.knowledge.procedures import load_procedures  # noqa: E402
from bot.text.vietnamese import fold  # noqa: E402

# How citizens open a conversation about a procedure ({t}: the shortened title).
OPENERS = {
    "dev": ["thủ tục {t}", "cho mình hỏi về {t}", "{t} làm thế nào", "tôi muốn {t}", "{t} cần những gì"],
    "check": ["hỏi chút về {t} ạ", "em cần {t}", "{t} thì làm sao", "hướng dẫn giúp mình {t}", "{t}"],
}
# Later turns that ask another aspect of the same procedure, in ordinary words; the two halves share no wording.
ASPECT_TURNS = {
    "dev": {
        "documents": ["cần giấy tờ gì", "hồ sơ gồm những gì vậy", "cho mình hỏi cần mang theo giấy tờ gì",
                      "phải chuẩn bị những gì ạ"],
        "fee": ["lệ phí bao nhiêu", "hết bao nhiêu tiền vậy", "có mất phí không", "phí thế nào ạ"],
        "time": ["mất bao lâu", "bao lâu thì có kết quả", "mấy ngày thì xong vậy"],
        "where": ["nộp ở đâu", "làm ở đâu vậy bạn", "đến cơ quan nào để làm"],
        "steps": ["các bước làm thế nào", "trình tự thực hiện ra sao"],
        "conditions": ["điều kiện là gì", "ai thì được làm"],
        "online": ["làm online được không", "nộp qua mạng được không"],
        "legal_basis": ["căn cứ pháp lý là gì"],
    },
    "check": {
        "documents": ["thế phải mang theo những giấy nào", "hồ sơ cần có những loại giấy gì nhỉ",
                      "em cần chuẩn bị giấy tờ như nào"],
        "fee": ["đóng tiền bao nhiêu vậy", "tốn bao nhiêu tiền thế", "có phải trả đồng nào không"],
        "time": ["chờ bao lâu thì được", "khoảng mấy hôm thì xong", "thời gian giải quyết là bao lâu vậy"],
        "where": ["mình phải lên đâu để làm", "hồ sơ nộp chỗ nào", "đi đâu để làm vậy"],
        "steps": ["làm theo những bước nào", "quy trình làm ra sao hả bạn"],
        "conditions": ["cần đáp ứng điều kiện gì", "có yêu cầu gì không"],
        "online": ["có làm trên mạng được không", "nộp trên cổng dịch vụ công được không"],
        "legal_basis": ["làm theo luật nào vậy"],
    },
}
# The same, with a word of the procedure's own title in it ({v}: the title's first two syllables, its action):
# "đăng ký thì mất bao lâu" after "đăng ký khai tử" still asks about that procedure.
TITLE_WORD_TURNS = {
    "dev": ["{v} thì mất bao lâu", "{v} có mất phí không", "{v} cần giấy tờ gì"],
    "check": ["{v} xong bao lâu thì nhận được", "{v} có phải đóng tiền không", "{v} phải mang giấy gì"],
}
CHOICE_TURNS = {"dev": ["số 2", "chọn 2", "cái thứ hai"], "check": ["lấy cái số 2", "cái thứ 2 nhé", "phương án 2"]}
SWITCH_TURNS = {
    "dev": ["còn {t} thì sao", "thế còn {t} cần giấy tờ gì"],
    "check": ["vậy {t} thì làm ở đâu", "mình hỏi thêm về {t}"],
}
# A later turn that asks about one paper of the procedure's own dossier ({d}: the paper's name, from its record):
# "có cần giấy chứng sinh không" after "đăng ký khai sinh" is still about that procedure, even when another
# procedure's title has the paper's words ("văn bản đề nghị" → "đề nghị khoanh nợ"). Written after the two lists
# above, for the ``papers`` set (``--papers``).
PAPER_TURNS = ["có cần {d} không", "{d} thì sao", "phải nộp {d} à", "nếu không có {d} thì có làm được không",
               "{d} cần bản chính hay bản sao"]  # fmt: skip
# A later turn that names the office that receives or decides the procedure ({a}: its name, from the record's
# agency field): "có phải lên phòng tư pháp không" after "đăng ký khai sinh" is not about "lý lịch tư pháp". For the
# ``offices`` set (``--offices``).
OFFICE_TURNS = ["có phải lên {a} không", "nộp ở {a} được không", "{a} có nhận hồ sơ không", "phải đến tận {a} à",
                "ở {a} thì nộp cho ai"]  # fmt: skip
# What a paper's name begins with ("giấy", "đơn", "tờ khai", …): the rest of a dossier line is an explanation.
PAPER_HEADS = ("giấy", "đơn", "tờ khai", "văn bản", "biên bản", "bản khai", "bản kê", "bản vẽ", "bản đồ", "bản sao",
               "quyết định", "hợp đồng", "sổ", "thẻ", "phiếu", "chứng chỉ", "chứng từ", "báo cáo", "danh sách", "ảnh",
               "hộ chiếu", "sơ đồ", "bằng", "hóa đơn", "bản cam kết", "bản chụp")  # fmt: skip
_PAPER_CUT = re.compile(r"[;:,.(]| theo | của | do | đối với | trong trường hợp | hoặc | và | đã | có ")
_PAREN = re.compile(r"\s*\([^)]*\)")
_QUALIFIER = re.compile(r"\s+(thực hiện tại|tại cấp|cấp (xã|tỉnh|huyện|trung ương)\b|trên cổng|bằng dịch vụ).*$",
                        re.IGNORECASE)  # fmt: skip
MAX_TITLE_WORDS = 10


def short_title(title: str) -> str | None:
    """The title as a citizen would name the procedure: no "Thủ tục", brackets, level or channel qualifiers, the
    part before the first comma; None when it stays longer than MAX_TITLE_WORDS words."""
    t = _PAREN.sub("", title).strip()
    t = re.sub(r"^thủ tục\s+", "", t, flags=re.IGNORECASE)
    t = _QUALIFIER.sub("", t)
    head = t.split(",")[0].strip()
    if len(head.split()) >= 3:
        t = head
    t = " ".join(t.split()).rstrip(" .;:")
    if not t or len(t.split()) > MAX_TITLE_WORDS or len(t.split()) < 2:
        return None
    return t[0].lower() + t[1:]


def paper_names(proc: Procedure) -> list[str]:
    """The names of the papers ``proc``'s dossier lists, as a citizen would quote them: the start of each dossier
    line up to its first clause or qualifier, 3–7 words, beginning with a paper's head word; each once."""
    names: list[str] = []
    for document in proc.documents:
        text = re.sub(r"^[-+•*\d.)\s]+", "", document.name)
        head = _PAPER_CUT.split(text)[0].strip()
        head = head[:1].lower() + head[1:]
        if 3 <= len(head.split()) <= 7 and head.lower().startswith(PAPER_HEADS) and head not in names:
            names.append(head)
    return names


def office_names(proc: Procedure) -> list[str]:
    """The offices named in ``proc``'s agency field, as a citizen would say them: each part up to its first
    clause, 2–8 words; each once."""
    names: list[str] = []
    for part in re.split(r"[;,.(\n]| - ", proc.agency or ""):
        head = " ".join(part.split())
        head = head[:1].lower() + head[1:]
        if 2 <= len(head.split()) <= 8 and head not in names:
            names.append(head)
    return names


def papers(seed: int, count: int, kind: str = "papers") -> list[dict]:
    """Conversations whose later turns ask about papers of the procedure's own dossier, or (``kind="offices"``)
    name the office that handles it (``same`` every turn): the opener of the ``check`` half, one aspect turn half
    the time, then one or two such turns. Procedures of both halves whose shortened title is usable and whose
    record names at least one paper (office)."""
    named, templates = (paper_names, PAPER_TURNS) if kind == "papers" else (office_names, OFFICE_TURNS)
    procedures = load_procedures(ROOT / "knowledge")
    by_base: dict[str, list[str]] = {}
    for p in procedures:
        by_base.setdefault(base_title(p.title), []).append(p.code)
    rng = random.Random(f"{seed}-{kind}")
    pool = [(p, t, named(p)) for p in procedures if (t := short_title(p.title)) is not None]
    pool = [row for row in pool if row[2]]
    rng.shuffle(pool)
    rows = []
    for n, (proc, title, names) in enumerate(pool[:count], 1):
        opener, style = typed(rng.choice(OPENERS["check"]).format(t=title), rng)
        turns: list[str] = [opener]
        expect: list[str | dict | None] = [None]
        if rng.random() < 0.5:  # another aspect first
            asked = rng.choice(sorted(ASPECT_TURNS["check"]))
            turns.append(typed(rng.choice(ASPECT_TURNS["check"][asked]), rng)[0])
            expect.append("same")
        for name in rng.sample(names, min(len(names), rng.choice((1, 2)))):
            turns.append(typed(rng.choice(templates).format(d=name, a=name), rng)[0])
            expect.append("same")
        rows.append({
            "id": f"gen-{kind}-{n:03d}",
            "turns": turns,
            "expected": [proc.code],
            "acceptable": sorted(set(by_base[base_title(proc.title)]) - {proc.code}),
            "turn_expect": expect,
            # the last turn asks about a paper of the dossier, or where to go
            "aspect": "documents" if kind == "papers" else "where",
            "style": style,
            "note": f"generated from {proc.code} ({title})",
        })
    return rows


def half(code: str) -> str:
    return "dev" if int(hashlib.sha1(code.encode()).hexdigest(), 16) % 2 == 0 else "check"


def typed(text: str, rng: random.Random) -> tuple[str, str]:
    """The text as typed: 40 % without diacritics."""
    if rng.random() < 0.4:
        return fold(text), "no_diacritics"
    return text, "colloquial"


def generate(seed: int, per_half: int) -> dict[str, list[dict]]:
    procedures = load_procedures(ROOT / "knowledge")
    by_base: dict[str, list[str]] = {}
    for p in procedures:
        by_base.setdefault(base_title(p.title), []).append(p.code)
    named = [(p, short_title(p.title)) for p in procedures]
    pool: dict[str, list[tuple[Procedure, str]]] = {"dev": [], "check": []}
    for p, t in named:
        if t is not None:
            pool[half(p.code)].append((p, t))
    out: dict[str, list[dict]] = {}
    for name, candidates in pool.items():
        rng = random.Random(f"{seed}-{name}")
        rng.shuffle(candidates)
        rows = []
        for n, (proc, title) in enumerate(candidates[:per_half], 1):
            variants = [c for c in by_base[base_title(proc.title)] if c != proc.code]
            opener, style = typed(rng.choice(OPENERS[name]).format(t=title), rng)
            turns, last_aspect = [opener], "general"
            expect: list[str | dict | None] = [None]
            if variants and rng.random() < 0.5:  # the first reply lists the variants: pick the second
                turns.append(rng.choice(CHOICE_TURNS[name]))
                expect.append("choice:2")
            aspects = rng.sample(sorted(ASPECT_TURNS[name]), 3)
            for i, aspect in enumerate(aspects[: rng.choice((1, 2, 3))]):
                if i == 1 and rng.random() < 0.5:
                    action = " ".join(title.split()[:2])
                    text = rng.choice(TITLE_WORD_TURNS[name]).format(v=action)
                else:
                    text = rng.choice(ASPECT_TURNS[name][aspect])
                turns.append(typed(text, rng)[0])
                expect.append("same")
                last_aspect = aspect
            if rng.random() < 0.4:  # move on to another procedure by naming it, then ask on about that one
                other, other_title = candidates[(n + per_half) % len(candidates)]
                turns.append(typed(rng.choice(SWITCH_TURNS[name]).format(t=other_title), rng)[0])
                others = sorted(set(by_base[base_title(other.title)]) - {other.code})
                expect.append({"expected": [other.code], "acceptable": others})
                turns.append(typed(rng.choice(ASPECT_TURNS[name]["time"]), rng)[0])
                expect.append("same")
                last_aspect = "time"
            rows.append({
                "id": f"gen-{name}-{n:03d}",
                "turns": turns,
                "expected": [proc.code],
                "acceptable": sorted(variants),
                "turn_expect": expect,
                "aspect": last_aspect,
                "style": style,
                "note": f"generated from {proc.code} ({title})",
            })
        out[name] = rows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "eval" / "generated"))
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--per-half", type=int, default=150)
    parser.add_argument("--papers", type=int, default=0, metavar="N",
                        help="instead: N conversations asking about papers of the dossier, in <out>/papers")
    parser.add_argument("--offices", type=int, default=0, metavar="N",
                        help="instead: N conversations naming the office that handles it, in <out>/offices")
    args = parser.parse_args()
    parser_sets = {"papers": args.papers, "offices": args.offices}
    sets = {kind: papers(args.seed, n, kind) for kind, n in parser_sets.items() if n}
    if not sets:
        sets = generate(args.seed, args.per_half)
    for name, rows in sets.items():
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "followups.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        later = sum(len(r["turns"]) - 1 for r in rows)
        print(f"{folder}/followups.jsonl: {len(rows)} conversations, {later} later turns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
