"""What a question asks about a procedure: documents, fee, time, where, steps, conditions, legal basis, online.

Patterns run on diacritic-folded text, so "lệ phí bao nhiêu" and "le phi bao nhieu" are the same question.
"""

from __future__ import annotations

import re
from typing import Literal

from bot.text.vietnamese import fold

Aspect = Literal["documents", "fee", "time", "where", "steps", "conditions", "legal_basis", "online", "general"]

ASPECTS: tuple[Aspect, ...] = ("documents", "fee", "time", "where", "steps", "conditions", "legal_basis", "online")

# "điện tử" asks for the online channel ("nộp điện tử", "làm qua điện tử"), except after the name of a thing that is
# itself electronic: there it is part of what the procedure is about ("khóa căn cước điện tử", "hóa đơn điện tử",
# "thị thực điện tử"), and removing it from the search would leave "căn cước" matching every identity-card record.
# The names are those record titles put before "điện tử" (titles saying "hồ sơ / thủ tục / giao dịch / phương thức
# điện tử" mean the online channel), plus the citizens' "cccd", "visa" and "hộ chiếu".
_ELECTRONIC_THINGS = (
    "can cuoc", "cccd", "cmnd", "dinh danh", "xac thuc", "hoa don", "tem", "chu ky", "chung tu", "bien lai",
    "thi thuc", "visa", "ho chieu", "vi", "thuong mai", "tro choi",
)
_ONLINE_DIEN_TU = "".join(rf"(?<!\b{re.escape(name)} )" for name in _ELECTRONIC_THINGS) + "dien tu"

_PATTERNS: dict[Aspect, str] = {
    "documents": r"giay to|ho so|can (co |mang |chuan bi |nop )?(nhung )?(gi|j)\b|mang (theo )?(nhung )?(gi|j)\b"
    r"|chuan bi (nhung )?(gi|j)|thanh phan|to khai|mau don|nhung gi|(can|mang) nhung|giay gi"
    r"|(can )?(chuan bi|mang theo) (nhung )?giay to( gi)?|gom (nhung )?(gi|j)",
    "fee": r"\b(le phi|phi|chi phi|(mat |het |ton )?bao nhieu tien|(het|ton) bao nhieu|ton tien|phi moi trang"
    r"|mat tien|tien (le )?phi|mien phi|bao nhieu (d|dong|k|nghin|ngan))\b|\bphi (gi|j|bao nhieu)",
    "time": r"\b((mat |het |ton )?bao lau( thi (co|nhan|lay)( duoc)?( ket qua)?)?|may ngay|bao nhieu ngay"
    r"|thoi gian( giai quyet| xu ly| tra ket qua)?|thoi han|mat may( ngay| hom| tuan| thang)?|lau (khong|ko|k)\b|bao gio (co|nhan|xong|lay)"
    r"|khi nao (co|nhan|xong|lay)|may hom|may tuan|bao nhieu lau|nhanh (khong|ko)|trong bao lau)",
    "where": r"\b(o dau|cho nao|noi nao|co quan nao|don vi nao|dia chi|di dau|den dau|tai dau|o cho nao|nop dau"
    r"|lam dau|ai (giai quyet|cap|lam)|dau (de )?(lam|nop))\b",
    "steps": r"\b(cac buoc|trinh tu|quy trinh|the nao|nhu the nao|ntn|ra sao|cach (lam|thuc|nao)|huong dan"
    r"|lam sao|bat dau tu dau|buoc nao|(cac )?buoc (thuc hien|lam))\b",
    "conditions": r"\b(dieu kien|ai (thi |moi )?duoc|yeu cau gi|doi tuong nao|co du dieu kien|tieu chuan)\b",
    "legal_basis": r"\b(can cu( phap ly)?|luat nao|nghi dinh|thong tu|van ban (nao|phap ly)|quy dinh (o|tai) dau|co so phap ly"
    r"|quy dinh nao|theo luat)\b",
    "online": r"\b(online|onl|truc tuyen|qua mang|tren mang|dich vu cong|dvc|vneid|internet|tu xa|qua buu dien"
    r"|buu chinh|nop mang|tren app|qua app|" + _ONLINE_DIEN_TU + r"|(den|toi) tan noi)\b",
}
_COMPILED = {aspect: re.compile(pattern) for aspect, pattern in _PATTERNS.items()}
# A yes/no question about the procedure ("có phải xin phép không?", "có được nhập hộ khẩu vào nhà thuê không?",
# "có cần đưa bé đến không?") is answered from who may do it and when: the conditions.
_YES_NO = re.compile(
    r"\b(co|thi co|co phai|co duoc|co can|co bat buoc|co the|duoc|phai)\b.{0,80}\b(khong|ko|k|hok|chua)\s*[?.!]*$"
    r"|\b(truong hop nao|khi nao thi phai|bat buoc (phai )?khong)\b"
)


def detect_aspects(text: str) -> list[Aspect]:
    """Aspects asked, in the order they appear in the question; ["general"] when none is recognisable."""
    folded = fold(text)
    found: list[tuple[int, Aspect]] = []
    for aspect, regex in _COMPILED.items():
        match = regex.search(folded)
        if match:
            found.append((match.start(), aspect))
    # "thủ tục như thế nào" asks for the steps only when nothing more specific was asked.
    if len(found) > 1:
        found = [f for f in found if f[1] != "steps"] or found
    if not found and _YES_NO.search(folded.strip()):
        return ["conditions"]
    return [aspect for _, aspect in sorted(found)] or ["general"]


def aspect_spans(text: str) -> list[tuple[int, int]]:
    """Character spans (in folded text) of every aspect phrase; used to tell a bare follow-up from a new question."""
    folded = fold(text)
    return [m.span() for regex in _COMPILED.values() for m in regex.finditer(folded)]


def blank_aspect_phrases(text: str) -> str:
    """``text`` with every aspect phrase replaced by spaces (same length, so positions still agree with the
    folded text; spans may overlap)."""
    chars = list(text)
    for start, end in aspect_spans(text):
        chars[start:end] = " " * (end - start)
    return "".join(chars)
