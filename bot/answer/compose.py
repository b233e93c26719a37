"""Short Vietnamese answers composed only from a record's fields, always naming the source.

Nothing here knows a fact of its own: when the record lacks a field, the answer says the record does not
give it instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.answer.aspects import Aspect
from bot.answer.places import district_era_note, levels_text, place_for_levels, place_note, short_date
from bot.knowledge.models import PlanDocument, PlanPassage, Procedure
from bot.places import Place
from bot.text.vietnamese import lexical_tokens

MAX_DOCUMENTS = 8
MAX_STEPS = 6
MAX_LEGAL = 6
MAX_FIELD_CHARS = 450

_CHANNEL_NAMES = {"in_person": "Nộp trực tiếp", "online": "Nộp trực tuyến", "post": "Qua bưu chính", "other": "Khác"}


def _clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def procedure_header(proc: Procedure) -> str:
    return f"Thủ tục: {proc.title} (mã {proc.code})."


def procedure_source(proc: Procedure) -> str:
    link = proc.url or "Cổng Dịch vụ công quốc gia (tra theo mã thủ tục)"
    return f"Nguồn: {proc.title}, mã {proc.code} — {link}"


def _documents(proc: Procedure) -> str:
    if not proc.documents:
        return "Hồ sơ thủ tục không liệt kê thành phần giấy tờ; vui lòng xem chi tiết tại đường dẫn bên dưới."
    lines = ["Giấy tờ cần chuẩn bị:"]
    group = None
    for i, doc in enumerate(proc.documents[:MAX_DOCUMENTS], 1):
        if doc.group and doc.group != group:
            group = doc.group
            lines.append(f"[{_clip(doc.group, 120)}]")
        copies = doc.copies if re.search(r"[1-9]", doc.copies) else ""  # "0 bản chính" marks a note, not a paper
        extra = ", ".join(x for x in (copies, f"mẫu {doc.form}" if doc.form else "") if x)
        lines.append(f"{i}. {_clip(doc.name, 200)}" + (f" ({extra})" if extra else ""))
    rest = len(proc.documents) - MAX_DOCUMENTS
    if rest > 0:
        lines.append(f"… và {rest} giấy tờ khác (xem đầy đủ tại đường dẫn bên dưới).")
    return "\n".join(lines)


def _channel_values(proc: Procedure, attr: str, missing: str, title: str) -> str:
    if not proc.channels:
        return f"Hồ sơ thủ tục không ghi {missing}."
    values = [(c, _with_unit(getattr(c, attr).strip())) for c in proc.channels]
    if not any(v for _, v in values):
        return f"Hồ sơ thủ tục không ghi {missing}."
    distinct = {v for _, v in values}
    if len(distinct) == 1:
        return f"{title}: {_clip(values[0][1], 300)} (áp dụng cho mọi cách nộp)."
    lines = [f"{title}:"]
    for channel, value in values:
        lines.append(f"- {channel.label or _CHANNEL_NAMES[channel.kind]}: {_clip(value, 250) or f'không ghi {missing}'}")
    return "\n".join(lines)


def _with_unit(value: str) -> str:
    # Some national records give a processing time as a bare number; say so rather than guess the unit.
    return f"{value} (hồ sơ thủ tục không ghi đơn vị)" if value.isdigit() else value


def _where(proc: Procedure, place: Place | None = None, announced: bool = False) -> str:
    """The level that handles the procedure now (the record's "Cấp thực hiện"), its agency and receiving office
    as the record writes them, what to do when the record still names a district-level body, and — when the
    citizen gave an address not already explained in this reply — its commune or province today."""
    parts = []
    if proc.levels:
        parts.append(f"Cấp thực hiện: {levels_text(proc)}.")
    if proc.agency:
        parts.append(f"Cơ quan thực hiện: {_clip(proc.agency, 300)}.")
    if proc.receiving_address:
        parts.append(f"Nơi tiếp nhận hồ sơ: {_clip(proc.receiving_address, 300)}.")
    if not parts:
        return "Hồ sơ thủ tục không ghi cơ quan tiếp nhận."
    note = district_era_note(proc, place)
    if note:
        parts.append(note)
    local = None if announced else place_for_levels(proc, place)
    if local:
        parts.append(local)
    return "\n".join(parts)


def _steps(proc: Procedure) -> str:
    if not proc.steps:
        return "Hồ sơ thủ tục không mô tả trình tự thực hiện."
    lines = ["Các bước thực hiện:"]
    for step in proc.steps[:MAX_STEPS]:
        lines.append(f"- {_clip(step, 220)}")
    if len(proc.steps) > MAX_STEPS:
        lines.append(f"… còn {len(proc.steps) - MAX_STEPS} bước nữa (xem tại đường dẫn bên dưới).")
    return "\n".join(lines)


def _conditions(proc: Procedure) -> str:
    if not proc.conditions:
        return "Hồ sơ thủ tục không nêu yêu cầu, điều kiện riêng."
    return "Yêu cầu, điều kiện: " + _clip(proc.conditions)


def _legal(proc: Procedure) -> str:
    if not proc.legal_basis:
        return "Hồ sơ thủ tục không liệt kê căn cứ pháp lý."
    lines = ["Căn cứ pháp lý:"]
    for basis in proc.legal_basis[:MAX_LEGAL]:
        lines.append(f"- {basis.number}: {_clip(basis.title, 160)}" if basis.title else f"- {basis.number}")
    return "\n".join(lines)


def _online(proc: Procedure) -> str:
    kinds = [c.kind for c in proc.channels]
    if "online" in kinds:
        online = next(c for c in proc.channels if c.kind == "online")
        detail = f" Thời hạn: {online.processing_time}." if online.processing_time else ""
        return "Có, thủ tục này nộp trực tuyến được (qua Cổng Dịch vụ công)." + detail
    if not kinds:
        return "Hồ sơ thủ tục không ghi cách thức nộp."
    names = ", ".join(_CHANNEL_NAMES[k].lower() for k in dict.fromkeys(kinds))
    return f"Hồ sơ thủ tục không ghi cách nộp trực tuyến; cách nộp được ghi: {names}."


def _general(proc: Procedure) -> str:
    parts = []
    if proc.levels:
        parts.append(f"Cấp thực hiện: {levels_text(proc)}.")
    if proc.agency:
        parts.append(f"Cơ quan thực hiện: {_clip(proc.agency, 200)}.")
    if proc.channels:
        first = proc.channels[0]
        bits = [b for b in (first.processing_time, first.fee) if b]
        if bits:
            parts.append(f"{first.label or _CHANNEL_NAMES[first.kind]}: " + "; ".join(_clip(b, 150) for b in bits) + ".")
    if proc.documents:
        parts.append(f"Hồ sơ gồm {len(proc.documents)} loại giấy tờ.")
    parts.append("Bạn có thể hỏi thêm về giấy tờ, lệ phí, thời gian, nơi nộp hoặc các bước.")
    return "\n".join(parts)


_ASPECT_BODY = {
    "documents": _documents,
    "fee": lambda p: _channel_values(p, "fee", "phí, lệ phí", "Phí, lệ phí"),
    "time": lambda p: _channel_values(p, "processing_time", "thời hạn giải quyết", "Thời hạn giải quyết"),
    "where": _where,
    "steps": _steps,
    "conditions": _conditions,
    "legal_basis": _legal,
    "online": _online,
    "general": _general,
}


def compose_procedure(proc: Procedure, aspects: Sequence[Aspect], alternatives: Sequence[Procedure] = (),
                      place: Place | None = None, announce: bool = False) -> str:  # fmt: skip
    """The answer about one procedure: the asked aspects from its fields, near-identical variants, and — when the
    citizen named a place in this message (``announce``) — once, what that place is today."""
    parts = [procedure_header(proc)]
    parts += [_where(proc, place, announce) if a == "where" else _ASPECT_BODY[a](proc) for a in aspects]
    if alternatives:
        alt = "; ".join(f"{i}. {p.title} (mã {p.code})" for i, p in enumerate(alternatives, 2))
        parts.append(f"Thủ tục gần giống, nếu bạn cần: {alt}. Trả lời số thứ tự để chọn.")
    note = place_note(place) if place is not None and announce else ""
    if note:
        parts.append(note)
    parts.append(procedure_source(proc))
    return "\n".join(parts)


def format_date(iso: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", iso or "")
    return f"{match.group(3)}/{match.group(2)}/{match.group(1)}" if match else ""


def plan_citation(doc: PlanDocument) -> str:
    bits = [doc.title]
    if doc.number:
        bits.append(f"số {doc.number}")
    if doc.date:
        bits.append(f"ngày {format_date(doc.date)}")
    if doc.issuer:
        bits.append(doc.issuer)
    return ", ".join(bits)


def best_excerpt(text: str, question: str, limit: int = 600) -> str:
    """The part of a passage that shares most words with the question, kept whole when it is short."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    wanted = set(lexical_tokens(question))
    numbers = {t for t in wanted if any(ch.isdigit() for ch in t)}
    sentences = re.split(r"(?<=[.;:!?])\s+", text)
    best_i, best_score = 0, -1.0
    for i, sentence in enumerate(sentences):
        tokens = set(lexical_tokens(sentence))
        # a number the citizen quotes ("tổng đài 1022") pins the sentence better than words an OCR may have damaged
        score = len(wanted & tokens) + 3 * len(numbers & tokens)
        if score > best_score:
            best_i, best_score = i, score
    start = best_i
    excerpt = sentences[start]
    # grow forwards, then backwards, while it fits
    end = start + 1
    while end < len(sentences) and len(excerpt) + len(sentences[end]) + 1 <= limit:
        excerpt += " " + sentences[end]
        end += 1
    while start > 0 and len(excerpt) + len(sentences[start - 1]) + 1 <= limit:
        start -= 1
        excerpt = sentences[start] + " " + excerpt
    return _clip(excerpt, limit)


def successor_note(doc: PlanDocument) -> str:
    """The plan's province as it is today (knowledge/plans/documents.yml: ``successor``), or "" when unchanged."""
    if not doc.successor:
        return ""
    since = f" từ ngày {short_date(doc.successor_since)}" if doc.successor_since else ""
    return (f"Lưu ý: tỉnh {doc.province} là một phần của {doc.successor}{since}; đây là văn bản của tỉnh trước khi "
            "sắp xếp đơn vị hành chính, do cơ quan của tỉnh khi đó ban hành.")


def compose_plan(passage: PlanPassage, doc: PlanDocument, question: str) -> str:
    lines = [f"Theo {plan_citation(doc)}:"]
    if passage.heading:
        lines.append(f"[{_clip(passage.heading, 160)}]")
    lines.append(best_excerpt(passage.text, question))
    if doc.ocr_damaged:
        lines.append("(Văn bản gốc là bản quét chất lượng thấp; trích dẫn có thể sai dấu.)")
    note = successor_note(doc)
    if note:
        lines.append(note)
    lines.append(f"Nguồn: {plan_citation(doc)}.")
    return "\n".join(lines)

