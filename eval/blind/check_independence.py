#!/usr/bin/env python3
"""Near-duplicate check (word-set Jaccard after folding) of eval/blind against eval/{devset,heldout,probes} and eval/conversations.
Prints ONLY blind ids and scores, never text of the other sets."""
import json, re, unicodedata, glob, statistics, yaml, sys
ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[1])
def fold(s):
    s = unicodedata.normalize("NFD", s.lower()).replace("đ", "d")
    s = "".join(c for c in s if unicodedata.category(c) != "Mn")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", s)).strip()
def words(s): return set(fold(s).split())
def texts_of(path):
    out = []
    for line in open(path, encoding="utf-8"):
        if not line.strip(): continue
        r = json.loads(line)
        if "question" in r: out.append(r["question"])
        out += r.get("turns", [])
    return out
other = []
for s in ("devset", "heldout", "probes"):
    for p in glob.glob(f"{ROOT}/{s}/*.jsonl"): other += texts_of(p)
def walk(x):
    if isinstance(x, str): yield x
    elif isinstance(x, dict):
        for v in x.values(): yield from walk(v)
    elif isinstance(x, list):
        for v in x: yield from walk(v)
try:
    other += [t for t in walk(yaml.safe_load(open(f"{ROOT}/conversations/conversations.yml"))) if len(t.split()) >= 3]
except Exception as e: print("conversations.yml not read:", type(e).__name__)
ow = [words(t) for t in other]; of = {fold(t) for t in other}
mine = []
for p in sorted(glob.glob(f"{ROOT}/blind/*.jsonl")):
    for line in open(p, encoding="utf-8"):
        r = json.loads(line)
        for k, t in enumerate([r["question"]] if "question" in r else r["turns"]):
            mine.append((r["id"] + ("" if "question" in r else f"#t{k+1}"), t))
scores = []
for i, t in mine:
    w = words(t)
    best = max((len(w & o) / len(w | o) for o in ow if w | o), default=0.0)
    exact = fold(t) in of
    scores.append((best, i, exact))
scores.sort(reverse=True)
thr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.8
print("compared", len(mine), "blind texts with", len(other), "texts of other sets")
print("exact repeats:", [i for b, i, e in scores if e])
print(f"ids with Jaccard >= {thr}:", [(i, round(b, 2)) for b, i, e in scores if b >= thr])
print("max", round(scores[0][0], 3), "median", round(statistics.median(b for b, _, _ in scores), 3))
print("top 12:", [(i, round(b, 2)) for b, i, e in scores[:12]])
