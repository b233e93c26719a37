"""Validation of the hand-written development/evaluation question set in eval/devset/.

Checks structure (ids, fields, enums), minimum sizes and style proportions, internal
consistency (styles match the text, variant questions point at variant procedures) and that
every expected/acceptable code exists in the knowledge files.

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

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "eval" / "devset"
KNOWLEDGE = ROOT / "knowledge" / "procedures"
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


def _load(name: str) -> list[dict]:
    path = DEVSET / name
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
def proc() -> list[dict]:
    return _load("procedure_questions.jsonl")


@pytest.fixture(scope="module")
def oos() -> list[dict]:
    return _load("out_of_scope.jsonl")


@pytest.fixture(scope="module")
def fu() -> list[dict]:
    return _load("followups.jsonl")


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

def test_ids_unique_and_well_formed(proc, oos, fu):
    for rows, prefix in ((proc, "proc"), (oos, "oos"), (fu, "fu")):
        ids = [r["id"] for r in rows]
        dup = [i for i, c in Counter(ids).items() if c > 1]
        assert not dup, f"duplicate ids: {dup}"
        bad = [i for i in ids if not re.fullmatch(rf"{prefix}-\d{{3}}", i)]
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


def test_followup_fields(fu):
    for r in fu:
        assert {"id", "turns", "expected", "aspect"} <= r.keys(), r.get("id")
        t = r["turns"]
        assert isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) and x.strip() for x in t), r["id"]
        assert isinstance(r["expected"], list) and r["expected"], r["id"]
        assert all(CODE_RE.match(c) for c in r["expected"] + r.get("acceptable", [])), r["id"]
        assert not set(r["expected"]) & set(r.get("acceptable", [])), r["id"]
        assert r["aspect"] in ASPECTS, f"{r['id']}: aspect {r['aspect']!r}"
        if "style" in r:  # style describes the second turn
            assert r["style"] in STYLES, r["id"]
            assert t[1].isascii() == (r["style"] == "no_diacritics"), f"{r['id']}: style does not match turn 2"


# ---------------------------------------------------------------- sizes and proportions

def test_minimum_counts(proc, oos, fu):
    assert len(proc) >= 140
    assert len(oos) >= 40
    assert len(fu) >= 25


def test_style_proportions(proc):
    styles = Counter(r["style"] for r in proc)
    assert styles["no_diacritics"] >= 45, styles
    assert styles["no_diacritics"] + styles["abbreviation"] >= len(proc) / 2, styles


def test_variant_questions(proc):
    assert sum(1 for r in proc if r.get("variant")) >= 15


def test_tricky_out_of_scope(oos):
    assert sum(1 for r in oos if r.get("tricky")) >= 10
    cats = Counter(r["category"] for r in oos)
    for c in ("weather", "sport", "medical", "financial", "joke", "injection", "chitchat_fact"):
        assert cats[c] >= 2, f"too few {c}: {cats}"


def test_coverage(proc, fu):
    assert len({r["domain"] for r in proc}) >= 15
    assert len({r["aspect"] for r in proc}) == len(ASPECTS)
    assert {r["aspect"] for r in fu} >= {"fee", "time", "where", "documents", "online"}


def test_followup_turn_styles_mixed(fu):
    ascii_second = sum(1 for r in fu if r["turns"][1].isascii())
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


def test_required_example_present(proc):
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
