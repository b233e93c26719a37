"""Validation of the hand-written question sets in eval/devset/, eval/heldout/ and eval/blind/.

eval/devset is the development set the engine was tuned on; eval/heldout is a held-out set written
blind to the engine and to the dev questions, used only for reporting (never for tuning); eval/blind
is a newer blind set (2026-12-07) written the same way, also reporting only. Every test runs once per
set (parametrized through the ``evalset`` fixture); only the size thresholds, the id prefix, the
longest follow-up conversation and the sets a set must not repeat differ (see ``SETS``).

Checks structure (ids, fields, enums), minimum sizes and style proportions, internal
consistency (styles match the text, variant questions point at variant procedures), that
every expected/acceptable code exists in the knowledge files and that plan questions name a known
document and a figure that occurs in its text.

Run: python3 -m pytest tests/test_devset.py -q
"""
from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "eval"
KNOWLEDGE = ROOT / "knowledge" / "procedures"
PLANS = ROOT / "knowledge" / "plans"
NATIONAL = KNOWLEDGE / "national_procedures.jsonl.gz"
DEFENCE = KNOWLEDGE / "defence_procedures.jsonl.gz"

ASPECTS = {"documents", "fee", "time", "where", "steps", "conditions", "legal_basis", "online", "general"}
STYLES = {"no_diacritics", "abbreviation", "colloquial", "formal"}
OOS_CATEGORIES = {"weather", "sport", "medical", "financial", "joke", "injection", "chitchat_fact", "other"}
VARIANTS = {None, "foreign", "mobile", "re_registration", "under14", "province"}
CODE_RE = re.compile(r"^\d\.\d{6}$")

# Abbreviations / everyday short names that make a question "abbreviation" style.
ABBREVIATIONS = [
    "cccd", "cmnd", "gplx", "sổ đỏ", "sổ hồng", "bhxh", "bhyt", "đkkd", "hộ khẩu", "hkd", "mst",
    "tncn", "tnhh", "gpxd", "nvqs", "lltp", "ubnd", "vneid", "vssid", "cà vẹt",
]


# Per-set settings: folder, id prefix and minimum counts. Everything else is checked identically.
SETS: dict[str, dict] = {
    "devset": {
        "id_prefix": "",
        "min_proc": 140, "min_oos": 40, "min_fu": 25, "min_plan": 35,
        "min_no_diacritics": 45, "min_variants": 15, "min_tricky": 10, "min_domains": 15,
        "min_plan_ascii": 12, "min_plan_damaged": 8,
        # The dev plan questions are also grounded against the repaired index in tests/test_plans.py;
        # here it is enough that one accepted spelling occurs in the raw text.
        "plan_every_spelling": False,
        "required_example": True,
        "max_turns": 2, "min_no_diacritics_share": 0.0, "independent_of": (),
    },
    "heldout": {
        "id_prefix": "ho-",
        "min_proc": 100, "min_oos": 25, "min_fu": 12, "min_plan": 20,
        "min_no_diacritics": 40, "min_variants": 15, "min_tricky": 8, "min_domains": 15,
        "min_plan_ascii": 10, "min_plan_damaged": 8,
        "plan_every_spelling": True,
        "required_example": False,
        "max_turns": 2, "min_no_diacritics_share": 0.0, "independent_of": ("devset",),
    },
    # Written 2026-12-07 seeing only the knowledge files (see eval/blind/README.md). Follow-ups may
    # have 2-4 turns; `aspect` and `style` describe the last turn.
    "blind": {
        "id_prefix": "bl-",
        "min_proc": 200, "min_oos": 40, "min_fu": 40, "min_plan": 30,
        "min_no_diacritics": 80, "min_variants": 15, "min_tricky": 15, "min_domains": 15,
        "min_plan_ascii": 8, "min_plan_damaged": 10,
        "plan_every_spelling": True,
        "required_example": False,
        "max_turns": 4, "min_no_diacritics_share": 0.4, "independent_of": ("devset", "heldout", "probes"),
    },
}


@pytest.fixture(scope="module", params=sorted(SETS))
def evalset(request) -> str:
    """Name of the question set under test; every test below runs once per set."""
    if not (EVAL / request.param).is_dir():
        pytest.skip(f"eval/{request.param} not present")
    return request.param


@pytest.fixture(scope="module")
def cfg(evalset) -> dict:
    return SETS[evalset]


def _load(evalset: str, name: str) -> list[dict]:
    path = EVAL / evalset / name
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:  # pragma: no cover - reported by the assert
                pytest.fail(f"{name}:{n} is not valid JSON: {e}")
    return rows


@pytest.fixture(scope="module")
def proc(evalset) -> list[dict]:
    return _load(evalset, "procedure_questions.jsonl")


@pytest.fixture(scope="module")
def oos(evalset) -> list[dict]:
    return _load(evalset, "out_of_scope.jsonl")


@pytest.fixture(scope="module")
def fu(evalset) -> list[dict]:
    return _load(evalset, "followups.jsonl")


@pytest.fixture(scope="module")
def plan(evalset) -> list[dict]:
    return _load(evalset, "plan_questions.jsonl")


@pytest.fixture(scope="module")
def plan_docs() -> dict[str, dict]:
    """doc_id -> metadata from knowledge/plans/documents.yml."""
    meta = yaml.safe_load((PLANS / "documents.yml").read_text(encoding="utf-8"))
    return {d["doc_id"]: d for d in meta["documents"]}


@pytest.fixture(scope="module")
def knowledge() -> dict[str, tuple[str, str]]:
    """code -> (title, level) for both knowledge files."""
    if not (NATIONAL.exists() and DEFENCE.exists()):
        pytest.skip("knowledge/procedures/*.jsonl.gz not present")
    out: dict[str, tuple[str, str]] = {}
    with gzip.open(NATIONAL, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out[r["ma_thu_tuc"]] = (r.get("ten_thu_tuc") or "", r.get("cap_thuc_hien") or "")
    with gzip.open(DEFENCE, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            md = r.get("metadata") or {}
            out[r["thu_tuc_id"]] = (md.get("tên_thủ_tục") or "", md.get("cấp_thực_hiện") or "")
    return out


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFC", s).lower()
    s = re.sub(r"[^\w\s]", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def _fold(s: str) -> str:
    """Lower-case and strip Vietnamese diacritics (đ -> d)."""
    s = unicodedata.normalize("NFD", s.lower()).replace("đ", "d")
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return _norm(s)


# ---------------------------------------------------------------- ids and fields

def test_ids_unique_and_well_formed(proc, oos, fu, plan, cfg):
    for rows, prefix in ((proc, "proc"), (oos, "oos"), (fu, "fu"), (plan, "plan")):
        ids = [r["id"] for r in rows]
        dup = [i for i, c in Counter(ids).items() if c > 1]
        assert not dup, f"duplicate ids: {dup}"
        bad = [i for i in ids if not re.fullmatch(rf"{cfg['id_prefix']}{prefix}-\d{{3}}", i)]
        assert not bad, f"malformed ids: {bad}"


def test_procedure_fields(proc):
    required = {"id", "question", "expected", "acceptable", "aspect", "style", "note"}
    for r in proc:
        missing = required - r.keys()
        assert not missing, f"{r.get('id')}: missing {missing}"
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert isinstance(r["expected"], list) and r["expected"], f"{r['id']}: expected must be a non-empty list"
        assert isinstance(r["acceptable"], list), r["id"]
        for c in r["expected"] + r["acceptable"]:
            assert isinstance(c, str) and CODE_RE.match(c), f"{r['id']}: bad code {c!r}"
        assert len(set(r["expected"])) == len(r["expected"]), r["id"]
        assert len(set(r["acceptable"])) == len(r["acceptable"]), r["id"]
        assert not set(r["expected"]) & set(r["acceptable"]), f"{r['id']}: code both expected and acceptable"
        assert r["aspect"] in ASPECTS, f"{r['id']}: aspect {r['aspect']!r}"
        assert r["style"] in STYLES, f"{r['id']}: style {r['style']!r}"
        assert r.get("variant") in VARIANTS, f"{r['id']}: variant {r.get('variant')!r}"
        assert isinstance(r.get("domain"), str) and r["domain"], f"{r['id']}: domain"


def test_out_of_scope_fields(oos):
    for r in oos:
        assert {"id", "question", "category"} <= r.keys(), r.get("id")
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert r["category"] in OOS_CATEGORIES, f"{r['id']}: category {r['category']!r}"
        assert isinstance(r.get("tricky", False), bool), r["id"]


def test_followup_fields(fu, cfg):
    for r in fu:
        assert {"id", "turns", "expected", "aspect"} <= r.keys(), r.get("id")
        t = r["turns"]
        assert isinstance(t, list) and 2 <= len(t) <= cfg["max_turns"], r["id"]
        assert all(isinstance(x, str) and x.strip() for x in t), r["id"]
        assert isinstance(r["expected"], list) and r["expected"], r["id"]
        assert all(CODE_RE.match(c) for c in r["expected"] + r.get("acceptable", [])), r["id"]
        assert not set(r["expected"]) & set(r.get("acceptable", [])), r["id"]
        assert r["aspect"] in ASPECTS, f"{r['id']}: aspect {r['aspect']!r}"
        if "style" in r:  # style describes the last turn (the second one in two-turn sets)
            assert r["style"] in STYLES, r["id"]
            assert t[-1].isascii() == (r["style"] == "no_diacritics"), f"{r['id']}: style does not match the last turn"


# ---------------------------------------------------------------- sizes and proportions

def test_minimum_counts(proc, oos, fu, plan, cfg):
    assert len(proc) >= cfg["min_proc"]
    assert len(oos) >= cfg["min_oos"]
    assert len(fu) >= cfg["min_fu"]
    assert len(plan) >= cfg["min_plan"]


def test_style_proportions(proc, cfg):
    styles = Counter(r["style"] for r in proc)
    assert styles["no_diacritics"] >= cfg["min_no_diacritics"], styles
    assert styles["no_diacritics"] + styles["abbreviation"] >= max(45, len(proc) / 2), styles
    assert styles["no_diacritics"] >= cfg["min_no_diacritics_share"] * len(proc), styles


def test_variant_questions(proc, cfg):
    assert sum(1 for r in proc if r.get("variant")) >= cfg["min_variants"]


def test_tricky_out_of_scope(oos, cfg):
    assert sum(1 for r in oos if r.get("tricky")) >= cfg["min_tricky"]
    assert sum(1 for r in oos if r["question"].isascii()) >= 8  # typed without diacritics
    cats = Counter(r["category"] for r in oos)
    for c in ("weather", "sport", "medical", "financial", "joke", "injection", "chitchat_fact"):
        assert cats[c] >= 2, f"too few {c}: {cats}"


def test_coverage(proc, fu, cfg):
    assert len({r["domain"] for r in proc}) >= cfg["min_domains"]
    assert len({r["aspect"] for r in proc}) == len(ASPECTS)
    assert {r["aspect"] for r in fu} >= {"fee", "time", "where", "documents", "online"}


def test_followup_turn_styles_mixed(fu):
    ascii_second = sum(1 for r in fu if r["turns"][-1].isascii())
    assert 0 < ascii_second < len(fu)


# ---------------------------------------------------------------- text consistency

def test_style_matches_text(proc):
    for r in proc:
        q = r["question"]
        if r["style"] == "no_diacritics":
            assert q.isascii(), f"{r['id']}: no_diacritics question contains diacritics: {q}"
        else:
            assert not q.isascii(), f"{r['id']}: {r['style']} question has no diacritics: {q}"
        if r["style"] == "abbreviation":
            low = unicodedata.normalize("NFC", q).lower()
            assert any(a in low for a in ABBREVIATIONS), f"{r['id']}: no abbreviation in {q}"


def test_questions_unique(proc, oos, fu):
    qs = [_norm(r["question"]) for r in proc] + [_norm(r["question"]) for r in oos]
    dup = [q for q, c in Counter(qs).items() if c > 1]
    assert not dup, dup


def test_required_example_present(proc, cfg):
    if not cfg["required_example"]:
        pytest.skip("the brief's example belongs to the development set only")
    ex = [r for r in proc if _norm(r["question"]) == "lam lai cccd o dau"]
    assert ex, "the example 'lam lai cccd o dau' is missing"
    r = ex[0]
    assert r["expected"] == ["1.014064"]
    assert {"2.001194", "1.000757"} <= set(r["acceptable"])
    assert r["style"] == "no_diacritics" and r["aspect"] == "where"


# ---------------------------------------------------------------- against the knowledge files

def test_codes_exist(proc, fu, knowledge):
    missing = []
    for r in proc + fu:
        for c in r["expected"] + r.get("acceptable", []):
            if c not in knowledge:
                missing.append((r["id"], c))
    assert not missing, f"codes not in knowledge files: {missing}"


def test_questions_do_not_copy_titles(proc, knowledge):
    for r in proc:
        q = _fold(r["question"])
        for c in r["expected"]:
            title = _fold(re.sub(r"^\s*(thủ tục|trình tự, thủ tục)\s*:?\s*", "", knowledge[c][0], flags=re.I))
            if len(title) >= 25:  # short titles ("dang ky ket hon") are everyday words
                assert title not in q, f"{r['id']}: question copies the title of {c}"


VARIANT_HINTS = {
    "foreign": ("nuoc ngoai",),
    "mobile": ("luu dong",),
    "re_registration": ("dang ky lai",),
    "under14": ("duoi 14",),
}


def test_variant_questions_point_at_variant_procedures(proc, knowledge):
    for r in proc:
        v = r.get("variant")
        if not v:
            continue
        for c in r["expected"]:
            title, level = knowledge[c]
            if v == "province":
                assert "tỉnh" in level.lower() or "cap tinh" in _fold(title), f"{r['id']}: {c} is not provincial"
            else:
                assert any(h in _fold(title) for h in VARIANT_HINTS[v]), f"{r['id']}: {c} title lacks {v} hint"


def test_default_questions_do_not_target_variants(proc, knowledge):
    """Questions without a variant tag must not expect a foreign/mobile/re-registration/under-14 variant."""
    for r in proc:
        if r.get("variant"):
            continue
        for c in r["expected"]:
            t = _fold(knowledge[c][0])
            for hint in ("luu dong", "duoi 14 tuoi", "khu vuc bien gioi", "co yeu to nuoc ngoai"):
                assert hint not in t, f"{r['id']}: untagged question expects variant {c}"
            if re.search(r"\bdang ky lai (khai sinh|khai tu|ket hon|viec nuoi)", t):
                pytest.fail(f"{r['id']}: untagged question expects re-registration variant {c}")


# ---------------------------------------------------------------- plan questions

def _fold_compact(s: str) -> str:
    """Diacritic-folded, lower-case, whitespace removed; punctuation kept (so '4/63', '1.457', '35-37%' stay as printed)."""
    s = unicodedata.normalize("NFD", unicodedata.normalize("NFC", s).lower()).replace("đ", "d")
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", "", s)


def _figure_norm(s: str) -> str:
    """Like _fold_compact, also without '.'/',' (so 1.457 ~ 1457, 47,2 ~ 47.2)."""
    return re.sub(r"[.,]", "", _fold_compact(s))


def test_plan_questions_well_formed_and_grounded(plan, plan_docs, cfg):
    for r in plan:
        assert set(r) == {"id", "question", "doc_id", "expected", "note"}, r.get("id")
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert r["doc_id"] in plan_docs, f"{r['id']}: unknown doc_id {r['doc_id']!r}"
        assert isinstance(r["expected"], list) and r["expected"], r["id"]
        assert all(isinstance(e, str) and e.strip() for e in r["expected"]), r["id"]
        assert len(set(r["expected"])) == len(r["expected"]), r["id"]
    assert sum(r["question"].isascii() for r in plan) >= cfg["min_plan_ascii"]  # typed without diacritics
    assert sum(bool(plan_docs[r["doc_id"]].get("ocr_damaged")) for r in plan) >= cfg["min_plan_damaged"]

    texts = {d: (PLANS / f"{d}.txt").read_text(encoding="utf-8") for d in {r["doc_id"] for r in plan}}
    folded = {d: _fold_compact(t) for d, t in texts.items()}
    figures = {d: _figure_norm(t) for d, t in texts.items()}
    for r in plan:
        found = [_figure_norm(e) in figures[r["doc_id"]] for e in r["expected"]]
        if cfg["plan_every_spelling"]:
            # the first spelling is the figure as printed (folded, spaces removed); the others are
            # alternative spellings of the same figure (thousand/decimal separators)
            assert _fold_compact(r["expected"][0]) in folded[r["doc_id"]], f"{r['id']}: {r['expected'][0]!r} not in {r['doc_id']}"
            assert all(found), f"{r['id']}: not every expected spelling occurs in {r['doc_id']}"
        else:
            assert any(found), f"{r['id']}: no expected spelling occurs in {r['doc_id']}"


# ---------------------------------------------------------------- held-out independence

def test_heldout_does_not_repeat_devset_questions(evalset, cfg):
    """A reporting set must not reuse questions of the sets listed in ``independent_of`` (held-out: the
    dev set; blind: dev, held-out and probes). Compared after normalisation; only ids in the message.
    The held-out check compares the first follow-up turn only; the blind check compares every turn."""
    others = [s for s in cfg["independent_of"] if (EVAL / s).is_dir()]
    if not others:
        pytest.skip("no set to compare with")
    names = ("procedure_questions.jsonl", "out_of_scope.jsonl", "plan_questions.jsonl")
    turns = slice(0, 1) if evalset == "heldout" else slice(None)

    def rows(s: str, n: str) -> list[dict]:
        return _load(s, n) if (EVAL / s / n).exists() else []

    seen = {_fold(r["question"]) for s in others for n in names for r in rows(s, n)}
    seen |= {_fold(t) for s in others for r in rows(s, "followups.jsonl") for t in r["turns"][turns]}
    mine = [(r["id"], _fold(r["question"])) for n in names for r in rows(evalset, n)]
    mine += [(r["id"], _fold(t)) for r in rows(evalset, "followups.jsonl") for t in r["turns"][turns]]
    same = [i for i, q in mine if q in seen]
    assert not same, f"{evalset} rows repeating a question of {others}: {same}"
