"""The dashboard's figures: the KPI report of bot/kpis.py turned into cards, charts and tables, each figure next
to its target (CSAT ≥ 90 % by 2025 and ≥ 95 % by 2030; the 1022 hotline's 66.3 % for the resolution rate)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import Request

from bot.console.charts import bar_chart, line_chart
from bot.console.templating import CHANNEL_LABELS, VIETNAM, number, percent
from bot.kpis import bucket_of
from bot.privacy import mask

PERIOD_LABELS = {"day": "Ngày", "week": "Tuần", "month": "Tháng"}
DEFAULT_DAYS = {"day": 30, "week": 7 * 12, "month": 365}  # the window shown when none is chosen


class QueryError(ValueError):
    """A window that cannot be shown (the message is Vietnamese)."""


def kpi_query(request: Request) -> dict:
    """The dashboard's choices from the address, checked: period, channel, window (dates in Vietnam's time,
    both inclusive) and whether simulated data counts. Unusable values fall back to the defaults."""
    q = request.query_params
    period = q.get("period", "day")
    if period not in PERIOD_LABELS:
        period = "day"
    channel = q.get("channel") if q.get("channel") in CHANNEL_LABELS else None
    days: dict[str, date | None] = {}
    for name in ("start", "end"):
        try:
            days[name] = date.fromisoformat(q[name]) if q.get(name) else None
        except ValueError:
            days[name] = None
    end = (_midnight(days["end"] + timedelta(days=1)) if days["end"] else time.time())
    start = _midnight(days["start"]) if days["start"] else end - DEFAULT_DAYS[period] * 86400
    if start >= end:
        raise QueryError("Ngày bắt đầu phải trước ngày kết thúc.")
    return {"period": period, "channel": channel, "start": start, "end": end,
            "include_simulated": q.get("simulated") != "exclude",
            "form": {"start": days["start"].isoformat() if days["start"] else "",
                     "end": days["end"].isoformat() if days["end"] else ""}}


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM).timestamp()


def compute_args(query: dict) -> dict:
    return {k: query[k] for k in ("period", "channel", "start", "end", "include_simulated")}


def export_query(query: dict) -> str:
    params = {"period": query["period"]}
    if query["channel"]:
        params["channel"] = query["channel"]
    params.update({k: v for k, v in query["form"].items() if v})
    if not query["include_simulated"]:
        params["simulated"] = "exclude"
    return urlencode(params)


def _points(value: float | None, target: float) -> str:
    """The gap to a target in percentage points: "+3,2 điểm" / "−4,0 điểm"."""
    if value is None:
        return ""
    diff = (value - target) * 100
    return ("+" if diff >= 0 else "−") + number(abs(diff), 1) + " điểm"


def _state(value: float | None, good: float, fair: float | None = None) -> str:
    if value is None:
        return ""
    if value >= good:
        return "good"
    return "short" if fair is not None and value >= fair else "bad"


def cards(summary: dict, targets: dict) -> list[dict]:
    csat, resolution = summary["csat"], summary["resolution_rate"]
    hotline = targets["hotline_resolution"]
    out: list[dict] = [
        {"label": "Số cuộc hội thoại", "value": number(summary["conversations"]),
         "notes": [f"{number(summary['conversations_per_day'], 1)} cuộc mỗi ngày",
                   f"{number(summary['turns'])} lượt hỏi đáp"], "state": ""},
        {"label": "Tỷ lệ hài lòng (CSAT)", "value": percent(csat),
         "compare": [("Mục tiêu 2025 ≥ 90 %", csat is not None and csat >= targets["csat_2025"],
                      _points(csat, targets["csat_2025"])),
                     ("Mục tiêu 2030 ≥ 95 %", csat is not None and csat >= targets["csat_2030"],
                      _points(csat, targets["csat_2030"]))] if csat is not None else [],
         "notes": [f"{number(summary['rated_conversations'])} cuộc được đánh giá (4–5 sao là hài lòng)"],
         "state": _state(csat, targets["csat_2030"], targets["csat_2025"])},
        {"label": "Tỷ lệ giải quyết", "value": percent(resolution),
         "compare": [("Tổng đài 1022: 66,3 %", resolution is not None and resolution >= hotline,
                      _points(resolution, hotline))] if resolution is not None else [],
         "notes": ["Trả lời được, không từ chối, không phải chuyển cán bộ"],
         "state": _state(resolution, hotline)},
        {"label": "Tự phục vụ (không chuyển cán bộ)", "value": percent(summary["containment"]),
         "notes": [f"Chuyển cán bộ: {percent(summary['handoff_rate'])}"], "state": ""},
        {"label": "Không hiểu / chưa trả lời được", "value": percent(summary["fallback_rate"]),
         "notes": ["Trên các lượt hỏi về thủ tục, kế hoạch"], "state": ""},
        {"label": "Thời gian phản hồi (trung vị)",
         "value": "—" if summary["latency_p50_ms"] is None else number(summary["latency_p50_ms"]) + " ms",
         "notes": ["p95: " + ("—" if summary["latency_p95_ms"] is None else number(summary["latency_p95_ms"]) + " ms")],
         "state": ""},
    ]
    for card in out:
        card.setdefault("compare", [])
    return out


def full_series(report: dict) -> list[dict]:
    """The report's series with every period of the window, the quiet ones too (no conversations, no rates),
    so the charts' time axis is even."""
    known = {p["period"]: p for p in report["series"]}
    buckets: list[str] = []
    ts = report["start"]
    while ts < report["end"]:
        bucket = bucket_of(ts, report["period"])
        if not buckets or buckets[-1] != bucket:
            buckets.append(bucket)
        ts += 86400
    last = bucket_of(report["end"] - 1, report["period"])
    if not buckets or buckets[-1] != last:
        buckets.append(last)
    empty = {"conversations": 0, "turns": 0, "csat": None, "resolution_rate": None, "fallback_rate": None,
             "handoff_rate": None, "latency_p50_ms": None}
    return [known.get(b, {"period": b, **empty}) for b in sorted(set(buckets) | set(known))]


def dashboard_context(report: dict, query: dict) -> dict:
    series = full_series(report)
    labels = [p["period"] for p in series]
    unit = PERIOD_LABELS[report["period"]].lower()
    targets = report["targets"]
    charts = {
        "conversations": bar_chart(labels, [p["conversations"] for p in series],
                                   title=f"Số cuộc hội thoại theo {unit}"),
        "rates": line_chart(labels, [("Tỷ lệ hài lòng (CSAT)", [p["csat"] for p in series], "csat"),
                                     ("Tỷ lệ giải quyết", [p["resolution_rate"] for p in series], "resolution")],
                            title=f"Tỷ lệ hài lòng và tỷ lệ giải quyết theo {unit}",
                            targets=[(targets["csat_2030"], "Mục tiêu 2030: 95 %", "t2030"),
                                     (targets["csat_2025"], "Mục tiêu 2025: 90 %", "t2025"),
                                     (targets["hotline_resolution"], "Tổng đài 1022: 66,3 %", "hotline")]),
    }
    top = report["top_procedures"]
    most = max((p["turns"] for p in top), default=0)
    return {
        "report": report,
        "series": series,
        "query": query,
        "cards": cards(report["summary"], targets),
        "charts": charts,
        "channels": sorted(report["by_channel"].items(), key=lambda kv: -kv[1]["conversations"]),
        "top_procedures": [{**p, "share": 100 * p["turns"] / most if most else 0} for p in top],
        "top_unanswered": [{**u, "question": mask(u["question"])} for u in report["top_unanswered"]],
        "export_query": export_query(query),
        "period_labels": PERIOD_LABELS,
        "window": (datetime.fromtimestamp(report["start"], VIETNAM).strftime("%d/%m/%Y"),
                   datetime.fromtimestamp(report["end"] - 1, VIETNAM).strftime("%d/%m/%Y")),
    }
