"""Inline SVG charts for the HTML report: bars, lines, bars with a line on a second axis, and the
goals' progress against target. Axes carry "nice" ticks (1, 2, 2.5 or 5 × 10ⁿ), targets are dashed
lines, partial periods are hollow points on a dashed stretch.

Every chart is an ``<svg class="chart" data-chart="…">`` whose drawn marks carry ``class="mark"``
(the browser test counts them). Every text from the report is escaped here.

>>> nice_ticks(0, 1590)
[0.0, 500.0, 1000.0, 1500.0, 2000.0]
>>> nice_ticks(0, 7, integer=True)
[0.0, 2.0, 4.0, 6.0, 8.0]
>>> nice_ticks(0, 1, 4)
[0.0, 0.25, 0.5, 0.75, 1.0]
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PALETTE", "Chart", "bar_chart", "combo_chart", "goal_chart", "line_chart", "nice_ticks"]

W, H = 640, 250
ML, MR, MT, MB = 56, 56, 14, 46
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777")
TARGET = "#111827"
Fmt = Callable[[float], str]


@dataclass
class Chart:
    """One chart: its id, title, SVG markup and legend entries ``(label, colour, kind)``."""

    name: str
    title: str
    svg: str
    legend: list[tuple[str, str, str]] = field(default_factory=list)
    note: str = ""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 4, *, integer: bool = False) -> list[float]:
    """Round axis ticks covering ``lo..hi`` in about ``n`` steps of 1, 2, 2.5 or 5 × 10ᵏ (whole
    steps only when ``integer``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # one value: a unit around it
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = 10 * mag
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        s = mult * mag
        if (integer and s < 1) or (integer and mult == 2.5 and mag < 10):
            continue
        if s >= raw * (1 - 1e-9):
            step = s
            break
    if integer:
        step = max(step, 1.0)
    start = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - start) / step - 1e-9)
    digits = max(0, 6 - math.floor(math.log10(step)))  # no float noise (0.30000000000000004)
    return [round(start + i * step, digits) for i in range(max(1, count) + 1)]


def _open(name: str, title: str, w: int = W, h: int = H) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{_e(name)}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f"<title>{_e(title)}</title>",
    ]


def empty(name: str, title: str, why: str) -> Chart:
    """A chart with nothing to draw, saying why."""
    parts = _open(name, title, W, 60)
    parts.append(f'<text x="{W / 2}" y="34" text-anchor="middle">{_e(why)}</text></svg>')
    return Chart(name, title, "".join(parts))


class _Axis:
    """A vertical scale from ticks: value → y."""

    def __init__(self, ticks: list[float]) -> None:
        self.ticks = ticks
        self.lo, self.hi = ticks[0], ticks[-1]

    def y(self, v: float) -> float:
        ph = H - MT - MB
        return MT + ph - ph * (v - self.lo) / ((self.hi - self.lo) or 1)

    def draw(self, parts: list[str], fmt: Fmt, right: bool = False, grid: bool = True) -> None:
        for t in self.ticks:
            y = self.y(t)
            if grid:
                parts.append(
                    f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                )
            if right:
                parts.append(f'<text x="{W - MR + 4}" y="{y + 4:.1f}">{_e(fmt(t))}</text>')
            else:
                parts.append(
                    f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(t))}</text>'
                )


def _xlabels(parts: list[str], labels: Sequence[str], xs: Sequence[float]) -> None:
    step = max(1, math.ceil(len(labels) / 12))
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{H - MB + 14}" text-anchor="end" '
            f'transform="rotate(-30 {xs[i]:.1f} {H - MB + 14})">{_e(labels[i])}</text>'
        )


def _target_line(parts: list[str], y: float, label: str) -> None:
    parts.append(
        f'<line class="target" x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="{TARGET}" '
        f'stroke-width="1.5" stroke-dasharray="6 4"><title>{_e(label)}</title></line>'
    )


def bar_chart(
    name: str,
    title: str,
    data: Sequence[tuple[str, float]],
    fmt: Fmt,
    *,
    color: str = PALETTE[0],
    highlight: str | None = None,
    partial: frozenset[int] = frozenset(),
    partial_label: str = "partial",
    integer: bool = False,
    fixed: tuple[float, float] | None = None,
    why_empty: str = "no data",
) -> Chart:
    """Vertical bars with nice ticks from zero (or ``fixed``)."""
    if not data:
        return empty(name, title, why_empty)
    hi = max([v for _, v in data] + [0.0])
    ticks = nice_ticks(*(fixed or (0.0, hi or 1.0)), integer=integer)
    ax = _Axis(ticks)
    parts = _open(name, title)
    ax.draw(parts, fmt)
    pw = W - ML - MR
    bw = pw / len(data)
    xs = []
    for i, (label, v) in enumerate(data):
        x = ML + i * bw
        y = ax.y(v)
        xs.append(x + bw / 2)
        fill = "#f59e0b" if highlight is not None and label == highlight else color
        hollow = i in partial  # a period the data starts or ends inside: outlined, not solid
        style = (
            f'fill="#fff" stroke="{fill}" stroke-dasharray="3 2"' if hollow else f'fill="{fill}"'
        )
        note = f" ({partial_label})" if hollow else ""
        parts.append(
            f'<rect class="mark{" partial" if hollow else ""}" x="{x + bw * 0.12:.1f}" y="{y:.1f}" '
            f'width="{max(bw * 0.76, 0.5):.1f}" height="{max(0.0, ax.y(ax.lo) - y):.1f}" {style}>'
            f"<title>{_e(label)}: {_e(fmt(v))}{_e(note)}</title></rect>"
        )
    _xlabels(parts, [d[0] for d in data], xs)
    parts.append("</svg>")
    return Chart(name, title, "".join(parts))


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    fmt: Fmt,
    *,
    fixed: tuple[float, float] | None = None,
    targets: Sequence[tuple[str, float, str]] = (),
    partial: frozenset[int] = frozenset(),
    partial_label: str = "partial",
    why_empty: str = "no data",
) -> Chart:
    """One line per series over shared x labels; ``targets`` ``(label, value, colour)`` as dashed
    lines; points at the indices in ``partial`` hollow and reached by a dashed stretch."""
    vals = [v for s in series.values() for v in s if v is not None]
    if not labels or not vals:
        return empty(name, title, why_empty)
    lo, hi = fixed or (min(vals), max(vals))
    if fixed is None:
        lo, hi = min([lo, *(t[1] for t in targets)]), max([hi, *(t[1] for t in targets)])
    ax = _Axis(nice_ticks(lo, hi))
    parts = _open(name, title)
    ax.draw(parts, fmt)
    pw = W - ML - MR
    n = len(labels)
    xs = [ML + (pw * (i + 0.5) / n) for i in range(n)]
    for label, value, color in targets:
        _target_line(parts, ax.y(value), f"{label}: {fmt(value)}")
        parts[-1] = parts[-1].replace(f'stroke="{TARGET}"', f'stroke="{color}"', 1)
    for k, (sname, ys) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = [(i, xs[i], ax.y(v)) for i, v in enumerate(ys) if v is not None]
        for (i0, x0, y0), (i1, x1, y1) in itertools.pairwise(pts):
            dash = ' stroke-dasharray="3 3"' if i0 in partial or i1 in partial else ""
            parts.append(
                f'<line class="mark" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                f'stroke="{color}" stroke-width="2"{dash}/>'
            )
        for i, x, y in pts:
            v = ys[i]
            hollow = i in partial
            note = f" ({partial_label})" if hollow else ""
            fill = "#fff" if hollow else color
            parts.append(
                f'<circle class="mark{" partial" if hollow else ""}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                f'fill="{fill}" stroke="{color}" stroke-width="2">'
                f"<title>{_e(sname)} {_e(labels[i])}: {_e(fmt(v or 0.0))}{_e(note)}</title></circle>"
            )
    _xlabels(parts, labels, xs)
    parts.append("</svg>")
    legend = [(s, PALETTE[k % len(PALETTE)], "line") for k, s in enumerate(series)]
    legend += [(f"{label} {fmt(value)}", color, "target") for label, value, color in targets]
    return Chart(name, title, "".join(parts), legend)


def combo_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    bars: Sequence[float],
    line: Sequence[float | None],
    *,
    bar_label: str,
    line_label: str,
    bar_fmt: Fmt,
    line_fmt: Fmt,
    why_empty: str = "no data",
) -> Chart:
    """Bars on the left axis and a line on a second, right axis (different units)."""
    if not labels:
        return empty(name, title, why_empty)
    left = _Axis(nice_ticks(0.0, max([*bars, 1.0]), integer=True))
    lv = [v for v in line if v is not None]
    right = _Axis(nice_ticks(0.0, max([*lv, 1.0]), integer=True))
    parts = _open(name, title)
    left.draw(parts, bar_fmt)
    right.draw(parts, line_fmt, right=True, grid=False)
    pw = W - ML - MR
    bw = pw / len(labels)
    xs = [ML + bw * (i + 0.5) for i in range(len(labels))]
    for i, v in enumerate(bars):
        y = left.y(v)
        parts.append(
            f'<rect class="mark" x="{ML + i * bw + bw * 0.12:.1f}" y="{y:.1f}" '
            f'width="{max(bw * 0.76, 0.5):.1f}" height="{max(0.0, left.y(0) - y):.1f}" fill="{PALETTE[0]}">'
            f"<title>{_e(labels[i])}: {_e(bar_fmt(v))} {_e(bar_label)}</title></rect>"
        )
    pts = [(xs[i], right.y(v), v, labels[i]) for i, v in enumerate(line) if v is not None]
    if pts:
        parts.append(
            f'<polyline class="mark" fill="none" stroke="{PALETTE[1]}" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
            + f'"><title>{_e(line_label)}</title></polyline>'
        )
        for x, y, v, lab in pts:
            parts.append(
                f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[1]}">'
                f"<title>{_e(lab)}: {_e(line_fmt(v))} {_e(line_label)}</title></circle>"
            )
    _xlabels(parts, labels, xs)
    parts.append("</svg>")
    legend = [
        (f"{bar_label} ←", PALETTE[0], "bar"),
        (f"{line_label} →", PALETTE[1], "line"),
    ]
    return Chart(name, title, "".join(parts), legend)


@dataclass
class GoalBar:
    """One goal's row: label, value and target on the goal's scale, the texts beside them."""

    label: str
    lo: float
    hi: float
    value: float | None
    target: float | None
    status: bool | None
    value_text: str
    target_text: str
    status_text: str


def goal_chart(name: str, title: str, rows: Sequence[GoalBar], why_empty: str) -> Chart:
    """Each goal's value as a bar on its own scale, its target as a black tick."""
    if not rows:
        return empty(name, title, why_empty)
    rowh = 34
    h = MT + rowh * len(rows) + 12
    parts = _open(name, title, W, h)
    x0, pw = 190, W - 190 - 220
    for i, g in enumerate(rows):
        yy = MT + i * rowh
        color = {True: "#16a34a", False: "#dc2626", None: "#9ca3af"}[g.status]
        label = g.label if len(g.label) <= 30 else g.label[:29] + "…"
        parts.append(f'<text x="8" y="{yy + 18}"><title>{_e(g.label)}</title>{_e(label)}</text>')
        parts.append(f'<rect x="{x0}" y="{yy + 6}" width="{pw}" height="16" fill="#e5e7eb"/>')
        span = (g.hi - g.lo) or 1.0
        if g.value is not None:
            frac = min(1.0, max(0.0, (g.value - g.lo) / span))
            parts.append(
                f'<rect class="mark" x="{x0}" y="{yy + 6}" width="{max(pw * frac, 1.0):.1f}" height="16" '
                f'fill="{color}"><title>{_e(g.label)}: {_e(g.value_text)} ({_e(g.target_text)})</title></rect>'
            )
        if g.target is not None:
            tx = x0 + pw * min(1.0, max(0.0, (g.target - g.lo) / span))
            parts.append(
                f'<line class="mark target" x1="{tx:.1f}" x2="{tx:.1f}" y1="{yy + 2}" y2="{yy + 26}" '
                f'stroke="{TARGET}" stroke-width="2.5"><title>{_e(g.target_text)}</title></line>'
            )
        parts.append(
            f'<text x="{x0 + pw + 8}" y="{yy + 18}">{_e(g.value_text)} · {_e(g.status_text)}</text>'
        )
    parts.append("</svg>")
    return Chart(name, title, "".join(parts))
