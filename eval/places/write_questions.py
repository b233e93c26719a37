"""Writes eval/places/place_questions.jsonl (run from the repository root: `python eval/places/write_questions.py`).

The questions are written by hand below; what each must be answered with is looked up here in the sources alone —
the administrative mapping underthesea 9.5 ships (mapping.json, read directly, not through bot.places) and the
procedure records (the "Cấp thực hiện" levels) — never in the engine's output. See README.md beside this file."""
import json
from pathlib import Path

import underthesea.address as a

from bot.knowledge.procedures import load_procedures

D = json.loads((Path(a.__file__).parent / "data" / "mapping.json").read_text())
W = D["ward_mapping"]
PROCS = {p.code: p for p in load_procedures(Path("knowledge"))}
CODES = {"xa": "commune", "tinh": "province", "bo": "central", "khac": "other"}

def ward(prov, dist, ward):
    rs = [r for r in W if r["old_province"] == prov and r["old_district"] == dist and r["old_ward"] == ward]
    assert rs, (prov, dist, ward)
    new = [r["new_ward"] for r in rs]
    np_ = rs[0]["new_province"]
    if len(new) == 1 and new[0]:
        return {"status": "converted", "now": f"{new[0]}, {np_}", "province_now": np_}
    if not any(new):
        return {"status": "unmapped", "province_now": np_}
    return {"status": "split", "options": sorted(n for n in new if n), "province_now": np_}

def district(prov, dist):
    rs = [r for r in W if r["old_province"] == prov and r["old_district"] == dist]
    assert rs, (prov, dist)
    new = sorted({r["new_ward"] for r in rs if r["new_ward"]})
    np_ = rs[0]["new_province"]
    if len(new) == 1 and all(r["new_ward"] for r in rs):
        return {"status": "converted", "now": f"{new[0]}, {np_}", "province_now": np_}
    return {"status": "several", "options": new, "province_now": np_}

def province(old_name):
    key = next(k for k, v in D["old_province_names"].items() if v["name"] == old_name)
    new = D["province_names"][D["province_mapping"][key]]["name"]
    return {"status": "converted" if new != old_name else "current", "now": new, "province_now": new}

def new_ward(prov, name):
    assert any(r["new_province"] == prov and r["new_ward"] == name for r in W)
    return {"status": "current", "now": f"{name}, {prov}", "province_now": prov}

def where(code):
    p = PROCS[code]
    return {"procedure": [code], "levels": [CODES[lv] for lv in p.levels]}

BR, BD, HCM = "Tỉnh Bà Rịa - Vũng Tàu", "Tỉnh Bình Dương", "Thành phố Hồ Chí Minh"
rows = [
    # Bà Rịa - Vũng Tàu (old), now part of Ho Chi Minh City
    ("Tôi ở phường 10, thành phố Vũng Tàu, làm giấy khai sinh cho con ở đâu?", ward(BR, "Thành phố Vũng Tàu", "Phường 10"), where("1.001193"), "brvt"),
    ("o xa binh ba huyen chau duc thi dang ky ket hon o dau", ward(BR, "Huyện Châu Đức", "Xã Bình Ba"), where("1.000894"), "brvt"),
    ("Nhà em ở thị trấn Phước Bửu huyện Xuyên Mộc, giờ thuộc xã nào ạ?", ward(BR, "Huyện Xuyên Mộc", "Thị trấn Phước Bửu"), None, "brvt"),
    ("phường Long Toàn tp Bà Rịa giờ là phường gì", ward(BR, "Thành phố Bà Rịa", "Phường Long Toàn"), None, "brvt"),
    ("Huyện Châu Đức bây giờ gồm những xã nào?", district(BR, "Huyện Châu Đức"), None, "brvt"),
    ("Nhà tôi ở huyện Long Điền, tỉnh Bà Rịa - Vũng Tàu thì làm căn cước ở đâu?", {"status": "unlisted", "province_now": HCM}, None, "brvt"),
    ("huyện Côn Đảo bây giờ là gì", district(BR, "Huyện Côn Đảo"), None, "brvt"),
    ("Ở Vũng Tàu thì đăng ký thường trú ở đâu?", province(BR), where("1.004222"), "brvt"),
    ("xã Hòa Hiệp, huyện Xuyên Mộc sau sáp nhập thuộc đâu", ward(BR, "Huyện Xuyên Mộc", "Xã Hòa Hiệp"), None, "brvt"),
    ("phuong tan hoa thi xa phu my", ward(BR, "Thành phố Phú Mỹ", "Phường Tân Hòa"), None, "brvt"),
    ("thị trấn Long Hải huyện Long Đất nay thuộc xã nào", ward(BR, "Huyện Long Đất", "Thị trấn Long Hải"), None, "brvt"),
    ("tp Vũng Tàu giờ có những phường nào", district(BR, "Thành phố Vũng Tàu"), None, "brvt"),
    ("BRVT sáp nhập vào đâu", province(BR), None, "brvt"),
    # Bình Dương (old), now part of Ho Chi Minh City
    ("phường Hiệp An tp Thủ Dầu Một giờ thuộc phường nào", ward(BD, "Thành phố Thủ Dầu Một", "Phường Hiệp An"), None, "binhduong"),
    ("Tôi ở phường Tân Phước Khánh, thị xã Tân Uyên, Bình Dương; đăng ký tạm trú ở đâu?", ward(BD, "Thành phố Tân Uyên", "Phường Tân Phước Khánh"), where("1.004194"), "binhduong"),
    ("xa vinh hoa huyen phu giao binh duong", ward(BD, "Huyện Phú Giáo", "Xã Vĩnh Hòa"), None, "binhduong"),
    ("phường Thới Hòa thành phố Bến Cát bây giờ là phường gì", ward(BD, "Thành phố Bến Cát", "Phường Thới Hòa"), None, "binhduong"),
    ("Giải quyết hưởng bảo hiểm xã hội một lần nộp ở đâu? tôi ở phường Bình Thắng tp Dĩ An", ward(BD, "Thành phố Dĩ An", "Phường Bình Thắng"), where("1.001613"), "binhduong"),
    ("Tôi ở xã Tân Hiệp, giờ thuộc xã nào?", {"status": "ambiguous"}, None, "binhduong"),
    ("xã Tân Hiệp, Bình Dương giờ là xã gì", ward(BD, "Huyện Phú Giáo", "Xã Tân Hiệp"), None, "binhduong"),
    ("Thành phố Thủ Dầu Một nay gồm những phường nào", district(BD, "Thành phố Thủ Dầu Một"), None, "binhduong"),
    ("phường Chánh Mỹ tp Thủ Dầu Một", ward(BD, "Thành phố Thủ Dầu Một", "Phường Chánh Mỹ"), None, "binhduong"),
    ("Làm sổ đỏ ở Bình Dương mất bao lâu?", province(BD), None, "binhduong"),
    ("xã Thanh Tuyền huyện Dầu Tiếng giờ thuộc đâu", ward(BD, "Huyện Dầu Tiếng", "Xã Thanh Tuyền"), None, "binhduong"),
    ("huyện Bàu Bàng bây giờ là những xã nào", district(BD, "Huyện Bàu Bàng"), None, "binhduong"),
    ("dang ky tam tru o dau, toi o xa Vinh Hoa huyen Phu Giao", ward(BD, "Huyện Phú Giáo", "Xã Vĩnh Hòa"), where("1.004194"), "binhduong"),
    # elsewhere
    ("nhà ở phường Phúc Xá, quận Ba Đình, Hà Nội thì làm căn cước ở đâu", ward("Thành phố Hà Nội", "Quận Ba Đình", "Phường Phúc Xá"), where("1.014064"), "other"),
    ("phường Mai Dịch quận Cầu Giấy giờ thuộc phường nào", ward("Thành phố Hà Nội", "Quận Cầu Giấy", "Phường Mai Dịch"), None, "other"),
    ("dang ky thuong tru o dau, toi o phuong Nai Hien Dong quan Son Tra", ward("Thành phố Đà Nẵng", "Quận Sơn Trà", "Phường Nại Hiên Đông"), where("1.004222"), "other"),
    ("xã Tiên Châu huyện Tiên Phước tỉnh Quảng Nam nay là xã nào", ward("Tỉnh Quảng Nam", "Huyện Tiên Phước", "Xã Tiên Châu"), None, "other"),
    ("phường Trà An quận Bình Thủy Cần Thơ", ward("Thành phố Cần Thơ", "Quận Bình Thủy", "Phường Trà An"), None, "other"),
    ("xã Vị Tân thành phố Vị Thanh tỉnh Hậu Giang giờ thuộc đâu", ward("Tỉnh Hậu Giang", "Thành phố Vị Thanh", "Xã Vị Tân"), None, "other"),
    ("Tôi ở phường Bến Nghé quận 1, làm lại căn cước ở đâu?", ward(HCM, "Quận 1", "Phường Bến Nghé"), where("1.014064"), "other"),
    ("p. Bến Nghé, q.1, tp.hcm giờ là phường gì", ward(HCM, "Quận 1", "Phường Bến Nghé"), None, "other"),
    ("quận 7 bây giờ chia thành phường nào", district(HCM, "Quận 7"), None, "other"),
    ("phường 14 quận 10 sau sáp nhập thuộc phường nào", ward(HCM, "Quận 10", "Phường 14"), None, "other"),
    ("Tỉnh Hậu Giang giờ thuộc tỉnh nào?", province("Tỉnh Hậu Giang"), None, "other"),
    ("Phường Sài Gòn, TP HCM", new_ward(HCM, "Phường Sài Gòn"), None, "other"),
    ("xã Kiến Bình huyện Tân Thạnh Long An giờ là xã gì", ward("Tỉnh Long An", "Huyện Tân Thạnh", "Xã Kiến Bình"), None, "other"),
    ("quận 13 tp hcm", {"status": "unlisted", "province_now": HCM}, None, "other"),
    ("tx phu my", {"status": "ambiguous"}, None, "other"),
    ("thị trấn Yên Viên huyện Gia Lâm", ward("Thành phố Hà Nội", "Huyện Gia Lâm", "Thị trấn Yên Viên"), None, "other"),
    ("phường Hòa Thọ Đông, quận Cẩm Lệ, Đà Nẵng", ward("Thành phố Đà Nẵng", "Quận Cẩm Lệ", "Phường Hòa Thọ Đông"), None, "other"),
    ("Quảng Nam sáp nhập vào đâu", province("Tỉnh Quảng Nam"), None, "other"),
    ("cấp hộ chiếu phổ thông ở trong nước tại cấp tỉnh nộp ở đâu? tôi ở Hậu Giang", province("Tỉnh Hậu Giang"), where("1.001456"), "other"),
    # former districts named bare, without "huyện" / "thành phố", as citizens often do
    ("Tôi ở Dĩ An thì làm lại căn cước ở đâu?", district(BD, "Thành phố Dĩ An"), where("1.014064"), "binhduong"),
    ("nhà tôi ở Thủ Dầu Một, giờ thuộc phường nào", district(BD, "Thành phố Thủ Dầu Một"), None, "binhduong"),
    ("o ben cat dang ky khai sinh o dau", district(BD, "Thành phố Bến Cát"), where("1.001193"), "binhduong"),
    ("Châu Đức giờ là xã nào", district(BR, "Huyện Châu Đức"), None, "brvt"),
    ("em ở Xuyên Mộc, đăng ký kết hôn ở đâu", district(BR, "Huyện Xuyên Mộc"), where("1.000894"), "brvt"),
]
where_only = [
    ("Ở Vũng Tàu cấp lại thẻ căn cước tại cấp tỉnh thì nộp ở đâu?", province(BR), where("2.001194")),
    ("Trình báo mất hộ chiếu phổ thông thực hiện tại cấp huyện nộp ở đâu", None, where("1.010385")),
    ("Đăng ký giám hộ có yếu tố nước ngoài làm ở đâu?", None, where("1.001669")),
    ("Cấp lại thẻ căn cước thực hiện tại cấp trung ương nộp ở đâu", None, where("1.000757")),
    ("Cấp lại sổ BHXH, thẻ BHYT nộp ở đâu", None, where("1.002759")),
    ("Cấp phiếu lý lịch tư pháp ở đâu, tôi ở Bình Dương", province(BD), where("3.000333")),
]
conversations = [
    (["đăng ký khai tử ở đâu", "tôi ở xã Tân Hiệp", "huyện Phú Giáo"], ward(BD, "Huyện Phú Giáo", "Xã Tân Hiệp"), where("1.000656"), "binhduong"),
    (["Tôi ở quận 7, làm căn cước ở đâu", "phường Tân Thuận Đông"], ward(HCM, "Quận 7", "Phường Tân Thuận Đông"), where("1.014064"), "other"),
    (["đăng ký kết hôn cần giấy tờ gì", "tôi ở huyện Long Điền, Bà Rịa - Vũng Tàu thì nộp ở đâu"], {"status": "unlisted", "province_now": HCM}, where("1.000894"), "brvt"),
    (["Giải quyết hưởng chế độ tử tuất cần gì", "ở Bình Dương thì nộp ở đâu"], province(BD), where("2.000821"), "binhduong"),
]
out = []
n = 0
def emit(turns, place, proc, region):
    global n
    n += 1
    row = {"id": f"pl{n:02d}", "turns": turns, "region": region}
    if place is not None:
        row["place"] = place
    if proc is not None:
        row.update(proc)
        row["district_wording"] = any(k in " ".join([PROCS[proc["procedure"][0]].title, PROCS[proc["procedure"][0]].agency, PROCS[proc["procedure"][0]].competent_authority]).lower() for k in ("cấp huyện", "công an huyện"))
    out.append(row)
for q, place, proc, region in rows:
    emit([q], place, proc, region)
for q, place, proc in where_only:
    emit([q], place, proc, "brvt" if place and "Vũng" in str(place) else "other")
for turns, place, proc, region in conversations:
    emit(turns, place, proc, region)
Path("eval/places/place_questions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
print(len(out), sum(1 for r in out if "place" in r), sum(1 for r in out if "levels" in r))
