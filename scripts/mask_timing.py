"""Worst-case time of personal-data masking on hostile texts, before issue 15 (d548d3c, Python `re`) and now (RE2).

    .venv/bin/python scripts/mask_timing.py [--sizes 2000,8000,60000] [--timeout 60]

Prints a Markdown table (docs/security.md, "Masking personal data"): for each hostile shape, the CPU time of
`mask` at each size with the old and the current bot/privacy.py, and the ratio of the worst 60,000-character time
to a normal question's. The old module is read with `git show d548d3c:bot/privacy.py` and loaded as a temporary
module; each old measurement runs in a child process that is stopped after --timeout seconds (shown as "> N s").
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "d548d3c"
NORMAL = "cho tôi hỏi làm lại căn cước ở phường 5 quận 3 cần giấy tờ gì, sđt tôi 0912 345 678"


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


SHAPES: dict[str, Callable[[int], str]] = {
    "`'1' + ' ' * n + 'x'` (issue 15)": lambda n: "1" + " " * (n - 2) + "x",
    "digits and spaces `1 1 1 …`": _repeat("1 "),
    "slash numbers and words `1/2 ab …`": _repeat("1/2 ab "),
    "slashes `1/1/1/…`": _repeat("1/"),
    "dots `1.1.1.…`": _repeat("1."),
    "at signs and dots `a.b@c.…`": _repeat("a.b@c."),
    "house numbers and names `15 Lê Lợi …`": _repeat("15 Lê Lợi "),
    "street words `12 đường …`": _repeat("12 đường "),
    "digit words `không không …`": _repeat("không "),
    "mixed scripts and emoji": _repeat("Ñ1/ạ@😀.\u0301"),
}


def _load(version: str) -> Callable[[str], str]:
    if version == "new":
        sys.path.insert(0, str(ROOT))
        from bot.privacy import mask

        return mask
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:bot/privacy.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "privacy_d548d3c.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("privacy_d548d3c", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.mask


def _cpu_seconds(mask: Callable[[str], str], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        mask(text)
        best = min(best, time.process_time() - start)
    return best


def _measure(version: str, shape: str, n: int, timeout: float) -> float | None:
    """CPU seconds in a child process (None when it did not finish within ``timeout`` seconds)."""
    try:
        done = subprocess.run([sys.executable, __file__, "--one", version, shape, str(n)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.strip())


def _show(seconds: float | None, timeout: float) -> str:
    if seconds is None:
        return f"> {timeout:.0f} s"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,8000,60000")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--one", nargs=3, metavar=("VERSION", "SHAPE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        version, shape, n = args.one
        text = NORMAL if shape == "normal" else SHAPES[shape](int(n))
        print(_cpu_seconds(_load(version), text, repeat=200 if shape == "normal" else 3))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    normal = {version: _measure(version, "normal", 0, args.timeout) for version in ("old", "new")}
    print(f"A normal question ({len(NORMAL)} characters): before {_show(normal['old'], args.timeout)}, "
          f"now {_show(normal['new'], args.timeout)}.\n")
    header = " | ".join([f"before, {n:,}" for n in sizes] + [f"now, {n:,}" for n in sizes])
    print(f"| hostile shape | {header} |")
    print("|---" * (1 + 2 * len(sizes)) + "|")
    worst = {"old": 0.0, "new": 0.0}
    for shape in SHAPES:
        cells = []
        for version in ("old", "new"):
            stopped = False
            for n in sizes:
                seconds = None if stopped else _measure(version, shape, n, args.timeout)
                stopped = seconds is None  # a larger text takes longer still
                cells.append(_show(seconds, args.timeout))
                if n == sizes[-1]:
                    worst[version] = max(worst[version], args.timeout if seconds is None else seconds)
        print(f"| {shape} | " + " | ".join(cells) + " |")
    largest = f"{sizes[-1]:,}"
    for version, label in (("old", "before"), ("new", "now")):
        bound = ">" if version == "old" and worst["old"] >= args.timeout else ""
        print(f"\nWorst {largest}-character text {label}: {bound}{_show(worst[version], args.timeout)}, "
              f"{bound}{worst[version] / normal[version]:,.0f} times a normal question.")  # type: ignore[operator]


if __name__ == "__main__":
    main()
