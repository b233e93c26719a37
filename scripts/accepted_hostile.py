"""Cost of the largest message that is still answered (VNA_MAX_INPUT_CHARS characters, default 2,000) in hostile
shapes, against a normal question: admit (bound, clean, mask, check) + the engine's answer, in process, engine only.

    VNA_DIALOGUE=false .venv/bin/python scripts/accepted_hostile.py

Prints a markdown table: the worst of 5 runs per shape and its ratio to the worst of 5 normal questions.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Settings
from bot.service import Assistant

a = Assistant(Settings(), progress=False, dialogue=False)
L = a.settings.max_input_chars
def fill(u: str) -> str: return (u * (L // len(u) + 1))[:L]
shapes = {
 "normal": "làm lại căn cước ở đâu",
 "digits+spaces": "1" + " " * (L - 2) + "x",
 "digit groups": fill("0912 345 678 "),
 "slashes": fill("12/"),
 "addresses": fill("so 12/3 duong Le Loi "),
 "@ runs": fill("a@"),
 "long word": "a" * L,
 "vietnamese words": fill("thủ tục cấp lại căn cước công dân ở đâu "),
 "no-diacritics words": fill("lam lai cccd o dau phi bao nhieu "),
 "mixed scripts": fill("Đăng ký 登记 регистрация تسجيل "),
}
res = {}
for name, text in shapes.items():
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        admitted = a.admit(text)
        a.ask(admitted.text)
        ts.append((time.perf_counter() - t) * 1000)
    res[name] = max(ts)
base = res["normal"]
print("| shape | worst of 5 (ms) | × normal |")
print("|---|---:|---:|")
for k, v in res.items():
    print(f"| {k} | {v:.1f} | {v / base:.1f}× |")
