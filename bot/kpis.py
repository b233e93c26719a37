"""Satisfaction and service KPIs computed from the recorded conversations (definitions: docs/kpis.md).

Everything is computed from the database the assistant writes as it works (conversations, turns, ratings,
handoff tickets), for a time window, optionally one channel, and bucketed by day, ISO week or month in Vietnam's
time (UTC+7). Simulated (demo) data is marked in the database and can be left out.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.sql import Select

from bot.schema import conversations, handoff_tickets, ratings, turns
from bot.text.vietnamese import fold

VN_TZ = timezone(timedelta(hours=7))
PERIODS = ("day", "week", "month")
SATISFIED_FROM = 4  # a rating of 4 or 5 out of 5 counts as satisfied
UNANSWERED_OUTCOMES = ("declined", "unknown")
NOT_A_QUESTION = ("invalid", "small_talk")  # empty/emoji-only input, greetings and thanks: not service turns
TARGETS = {
    "csat_2025": 0.90,  # ≥ 90 % of citizens satisfied by 2025 (the provincial plans)
    "csat_2030": 0.95,  # ≥ 95 % by 2030
    "hotline_resolution": 0.663,  # the human 1022 hotline answered 66.3 % of requests satisfactorily
}
KPI_LABELS = {
    "conversations": "Số cuộc hội thoại",
    "turns": "Số lượt hỏi đáp",
    "rated_conversations": "Số cuộc được đánh giá",
    "csat": "Tỷ lệ hài lòng (CSAT)",
    "resolution_rate": "Tỷ lệ giải quyết",
    "containment": "Tỷ lệ tự phục vụ (không chuyển nhân viên)",
    "fallback_rate": "Tỷ lệ không hiểu / không trả lời được",
    "handoff_rate": "Tỷ lệ chuyển nhân viên",
    "latency_p50_ms": "Thời gian phản hồi trung vị (ms)",
    "latency_p95_ms": "Thời gian phản hồi p95 (ms)",
    "conversations_per_day": "Số cuộc hội thoại mỗi ngày",
}
SUMMARY_KEYS = tuple(KPI_LABELS)


def bucket_of(ts: float, period: str) -> str:
    moment = datetime.fromtimestamp(ts, VN_TZ)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return moment.strftime("%Y-%m")
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1])


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def question_key(text: str) -> str:
    """Questions that differ only in case, diacritics, punctuation or spacing count as one."""
    return " ".join(re.findall(r"\w+", fold(text)))


def _load(db: SqlEngine, start: float, end: float, channel: str | None, include_simulated: bool) -> dict:
    def scoped(query: Select, table: Table) -> Select:
        query = query.where(table.c.created_at >= start).where(table.c.created_at < end)
        if channel:
            query = query.where(table.c.channel == channel)
        if not include_simulated:
            query = query.where(table.c.simulated.is_(False))
        return query

    with db.connect() as conn:
        convs = conn.execute(scoped(select(conversations.c.session_id, conversations.c.channel,
                                           conversations.c.created_at, conversations.c.simulated),
                                    conversations)).all()
        turn_rows = conn.execute(scoped(select(turns.c.id, turns.c.session_id, turns.c.channel, turns.c.question,
                                               turns.c.outcome, turns.c.fallback, turns.c.latency_ms,
                                               turns.c.procedure, turns.c.created_at, turns.c.simulated),
                                        turns).order_by(turns.c.id)).all()
        # ratings and tickets of the window's conversations, whenever they came
        sessions = {c.session_id for c in convs}
        rating_rows = [r for r in conn.execute(select(ratings.c.session_id, ratings.c.score, ratings.c.id)
                                               .where(ratings.c.created_at >= start).order_by(ratings.c.id)).all()
                       if r.session_id in sessions]
        ticket_sessions = {r.session_id for r in conn.execute(
            select(handoff_tickets.c.session_id).where(handoff_tickets.c.created_at >= start)).all()} & sessions
    return {"conversations": convs, "turns": turn_rows, "ratings": rating_rows, "tickets": ticket_sessions}


def _summary(convs: list, turn_rows: list, last_rating: dict[str, int], ticket_sessions: set[str],
             days: float) -> dict[str, Any]:
    sessions = {c.session_id for c in convs}
    service_turns = [t for t in turn_rows if t.outcome not in NOT_A_QUESTION]
    by_session: dict[str, list] = defaultdict(list)
    for t in service_turns:
        by_session[t.session_id].append(t)
    resolved = sum(
        1 for s in sessions
        if s not in ticket_sessions and any(t.outcome == "answered" for t in by_session.get(s, ()))
        and not any(t.outcome in UNANSWERED_OUTCOMES for t in by_session.get(s, ()))
    )
    rated = [score for s, score in last_rating.items() if s in sessions]
    latencies = [t.latency_ms for t in turn_rows]
    return {
        "conversations": len(sessions),
        "turns": len(turn_rows),
        "rated_conversations": len(rated),
        "csat": _ratio(sum(1 for s in rated if s >= SATISFIED_FROM), len(rated)),
        "resolution_rate": _ratio(resolved, len(sessions)),
        "containment": _ratio(len(sessions - ticket_sessions), len(sessions)),
        "fallback_rate": _ratio(sum(1 for t in service_turns if t.fallback), len(service_turns)),
        "handoff_rate": _ratio(len(sessions & ticket_sessions), len(sessions)),
        "latency_p50_ms": _percentile(latencies, 0.50),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "conversations_per_day": len(sessions) / days if days > 0 else None,
    }


def compute_kpis(db: SqlEngine, *, period: str = "day", channel: str | None = None, start: float | None = None,
                 end: float | None = None, include_simulated: bool = True,
                 titles: Callable[[str], str | None] | None = None, top: int = 10) -> dict[str, Any]:
    """The KPI report for [start, end) (default: the last 30 days up to now); see docs/kpis.md."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    end = end if end is not None else time.time()
    start = start if start is not None else end - 30 * 86400
    if start >= end:
        raise ValueError("start must be before end")
    data = _load(db, start, end, channel or None, include_simulated)
    convs, turn_rows = data["conversations"], data["turns"]
    last_rating: dict[str, int] = {}
    for r in data["ratings"]:  # ordered by id: the last one wins
        last_rating[r.session_id] = r.score
    days = max(1.0, (end - start) / 86400)

    conv_bucket = {c.session_id: bucket_of(c.created_at, period) for c in convs}
    series_convs: dict[str, list] = defaultdict(list)
    for c in convs:
        series_convs[conv_bucket[c.session_id]].append(c)
    series_turns: dict[str, list] = defaultdict(list)
    for t in turn_rows:
        series_turns[conv_bucket.get(t.session_id) or bucket_of(t.created_at, period)].append(t)
    series = []
    for bucket in sorted(set(series_convs) | set(series_turns)):
        s = _summary(series_convs[bucket], series_turns[bucket], last_rating, data["tickets"],
                     {"day": 1.0, "week": 7.0, "month": 30.0}[period])
        series.append({"period": bucket, **{k: s[k] for k in ("conversations", "turns", "csat", "resolution_rate",
                                                               "fallback_rate", "handoff_rate", "latency_p50_ms")}})

    by_channel = {}
    for name in sorted({c.channel for c in convs}):
        by_channel[name] = _summary([c for c in convs if c.channel == name],
                                    [t for t in turn_rows if t.channel == name], last_rating, data["tickets"], days)

    procedures = Counter(t.procedure for t in turn_rows if t.procedure)
    unanswered: dict[str, dict] = {}
    for t in turn_rows:
        if t.outcome in UNANSWERED_OUTCOMES or (t.fallback and t.outcome not in NOT_A_QUESTION):
            key = question_key(t.question)
            if not key:
                continue
            item = unanswered.setdefault(key, {"question": t.question, "count": 0, "last_at": 0.0, "turn_id": t.id})
            item["count"] += 1
            if t.created_at >= item["last_at"]:
                item.update(question=t.question, last_at=t.created_at, turn_id=t.id)
    return {
        "period": period,
        "channel": channel or None,
        "start": start,
        "end": end,
        "include_simulated": include_simulated,
        "has_simulated": any(c.simulated for c in convs) or any(t.simulated for t in turn_rows),
        "summary": _summary(convs, turn_rows, last_rating, data["tickets"], days),
        "series": series,
        "by_channel": by_channel,
        "top_procedures": [{"procedure": code, "title": titles(code) if titles else None, "turns": n}
                           for code, n in procedures.most_common(top)],
        "top_unanswered": sorted(unanswered.values(), key=lambda i: (-i["count"], -i["last_at"]))[:top],
        "targets": dict(TARGETS),
    }


def kpis_csv(report: dict[str, Any]) -> str:
    """The report as CSV: one row per period bucket, then the whole window ("tổng"), then per channel."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["scope", "period", *SUMMARY_KEYS])

    def row(scope: str, period: str, values: dict) -> None:
        writer.writerow([scope, period, *("" if values.get(k) is None else round(values[k], 4)
                                          if isinstance(values.get(k), float) else values.get(k)
                                          for k in SUMMARY_KEYS)])

    for item in report["series"]:
        row(report["channel"] or "all", item["period"], item)
    row(report["channel"] or "all", "tổng", report["summary"])
    for name, values in report["by_channel"].items():
        row(name, "tổng", values)
    return out.getvalue()
