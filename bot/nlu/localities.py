"""Localities in a message, named as today's administrative units: entity ``locality``.

The reading itself is :mod:`bot.places` (old and new units, the 1 July 2025 mapping, and what it cannot tell);
this module turns it into the NLU layer's entity. The value is today's unit when the data gives exactly one
("Phường Sài Gòn, Thành phố Hồ Chí Minh"), or today's province when the citizen named a former district or a
commune the data splits over several new ones ("huyện Tân Uyên, Bình Dương" → "Thành phố Hồ Chí Minh"); a name
that fits several units (the same commune name in two provinces) gives no entity: the engine asks which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.places import find_places

__all__ = ["Locality", "find_localities"]


@dataclass(frozen=True)
class Locality:
    """A locality found in a message: its span and today's name."""

    start: int
    end: int
    value: str  # today's unit: "Phường Sài Gòn, Thành phố Hồ Chí Minh"
    old: str = ""  # the old unit it was read as, "" when written in today's units

    def entity(self) -> dict[str, Any]:
        return {"entity": "locality", "value": self.value, "start": self.start, "end": self.end}


def find_localities(text: str) -> list[Locality]:
    """Localities in ``text``, each named as today's unit (see the module docstring).

    >>> [loc.value for loc in find_localities("tôi ở phường Bến Nghé, quận 1, TP HCM")]
    ['Phường Sài Gòn, Thành phố Hồ Chí Minh']
    """
    out = []
    for mention in find_places(text):
        place = mention.place
        value = place.now or place.province_now
        if value:
            out.append(Locality(mention.start, mention.end, value, place.named if place.era == "old" else ""))
    return out
