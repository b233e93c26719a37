"""The answer about one procedure as fields, for portals that show papers, fee, time and place themselves.

The ``answer`` field of the JSON contract (README, "answer"): every field comes from the record as parsed —
``null`` where the record has none, never a default — plus the place the citizen named and what it is today.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.answer.aspects import Aspect
from bot.answer.places import LEVEL_CODES, district_era_note, district_era_wording
from bot.knowledge.models import Procedure
from bot.places import Place


def _or_none(value: str) -> str | None:
    value = " ".join((value or "").split())
    return value or None


def _per_channel(proc: Procedure, attr: str) -> list[dict[str, Any]] | None:
    values = [{"channel": c.kind, "label": c.label or None, "value": _or_none(getattr(c, attr))}
              for c in proc.channels]  # fmt: skip
    values = [v for v in values if v["value"]]
    return values or None


def _online(proc: Procedure) -> bool | None:
    """True when the record lists an online channel, False when it lists channels but none online, None when it
    lists none."""
    if not proc.channels:
        return None
    return any(c.kind == "online" for c in proc.channels)


def _where(proc: Procedure, place: Place | None) -> dict[str, Any] | None:
    if not (proc.levels or proc.agency or proc.receiving_address or proc.competent_authority):
        return None
    wording = district_era_wording(proc)
    return {
        "levels": [LEVEL_CODES[lv] for lv in proc.levels],
        "agency": _or_none(proc.agency),
        "competent_authority": _or_none(proc.competent_authority),
        "receiving_address": _or_none(proc.receiving_address),
        # the record still names a district-level body or level (gone since 1 July 2025): its words, and what the
        # reply says about it
        "district_wording": wording,
        "note": district_era_note(proc, place) if wording else None,
    }


def structured_answer(proc: Procedure, aspects: Sequence[Aspect], place: Place | None = None) -> dict[str, Any]:
    """The ``answer`` object of the contract for one procedure (see the README's contract section)."""
    fields: dict[str, Any] = {
        "documents": [{"name": d.name, "copies": _or_none(d.copies), "form": _or_none(d.form),
                       "group": _or_none(d.group)} for d in proc.documents] or None,  # fmt: skip
        "fee": _per_channel(proc, "fee"),
        "time": _per_channel(proc, "processing_time"),
        "where": _where(proc, place),
        "steps": list(proc.steps) or None,
        "conditions": _or_none(proc.conditions),
        "legal_basis": [{"number": b.number, "title": _or_none(b.title)} for b in proc.legal_basis] or None,
        "online": _online(proc),
    }
    return {
        "procedure": proc.code,
        "title": proc.title,
        "url": proc.url,
        "aspect": aspects[0] if aspects else "general",
        "aspects": list(aspects) or ["general"],
        "fields": fields,
        "place": _place(place),
    }


def _place(place: Place | None) -> dict[str, Any] | None:
    if place is None:
        return None
    return {
        "named": place.named,
        "now": place.now,
        "written": place.written,
        "level": place.level,
        "status": place.status,
        "province_now": place.province_now,
        "options": list(place.options),
        "partial": place.partial,
    }
