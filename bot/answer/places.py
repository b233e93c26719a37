"""What the assistant says about a place the citizen named, and about where a procedure is done now.

Every sentence states only what the mapping data (:mod:`bot.places`) or the procedure record says: an old unit
that is now exactly one unit is named; a unit now spread over several is listed (or counted) and the citizen is
asked; a name that fits several units, or that the data does not list, is said to be so. No office is ever named
that the record does not name.
"""

from __future__ import annotations

import re

from bot.knowledge.models import Procedure
from bot.places import MAX_OPTIONS, REORGANISED_ON, Place
from bot.text.vietnamese import fold

LEVEL_NAMES = {"xa": "cấp xã", "tinh": "cấp tỉnh", "bo": "cấp trung ương (bộ, ngành)", "khac": "cơ quan khác"}
# the record's levels as the JSON contract names them
LEVEL_CODES = {"xa": "commune", "tinh": "province", "bo": "central", "khac": "other"}

# A district-level body or level a record still names (the district level ended on 1 July 2025): "cấp huyện",
# "Công an huyện", "Bảo hiểm xã hội cấp huyện", "(thực hiện tại cấp huyện)", "Ban chỉ huy quân sự cấp huyện".
# "quận" is a district only when no word makes it "quản lý", "quân đội", "quân sự", … (folded they look alike).
_DISTRICT_ERA_RE = re.compile(
    r"\bcap huyen\b"
    r"|\b(?:ubnd|uy ban nhan dan|cong an|ban chi huy quan su|bao hiem xa hoi|toa an nhan dan)"
    r" (?:huyen|quan(?! (?:ly|doi|su|nhan|khu|chung|doan|y|tri)\b))\b"
)
_WHERE_FIELDS = ("title", "agency", "competent_authority", "receiving_address")


def short_date(iso: str) -> str:
    """An ISO date as Vietnamese official texts write it: "2025-07-01" → "01/7/2025"."""
    year, month, day = iso.split("-")
    return f"{day}/{int(month)}/{year}"


REORGANISED = short_date(REORGANISED_ON)  # "01/7/2025"


def _listing(units: tuple[str, ...]) -> str:
    return ", ".join(units)


def _province_of(named: str) -> str:
    """The last part of a unit's full name: its province ("…, Tỉnh Bình Dương" → "Tỉnh Bình Dương")."""
    return named.rsplit(", ", 1)[-1]


def place_note(place: Place) -> str:
    """One or two sentences: what the place named is since 1 July 2025, and what to tell when the data cannot
    decide. Empty for a place already written in today's units.

    >>> from bot.places import place_in
    >>> place_note(place_in("phường Bến Nghé, quận 1"))
    'Địa danh bạn nêu: Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh (trước ngày 01/7/2025) nay thuộc Phường Sài Gòn, Thành phố Hồ Chí Minh.'
    """
    since = f"trước ngày {REORGANISED}"
    if place.status == "current":
        return ""
    if place.status == "converted":
        return f"Địa danh bạn nêu: {place.named} ({since}) nay thuộc {place.now}."
    rest = ", và phần còn lại mà dữ liệu không ghi tên đơn vị mới" if place.partial else ""
    if place.status == "split":
        return (f"Địa danh bạn nêu: {place.named} ({since}) nay được chia về nhiều xã, phường của "
                f"{place.province_now}: {_listing(place.options)}{rest}. Dữ liệu đối chiếu không cho biết từng khu "
                "vực thuộc đơn vị nào; bạn ở xã, phường nào (tên mới) thì cho mình biết nhé.")  # fmt: skip
    if place.status == "several":
        count = "nhiều" if place.partial else str(len(place.options))
        listed = f": {_listing(place.options)}{rest}" if len(place.options) <= MAX_OPTIONS else ""
        return (f"Địa danh bạn nêu: từ ngày {REORGANISED} không còn cấp huyện; địa bàn {place.named} nay thuộc "
                f"{count} xã, phường của {place.province_now}{listed}. Bạn ở xã, phường nào (tên cũ hoặc mới) thì "
                "cho mình biết nhé.")  # fmt: skip
    if place.status == "unmapped":
        return (f"Địa danh bạn nêu: {place.named} ({since}) nay thuộc {place.province_now}; dữ liệu đối chiếu của "
                "mình không ghi xã, phường mới của đơn vị này.")  # fmt: skip
    if place.status == "ambiguous":
        listed = f": {'; '.join(place.options)}" if len(place.options) <= MAX_OPTIONS else ""
        return (f"Có {len(place.options)} nơi tên “{place.written}”{listed}. Bạn ở tỉnh, thành phố nào (hoặc "
                "huyện, quận cũ nào) thì cho mình biết nhé.")  # fmt: skip
    # unlisted: a district the data does not have
    catalogue = f"danh mục đơn vị hành chính ngay trước ngày {REORGANISED} mà mình dùng để đối chiếu"
    if place.province_now is None:
        return (f"Mình không tìm thấy {place.named} trong {catalogue}. Bạn cho mình biết xã, phường và tỉnh, thành "
                "phố của bạn nhé.")  # fmt: skip
    towns = f" (danh mục có {_listing(place.namesakes)})" if place.namesakes else ""
    province = _province_of(place.named)
    moved = f"; {province} nay thuộc {place.province_now}" if province != place.province_now else ""
    return (f"Địa danh bạn nêu: {catalogue} không có {place.named}{towns}. Từ ngày {REORGANISED} không còn cấp "
            f"huyện{moved}. Bạn cho mình biết xã, phường hoặc thị trấn cũ của bạn để mình đối chiếu nhé.")


def district_era_wording(proc: Procedure) -> str | None:
    """The part of the record's title, agency or receiving office that still names a district-level body or
    level ("Bảo hiểm xã hội cấp huyện"), or None.

    >>> from bot.knowledge.models import Procedure
    >>> district_era_wording(Procedure("1.010385", "Trình báo mất hộ chiếu phổ thông (thực hiện tại cấp huyện)",
    ...                                None, "national", agency="Công an huyện"))
    'thực hiện tại cấp huyện'
    """
    for name in _WHERE_FIELDS:
        for part in re.split(r"[,;()]", getattr(proc, name) or ""):
            if _DISTRICT_ERA_RE.search(fold(part)):
                return " ".join(part.split()).rstrip(".")
    return None


def levels_text(proc: Procedure) -> str:
    return ", ".join(LEVEL_NAMES[lv] for lv in proc.levels)


def district_era_note(proc: Procedure, place: Place | None) -> str | None:
    """What a "where" answer adds when the record still names a district-level body: the record's own level
    field (the portal's "Cấp thực hiện", updated for the two-level government) when it has one, and where to ask —
    the commune's one-stop service point and the portal — never a guessed office."""
    wording = district_era_wording(proc)
    if wording is None:
        return None
    commune = f" ({place.now})" if place is not None and place.resolved and place.level != "province" else ""
    level = (f" Theo trường “Cấp thực hiện” của chính hồ sơ này, thủ tục nay thực hiện ở {levels_text(proc)}."
             if proc.levels else "")  # fmt: skip
    return (f"Lưu ý: hồ sơ vẫn ghi “{wording}”, tức cấp huyện — cấp này không còn từ ngày {REORGANISED}, và hồ sơ "
            f"không ghi cơ quan nào tiếp nhận thay.{level} Bạn hỏi bộ phận một cửa (Trung tâm Phục vụ hành chính "
            f"công) của xã, phường nơi bạn ở{commune} hoặc xem thủ tục trên Cổng Dịch vụ công quốc gia theo mã "
            f"{proc.code}.")


def place_for_levels(proc: Procedure, place: Place | None) -> str | None:
    """Today's commune and province of the citizen's address, for the levels the record names (no office)."""
    if place is None:
        return None
    lines = []
    if "xa" in proc.levels and place.resolved and place.level != "province" and place.now:
        lines.append(f"Xã, phường hiện nay của địa chỉ bạn nêu: {place.now}.")
    elif "tinh" in proc.levels and place.province_now:
        lines.append(f"Tỉnh, thành phố hiện nay của địa chỉ bạn nêu: {place.province_now}.")
    return "\n".join(lines) or None
