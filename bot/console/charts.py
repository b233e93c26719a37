"""Charts for the dashboard as inline SVG made on the server: no script, no external library, readable without CSS.

Every value and label is escaped here; the result is markup the templates insert as it is. Colours come from
classes styled in console.css (the SVG presentation attributes are the fallback).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 40
_ids = itertools.count(1)


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f} %"
    return f"{value:,.0f}".replace(",", ".")


def _nice_max(value: float) -> float:
    """A round top for a count axis with four whole-number steps (4, 8, 12, … 40, 80, 100, 200, …)."""
    if value <= 40:
        return float(max(4, math.ceil(value / 4) * 4))
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 5, 6, 8, 10):
        top = step * magnitude
        if value <= top and (top / 4).is_integer():
            return top
    return 10 * magnitude


def _short(label: str) -> str:
    """2026-11-23 -> 23/11; 2026-W47 and 2026-11 stay readable."""
    parts = label.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[2]}/{parts[1]}"
    if len(parts) == 2 and parts[1].isdigit():
        return f"{parts[1]}/{parts[0]}"
    return label


class _Frame:
    def __init__(self, labels: Sequence[str], y_max: float, percent: bool) -> None:
        self.labels, self.y_max, self.percent = list(labels), y_max, percent
        self.plot_w, self.plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - min(max(value, 0.0), self.y_max) / self.y_max)

    def x_band(self, i: int) -> tuple[float, float]:
        band = self.plot_w / max(1, len(self.labels))
        return LEFT + i * band, band

    def x_mid(self, i: int) -> float:
        start, band = self.x_band(i)
        return start + band / 2

    def axes(self) -> list[str]:
        parts = []
        for k in range(5):
            value = self.y_max * k / 4
            y = self.y(value)
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="#e3e7ee"/>')
            parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                         f"{escape(_fmt(value, self.percent))}</text>")
        step = max(1, math.ceil(len(self.labels) / 8))
        for i, label in enumerate(self.labels):
            if i % step == 0 or i == len(self.labels) - 1 and len(self.labels) <= 8:
                parts.append(f'<text class="tick" x="{self.x_mid(i):.1f}" y="{HEIGHT - BOTTOM + 18}" '
                             f'text-anchor="middle">{escape(_short(label))}</text>')
        parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + self.plot_h}" '
                     f'y2="{TOP + self.plot_h}" stroke="#8a94a6"/>')
        return parts


def _svg(title: str, description: str, body: list[str]) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-{n}-t chart-{n}-d" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-{n}-t">{escape(title)}</title><desc id="chart-{n}-d">{escape(description)}</desc>'
        + "".join(body) + "</svg>"
    )


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str) -> Markup:
    """One bar per period (e.g. conversations per day)."""
    clean = [v or 0 for v in values]
    frame = _Frame(labels, _nice_max(max(clean, default=0)), percent=False)
    body = frame.axes()
    for i, value in enumerate(clean):
        start, band = frame.x_band(i)
        width = max(1.0, band * 0.7)
        y = frame.y(value)
        body.append(f'<rect class="bar" x="{start + (band - width) / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{TOP + frame.plot_h - y:.1f}" fill="#1f5fa8"><title>{escape(labels[i])}: '
                    f"{escape(_fmt(value, False))}</title></rect>")
    total = sum(clean)
    description = (f"{len(labels)} kỳ, tổng {_fmt(total, False)}, cao nhất {_fmt(max(clean), False)}"
                   if clean else "Chưa có số liệu")
    return _svg(title, description, body)


def line_chart(labels: Sequence[str], lines: Sequence[tuple[str, Sequence[float | None], str]], *, title: str,
               targets: Sequence[tuple[float, str, str]] = ()) -> Markup:
    """Rates over time (0..1, drawn as percentages): ``lines`` are (name, values, css class); ``targets`` are
    dashed horizontal lines (value, label, css class). A missing value (no data that period) breaks the line."""
    frame = _Frame(labels, 1.0, percent=True)
    body = frame.axes()
    for n, (target, label, css) in enumerate(targets):
        y = frame.y(target)
        body.append(f'<line class="target {css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#b26a00" stroke-dasharray="6 4"/>')
        # the first label above its line, the others below theirs: close targets (90 %, 95 %) stay readable
        label_y = y - 4 if n == 0 else y + 12
        body.append(f'<text class="target-label {css}" x="{WIDTH - RIGHT - 4}" y="{label_y:.1f}" '
                    f'text-anchor="end">{escape(label)}</text>')
    summary = []
    for name, values, css in lines:
        segment: list[str] = []
        segments = []
        for i, value in enumerate(values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{frame.x_mid(i):.1f},{frame.y(value):.1f}")
            body.append(f'<circle class="dot {css}" cx="{frame.x_mid(i):.1f}" cy="{frame.y(value):.1f}" r="3">'
                        f"<title>{escape(name)} {escape(labels[i])}: {escape(_fmt(value, True))}</title></circle>")
        if segment:
            segments.append(segment)
        for points in segments:
            body.append(f'<polyline class="line {css}" fill="none" stroke="#1f5fa8" stroke-width="2.5" '
                        f'points="{" ".join(points)}"/>')
        known = [v for v in values if v is not None]
        summary.append(f"{name}: " + (f"gần nhất {_fmt(known[-1], True)}" if known else "chưa có số liệu"))
    return _svg(title, "; ".join(summary), body)
