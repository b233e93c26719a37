"""The keypad path: procedure groups → procedures → aspects, for callers who cannot or will not speak.

The groups are the procedures citizens ask about most (hộ tịch, cư trú và căn cước, giấy phép lái xe, đất đai,
kinh doanh, lý lịch tư pháp). Every entry is a real national procedure code; an entry whose procedure is not in
the running index (a ward that indexes a few domains, the tests' small index) is left out, and a group left empty
disappears, so the keys always match what is said. An operator edits this list to suit their province; keep at
most 8 groups and 5 procedures per group (key 9 and 0, * and # have fixed meanings).

Note on "bảo hiểm": the knowledge base's "Bảo hiểm" domain holds insurance-business procedures (licences for
insurers), not citizens' social or health insurance, so the menu offers the one citizen-facing insurance
procedure the data has (birth registration with a child's health-insurance card) inside "hộ tịch".
"""

from __future__ import annotations

from dataclasses import dataclass

# (spoken group name, [(code, spoken short name), ...]); codes checked against knowledge/procedures
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("hộ tịch", [
        ("1.001193", "đăng ký khai sinh"),
        ("1.000894", "đăng ký kết hôn"),
        ("1.000656", "đăng ký khai tử"),
        ("1.004873", "xác nhận tình trạng hôn nhân"),
        ("2.001023", "khai sinh và thẻ bảo hiểm y tế cho trẻ dưới sáu tuổi"),
    ]),
    ("cư trú và căn cước", [
        ("1.014061", "cấp thẻ căn cước từ đủ mười bốn tuổi"),
        ("1.014064", "cấp lại thẻ căn cước"),
        ("1.014063", "cấp đổi thẻ căn cước"),
        ("1.004222", "đăng ký thường trú"),
        ("1.004194", "đăng ký tạm trú"),
    ]),
    ("giấy phép lái xe", [
        ("3.000346", "cấp giấy phép lái xe"),
        ("3.000347", "đổi giấy phép lái xe"),
        ("3.000348", "cấp lại giấy phép lái xe"),
        ("3.000353", "cấp giấy phép lái xe quốc tế"),
    ]),
    ("đất đai", [
        ("1.012786", "cấp lại sổ đỏ bị mất"),
        ("1.012783", "cấp đổi sổ đỏ"),
        ("1.012784", "tách thửa hoặc hợp thửa đất"),
    ]),
    ("kinh doanh", [
        ("2.001610", "thành lập doanh nghiệp tư nhân"),
        ("2.001583", "thành lập công ty trách nhiệm hữu hạn một thành viên"),
        ("2.002029", "tạm ngừng kinh doanh"),
    ]),
    ("lý lịch tư pháp", [
        ("3.000333", "cấp phiếu lý lịch tư pháp"),
    ]),
]

# key -> (aspect, spoken name)
ASPECTS: list[tuple[str, str]] = [
    ("documents", "giấy tờ cần chuẩn bị"),
    ("fee", "lệ phí"),
    ("time", "thời gian giải quyết"),
    ("where", "nơi nộp hồ sơ"),
    ("steps", "các bước thực hiện"),
    ("online", "nộp trực tuyến"),
    ("conditions", "điều kiện"),
]


@dataclass
class Menu:
    groups: list[tuple[str, list[tuple[str, str]]]]

    @classmethod
    def for_index(cls, known: set[str] | dict) -> Menu:
        groups = []
        for name, procedures in GROUPS:
            present = [(code, label) for code, label in procedures if code in known][:5]
            if present:
                groups.append((name, present))
        return cls(groups[:8])

    def group_prompt(self) -> str:
        items = [f"bấm {i} cho {name}" for i, (name, _) in enumerate(self.groups, 1)]
        return "Để chọn theo nhóm thủ tục, " + ", ".join(items) + "."

    def procedures_prompt(self, group: int) -> str:
        name, procedures = self.groups[group]
        items = [f"bấm {i} cho {label}" for i, (_, label) in enumerate(procedures, 1)]
        return f"Nhóm {name}: " + ", ".join(items) + ". Bấm thăng để quay lại."

    @staticmethod
    def aspects_prompt(label: str) -> str:
        items = [f"bấm {i} để nghe {name}" for i, (_, name) in enumerate(ASPECTS, 1)]
        return f"Thủ tục {label}: " + ", ".join(items) + ". Bấm thăng để quay lại."

    def group(self, key: str) -> int | None:
        return int(key) - 1 if key.isdigit() and 1 <= int(key) <= len(self.groups) else None

    def procedure(self, group: int, key: str) -> tuple[str, str] | None:
        procedures = self.groups[group][1]
        return procedures[int(key) - 1] if key.isdigit() and 1 <= int(key) <= len(procedures) else None

    @staticmethod
    def aspect(key: str) -> tuple[str, str] | None:
        return ASPECTS[int(key) - 1] if key.isdigit() and 1 <= int(key) <= len(ASPECTS) else None
