"""A reply written for the screen, rewritten for the ear: no links or markup, numbers and fees said in words, short.

    say_number(50000)            -> "năm mươi nghìn"
    speakable("Lệ phí: 50.000 đồng/lần. Nguồn: … — https://…")  -> "Lệ phí: năm mươi nghìn đồng mỗi lần."

An answer is cut at a sentence boundary to about 30 seconds of speech (``MAX_WORDS`` syllables at espeak-ng's
rate); the caller is told the rest is available ("bấm sao để nghe lại", the portal, or a text channel).
"""

from __future__ import annotations

import re

MAX_WORDS = 75  # Vietnamese is one syllable a word; espeak-ng at -s 165 says about 2.7 a second -> ~28 s
DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
UNITS = ["", "nghìn", "triệu", "tỷ"]


def _three(n: int, full: bool) -> str:
    """0..999; ``full`` when a higher group precedes it ("một nghìn không trăm linh năm")."""
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if ones:
            words += (["linh"] if hundreds or full else []) + [DIGITS[ones]]
        return " ".join(words)
    if tens == 1:
        words.append("mười")
    else:
        words += [DIGITS[tens], "mươi"]
    if ones == 1:
        words.append("mốt" if tens > 1 else "một")
    elif ones == 4 and tens > 1:
        words.append("tư")
    elif ones == 5:
        words.append("lăm")
    elif ones:
        words.append(DIGITS[ones])
    return " ".join(words)


def say_number(n: int) -> str:
    if n == 0:
        return "không"
    if n >= 10**12:
        return " ".join(DIGITS[int(d)] for d in str(n))
    groups = []
    while n:
        n, part = divmod(n, 1000)
        groups.append(part)
    words = []
    for i in range(len(groups) - 1, -1, -1):
        part = groups[i]
        if part == 0:
            continue
        higher = i < len(groups) - 1
        words.append(_three(part, full=higher))
        if UNITS[i]:
            words.append(UNITS[i])
    return " ".join(words)


_URL = re.compile(r"https?://\S+|www\.\S+")
_SOURCE_LINE = re.compile(r"\b(Nguồn|Xem thêm)\s*:.*$", re.MULTILINE | re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?(?![\w])")
_CODE = re.compile(r"\b(\d)\.(\d{6})\b")  # a national procedure code, e.g. 1.001193
_DATE = re.compile(r"\b(?:ngày\s+)?(\d{1,2})/(\d{1,2})/(\d{4})\b")
_LONG_ASIDE = re.compile(r"(?<!\s)\s*\((?:[^()]*\([^()]*\))*[^()]*\)")  # (?<!\s): linear search
_MONEY_SUFFIX = [(re.compile(r"(\d)\s*(?:đ|vnđ|VNĐ|VND)\b"), r"\1 đồng"), (re.compile(r"(\d)\s*k\b"), r"\1 nghìn")]
_SYMBOLS = [("%", " phần trăm"), ("/lần", " mỗi lần"), ("/ lần", " mỗi lần"), ("/bản", " mỗi bản"),
            ("/trang", " mỗi trang"), ("/", " trên "), ("&", " và "), ("+", " cộng "), ("–", ", "), ("—", ", "),
            ("…", "."), ("*", " "), ("#", " "), ("•", ", "), ("_", " ")]


def _number_words(match: re.Match) -> str:
    whole = int(match.group(1).replace(".", ""))
    words = say_number(whole)
    if match.group(2):
        words += " phẩy " + " ".join(DIGITS[int(d)] for d in match.group(2))
    return words


def speakable(text: str, max_words: int = MAX_WORDS) -> str:
    text = _SOURCE_LINE.sub("", text)
    text = _URL.sub("", text)
    text = re.sub(r"\s*\(mã \d\.\d{6}\)", "", text)  # the code is said once, at the end, by the caller of this
    text = re.sub(r"\[([^\]]*)\]", r"\1", text)
    text = _LONG_ASIDE.sub(lambda m: "" if len(m.group(0).split()) > 12 else m.group(0), text)
    # an aside the record cut off ("(… Kể từ ngày…") has no closing parenthesis: drop it to the end of the line
    text = re.sub(r"\s*\((?![^()\n]*\))[^\n]*", lambda m: "" if len(m.group(0).split()) > 12 else m.group(0), text)
    text = re.sub(r"\(\s*[-+•]\s*", "(", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"Việt Nam [Đđ]ồng|VNĐ|VND|vnđ", "đồng", text)
    # "70,000 đồng": a comma between groups of three digits before a currency is a thousands separator here
    text = re.sub(r"\b(\d{1,3}(?:,\d{3})+)(?=\s*đồng)", lambda m: m.group(1).replace(",", "."), text)
    text = re.sub(r"(?<=[:;] )(\d)\. ", r"số \1: ", text)  # inline numbered options: "2. Thủ tục…"
    text = _CODE.sub(lambda m: f"mã {DIGITS[int(m.group(1))]} chấm " + " ".join(DIGITS[int(d)] for d in m.group(2)),
                     text)
    text = _DATE.sub(lambda m: f"ngày {say_number(int(m.group(1)))} tháng {say_number(int(m.group(2)))} năm "
                     f"{say_number(int(m.group(3)))}", text)
    for pattern, repl in _MONEY_SUFFIX:
        text = pattern.sub(repl, text)
    text = _NUMBER.sub(_number_words, text)
    for symbol, words in _SYMBOLS:
        text = text.replace(symbol, words)
    # list bullets and line breaks become sentence pauses
    lines = [re.sub(r"^\s*(?:[-+•]|\d+[.)]|[a-zđ][.)])\s+", "", line).strip() for line in text.splitlines()]
    sentences = []
    for line in lines:
        if line:
            sentences.append(line if line[-1] in ".?!:;," else line + ".")
    text = re.sub(r"\s+", " ", " ".join(sentences)).strip()
    text = re.sub(r"\s+([.,;:?!])", r"\1", text)
    text = re.sub(r"([.?!;:,])[.,]+", r"\1", text)
    return shorten(text, max_words)


def shorten(text: str, max_words: int = MAX_WORDS) -> str:
    """Whole sentences up to ``max_words`` words (at least the first sentence, cut at a comma if it is too long)."""
    sentences = re.split(r"(?<=[.?!])\s+", text)
    kept: list[str] = []
    count = 0
    for sentence in sentences:
        words = len(sentence.split())
        if count + words > max_words:
            if not kept:
                cut = " ".join(sentence.split()[:max_words])
                kept.append(cut.rsplit(",", 1)[0].rstrip(",;:") + ".")
            break
        kept.append(sentence)
        count += words
    return " ".join(kept)


def sentences(text: str) -> list[str]:
    """Pieces to synthesise one after the other (the first one plays while the rest are being made)."""
    parts = [p.strip() for p in re.split(r"(?<=[.?!;:])\s+", text) if p.strip()]
    merged: list[str] = []
    for part in parts:  # very short pieces join the previous one: fewer gaps in the voice
        if merged and len(merged[-1].split()) < 4:
            merged[-1] += " " + part
        else:
            merged.append(part)
    return merged
