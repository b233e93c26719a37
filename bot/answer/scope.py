"""Questions the assistant must not answer from the knowledge base: prompt injection, off-topic requests
(weather, sport, medical or financial advice, jokes) and small talk (greetings, thanks, goodbye).

Topic rules run on diacritic-folded text. Whatever passes here still has to find a confident match in
the knowledge base (see `bot.engine`), so these lists only need to catch what shares words with the domain
or must be refused outright, not every possible off-topic question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.text.vietnamese import fold

Category = Literal["injection", "weather", "sport", "medical", "financial", "joke", "entertainment", "commercial",
                   "writing", "general_knowledge", "greet", "thanks", "goodbye", "bot_challenge"]

_DOMAIN_GUARD = re.compile(
    r"\b(bao hiem|bhyt|bhxh|the bhyt|ho so|thu tuc|dang ky|cap (lai|doi|moi)|giay phep|le phi|giay chung nhan)\b"
)

_TOPICS: dict[Category, str] = {
    "injection": r"\b(bo qua|phot lo|quen (het|di|moi)|vo hieu)\b.{0,40}\b(huong dan|chi dan|lenh|quy tac|chi thi|rang buoc)"
    r"|ignore (all|any|the|previous|prior|above|your)|disregard (all|previous|the)|system prompt|prompt he thong"
    r"|jailbreak|developer mode|\bdan mode\b|dong vai|gia vo (la|lam)|pretend (to be|you)|act as|you are now"
    r"|tiet lo (cau lenh|prompt|huong dan)|in ra (cau lenh|prompt|huong dan)|reveal (your|the) (prompt|instructions)"
    r"|<\s*/?\s*(script|system|im_start)|\{\{.*\}\}|;\s*drop\s+table|union\s+select",
    "weather": r"\b(thoi tiet|du bao|mua bao|troi (mua|nang|lanh|nong)|nhiet do|co mua|bao so|ap thap|weather)\b",
    "sport": r"\b(bong da|world cup|tran dau|ty so|ti so|cau thu|v-?league|ngoai hang anh|euro 20\d\d|messi|ronaldo"
    r"|doi tuyen|sea games|bong chuyen|tennis|football|ket qua tran|tran (dau )?(hom|toi|dem|chieu) (qua|nay|mai)"
    r"|tuyen viet nam|lich thi dau|bang xep hang|huan luyen vien|hlv|aff cup|champions league|cup c1"
    r"|man city|man utd|manchester|arsenal|chelsea|liverpool|real madrid|barcelona|barca"
    r"|(da|dau|gap) voi (thai lan|indonesia|malaysia|singapore|philippines|trung quoc|han quoc|nhat ban|uae))\b",
    "medical": r"\b(uong thuoc|thuoc (gi|nao|j)|trieu chung|bi (sot|ho|cam|dau bung|dau dau|tieu chay|di ung)"
    r"|(?<!kham )(?<!kham, )(?<!kham benh, )chua (benh|dau|ho|sot)|benh (gi|j)|co (nguy hiem|lay) khong|tri (benh|mun|ho)|bac si khuyen"
    r"|mat ngu|kho ngu|ngu khong ngon|(?<!lan )dau (da day|lung|rang|hong|vai gay)|dau mat do|huyet ap|tieu duong|tang can|an kieng)\b",
    "financial": r"\b(co phieu|chung khoan|bitcoin|tien ao|crypto|dau tu (vao )?(gi|j|dau|nao)|nen mua (vang|dat|nha)"
    r"|gia vang|ty gia|lai suat (nao|o dau|cao)|nen gui tiet kiem|forex|ma (co phieu|chung khoan)"
    r"|vay tien|vay (online|tin chap|qua app)|app vay|lai (suat )?thap nhat|kiem tien|giau nhanh|lam giau"
    r"|gia (xang|xang dau|dau an|bac|usd|do la|dien thoai|iphone|ca phe|lua|heo hoi)( hom nay| bao nhieu)?)\b",
    "joke": r"\b(ke (mot |1 )?(chuyen|cau chuyen)|chuyen cuoi|truyen cuoi|noi dua|dua (di|chut)|lam tho|hat (mot|1|di)"
    r"|(cau|chuyen|tro) (dua|vui|cuoi)|dua vui|hai huoc|joke|cho (toi|minh|em) cuoi)\b",
    # Customer service of private companies (telecoms, banks, shops, apps, schools): not a public procedure,
    # even when it says "đăng ký" or "làm lại".
    "commercial": r"\b(sim( dien thoai)?|goi cuoc|nha mang|viettel|vinaphone|mobifone|the atm|ngan hang nao"
    r"|bao hiem nhan tho|shopee|lazada|tiki|grab|youtube|facebook|tiktok|instagram|momo|mat khau|check-?in"
    r"|ve (tau|may bay|xe khach)|dat ve|(?<!mo )quan (ca phe|an|nhau)|(?<!mo )khach san|hoc them|trung tam (tieng anh|ngoai ngu)"
    r"|ielts|toeic|kenh youtube|tai khoan (game|mang xa hoi)"
    r"|sua (may lanh|tu lanh|may giat|dieu hoa|dien thoai|laptop|may tinh|tivi)|may lanh|tu lanh|may giat|dieu hoa"
    r"|bao hiem (xe may|o to|oto|suc khoe|du lich)|mua bao hiem xe|nen mua (xe|dien thoai|laptop|may tinh|tivi)( gi| nao)?"
    r"|mua xe gi)\b",
    "writing": r"\b(viet (giup|ho|cho|mot|1)\b.{0,20}\b(bai|doan|thu|email|van|tho|cau)|bai van|ta con|lam tho|lam bai tap"
    r"|dich (giup|ho|cau|doan|sang)|sang tieng (anh|viet|nhat|trung|han|phap)|lap trinh|python|javascript"
    r"|hello world|giai (bai|phuong trinh)|bai toan|bai tap (ve nha|toan|tieng)|chon nganh|hoc nganh (gi|nao))\b",
    "general_knowledge": r"\b(thu do (cua|nuoc)|phat minh|(nui|song|ho|bien) (nao )?(cao|dai|lon|sau) nhat|la ai vay"
    r"|ai la nguoi|hom nay (la )?thu may|may gio roi|ngay bao nhieu am|ban bao nhieu tuoi|nguoi yeu chua|dat ten con"
    r"|hop tuoi|tu vi|phong thuy|bao nhieu tinh thanh)\b",
    "entertainment": r"\b(phim (gi|nao|hay)|bai hat|ca si|nau (mon|an|com)|cong thuc nau|mon an|du lich (o |di )?dau"
    r"|choi game|game (gi|nao)|xem phim|di choi (o )?dau|choi o dau|biet hat|hat (hay|duoc) khong)\b",
}
_SMALL_TALK: dict[Category, str] = {
    "greet": r"^(xin )?chao( ban| bot| ad| admin| em| anh| chi)?|^(hi|hello|alo|a lo|helo)\b",
    "thanks": r"\b(cam on|cam ow|thank|thanks|tks|thanks you)\b",
    "goodbye": r"\b(tam biet|bye|goodbye|hen gap lai)\b",
    "bot_challenge": r"\b(ban la ai|ban la (nguoi|may|robot|bot)|co phai (la )?(nguoi|may|robot|bot)|ai dang tra loi)\b",
}
_TOPIC_RE = {k: re.compile(v) for k, v in _TOPICS.items()}
_GUARDED = {"medical", "financial", "weather", "sport", "joke", "entertainment", "general_knowledge"}
_SMALL_TALK_RE = {k: re.compile(v) for k, v in _SMALL_TALK.items()}


@dataclass(frozen=True)
class ScopeVerdict:
    category: Category
    small_talk: bool  # greet / thanks / goodbye / bot_challenge: answered politely, not a decline


def classify_scope(text: str) -> ScopeVerdict | None:
    """A verdict when the message is off-topic, an injection attempt or small talk; None when it may be a
    procedure or plan question."""
    folded = fold(text)
    if _TOPIC_RE["injection"].search(folded) or _TOPIC_RE["injection"].search(text.lower()):
        return ScopeVerdict("injection", small_talk=False)
    guarded = bool(_DOMAIN_GUARD.search(folded))
    for category, regex in _TOPIC_RE.items():
        if category == "injection" or not regex.search(folded):
            continue
        # "khám chữa bệnh bằng thẻ BHYT" is a procedure question; the guard only protects the topics whose
        # words procedures share (health insurance, fees, registrations).
        if guarded and category in _GUARDED:
            continue
        return ScopeVerdict(category, small_talk=False)
    words = folded.split()
    # Small talk only when the message is short: "cảm ơn, còn lệ phí thì sao" is a question.
    if len(words) <= 6:
        for category, regex in _SMALL_TALK_RE.items():
            if regex.search(folded):
                return ScopeVerdict(category, small_talk=True)
    return None
