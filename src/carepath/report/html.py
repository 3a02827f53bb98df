"""The care report as one self-contained HTML file: inline CSS, inline SVG charts, one tiny inline
script; no fonts, images, styles or scripts from the network, so it works offline and in mail.

Charts: SLA attainment per clock per week; breaches by channel and by tier; goal progress against
target; CSAT and NPS per week; contacts per day; the peak day's contacts per hour with the agents
Erlang C says it needs. Every chart is an ``<svg class="chart" data-chart="…">`` whose marks carry
``class="mark"``; the script counts the charts that have marks and writes
``data-charts-drawn="N"`` on ``<body>`` (the browser test reads it).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from carepath.metrics.targets import KIND
from carepath.report.text import fmt_duration, fmt_value

__all__ = ["inline_json", "render_compare_html", "render_html"]

W, H = 640, 240
ML, MR, MT, MB = 48, 16, 16, 44
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.muted{color:#6b7280}.grid{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #e5e7eb;border-radius:8px;padding:8px 12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #f3f4f6;text-align:right}
td:first-child,th:first-child{text-align:left}.ok{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}
.na{color:#6b7280}svg.chart{background:#fafafa;border:1px solid #e5e7eb;border-radius:6px;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#374151}.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
"""

_SCRIPT = """(function(){var n=0;document.querySelectorAll('svg.chart').forEach(function(s){
if(s.querySelector('.mark'))n++;});document.body.setAttribute('data-charts-drawn',String(n));
var el=document.getElementById('charts-status');if(el)el.textContent=n+' charts drawn';})();"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _svg_open(name: str, title: str, w: int = W, h: int = H) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{_e(name)}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f"<title>{_e(title)}</title>",
    ]


def _empty(name: str, title: str, why: str) -> str:
    parts = _svg_open(name, title, W, 60)
    parts.append(f'<text x="{W / 2}" y="34" text-anchor="middle">{_e(why)}</text></svg>')
    return "".join(parts)


def _axes(parts: list[str], ymin: float, ymax: float, fmt: Any, ticks: int = 4) -> None:
    ph = H - MT - MB
    for i in range(ticks + 1):
        v = ymin + (ymax - ymin) * i / ticks
        y = MT + ph - ph * i / ticks
        parts.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(v))}</text>')


def _xlabels(parts: list[str], labels: Sequence[str], xs: Sequence[float]) -> None:
    step = max(1, len(labels) // 10)
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{H - MB + 14}" text-anchor="end" '
            f'transform="rotate(-30 {xs[i]:.1f} {H - MB + 14})">{_e(labels[i])}</text>'
        )


def _count(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"


def bar_chart(
    name: str,
    title: str,
    data: Sequence[tuple[str, float]],
    fmt: Any = _count,
    color: str = PALETTE[0],
    highlight: str | None = None,
    line: Sequence[float | None] | None = None,
    line_label: str = "",
) -> str:
    """Vertical bars (and an optional line on the same scale, e.g. required agents)."""
    if not data:
        return _empty(name, title, "no data")
    parts = _svg_open(name, title)
    ymax = max([v for _, v in data] + [v for v in (line or []) if v is not None] + [1])
    _axes(parts, 0, ymax, fmt)
    pw, ph = W - ML - MR, H - MT - MB
    bw = pw / len(data)
    xs = []
    for i, (label, v) in enumerate(data):
        x = ML + i * bw
        h = ph * v / ymax
        xs.append(x + bw / 2)
        fill = "#f59e0b" if highlight is not None and label == highlight else color
        parts.append(
            f'<rect class="mark" x="{x + bw * 0.1:.1f}" y="{MT + ph - h:.1f}" width="{max(bw * 0.8, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{fill}"><title>{_e(label)}: {_e(fmt(v))}</title></rect>'
        )
    if line:
        pts = [
            f"{xs[i]:.1f},{MT + ph - ph * v / ymax:.1f}"
            for i, v in enumerate(line)
            if v is not None
        ]
        if pts:
            parts.append(
                f'<polyline class="mark" points="{" ".join(pts)}" fill="none" stroke="{PALETTE[1]}" '
                f'stroke-width="2"><title>{_e(line_label)}</title></polyline>'
            )
    _xlabels(parts, [d[0] for d in data], xs)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    ymin: float,
    ymax: float,
    fmt: Any,
    target: float | None = None,
) -> str:
    """One polyline (with dots) per series over shared x labels."""
    if not labels or not series:
        return _empty(name, title, "no data")
    parts = _svg_open(name, title)
    _axes(parts, ymin, ymax, fmt)
    pw, ph = W - ML - MR, H - MT - MB
    n = len(labels)
    xs = [ML + (pw * (i + 0.5) / n) for i in range(n)]

    def y(v: float) -> float:
        return MT + ph - ph * (v - ymin) / ((ymax - ymin) or 1)

    if target is not None:
        parts.append(
            f'<line x1="{ML}" x2="{W - MR}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            f'stroke="#111827" stroke-dasharray="4 3"><title>target {_e(fmt(target))}</title></line>'
        )
    for k, (sname, vals) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = [(xs[i], y(v)) for i, v in enumerate(vals) if v is not None]
        if len(pts) > 1:
            parts.append(
                f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="2" points="'
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
                + f'"><title>{_e(sname)}</title></polyline>'
            )
        for i, v in enumerate(vals):
            if v is not None:
                parts.append(
                    f'<circle class="mark" cx="{xs[i]:.1f}" cy="{y(v):.1f}" r="3" fill="{color}">'
                    f"<title>{_e(sname)} {_e(labels[i])}: {_e(fmt(v))}</title></circle>"
                )
    _xlabels(parts, labels, xs)
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{PALETTE[k % len(PALETTE)]}"></i>{_e(n)}</span>'
            for k, n in enumerate(names)
        )
        + "</div>"
    )


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _goal_chart(r: dict[str, Any]) -> str:
    goals = r["goals"]
    if not goals:
        return _empty("goals", "Goal progress against target", "no goals")
    rowh = 34
    h = MT + rowh * len(goals) + 20
    parts = _svg_open("goals", "Goal progress against target", W, h)
    x0, pw = 190, W - 190 - 120
    for i, g in enumerate(goals):
        kind = KIND.get(g["metric"], "custom")
        v, t = g["value"], g.get("target_value")
        if kind == "nps":
            lo, hi = -100.0, 100.0
        elif kind == "share":
            lo, hi = 0.0, 1.0
        elif kind == "ces":
            lo, hi = 1.0, 7.0
        else:
            lo, hi = 0.0, max([x for x in (v, t) if x is not None] + [1.0]) * 1.25
        yy = MT + i * rowh
        color = {True: "#16a34a", False: "#dc2626", None: "#9ca3af"}[g["attained"]]
        parts.append(f'<text x="8" y="{yy + 17}">{_e(g["id"])}</text>')
        parts.append(f'<rect x="{x0}" y="{yy + 6}" width="{pw}" height="16" fill="#e5e7eb"/>')
        if v is not None:
            frac = min(1.0, max(0.0, (v - lo) / ((hi - lo) or 1)))
            parts.append(
                f'<rect class="mark" x="{x0}" y="{yy + 6}" width="{pw * frac:.1f}" height="16" fill="{color}">'
                f"<title>{_e(g['id'])}: {_e(fmt_value(g['metric'], v))} (target {_e(g['target'])})</title></rect>"
            )
        if t is not None:
            tx = x0 + pw * min(1.0, max(0.0, (t - lo) / ((hi - lo) or 1)))
            parts.append(
                f'<line class="mark" x1="{tx:.1f}" x2="{tx:.1f}" y1="{yy + 2}" y2="{yy + 26}" stroke="#111827" '
                f'stroke-width="2"><title>target {_e(g["target"])}</title></line>'
            )
        status = {
            True: "attained",
            False: "missed",
            None: "few samples" if g["reason"] == "too_few_samples" else "n/a",
        }
        parts.append(
            f'<text x="{x0 + pw + 6}" y="{yy + 17}">{_e(fmt_value(g["metric"], v))} · {_e(status[g["attained"]])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _charts(r: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    sw = r["series"]["sla_weekly"]
    weeks = sorted({p["week"] for pts in sw.values() for p in pts})
    series: dict[str, Sequence[float | None]] = {
        c: [next((p["attainment"] for p in pts if p["week"] == w), None) for w in weeks]
        for c, pts in sw.items()
        if pts
    }
    out.append(
        (
            "SLA attainment per clock per week",
            line_chart(
                "sla-weekly", "SLA attainment per clock per week", weeks, series, 0.0, 1.0, _pct
            )
            + _legend(list(series)),
        )
    )
    bb = r["series"]["breaches_by"]
    out.append(
        (
            "Breaches by channel",
            bar_chart(
                "breaches-channel",
                "Breaches by channel",
                list(bb["channel"].items()),
                color=PALETTE[1],
            ),
        )
    )
    out.append(
        (
            "Breaches by tier",
            bar_chart(
                "breaches-tier", "Breaches by tier", list(bb["tier"].items()), color=PALETTE[3]
            ),
        )
    )
    out.append(("Goal progress against target", _goal_chart(r)))
    sv = r["series"]["surveys_weekly"]
    labels = [p["week"] for p in sv]
    out.append(
        (
            "CSAT per week",
            line_chart(
                "csat-trend",
                "CSAT per week",
                labels,
                {"CSAT": [p["csat"] for p in sv]},
                0.0,
                1.0,
                _pct,
            ),
        )
    )
    out.append(
        (
            "NPS per week",
            line_chart(
                "nps-trend",
                "NPS per week",
                labels,
                {"NPS": [p["nps"] for p in sv]},
                -100.0,
                100.0,
                lambda v: f"{v:+.0f}",
            ),
        )
    )
    load = r["load"]
    peak = load["peak"]
    out.append(
        (
            "Contacts per day",
            bar_chart(
                "load-daily",
                "Contacts per day",
                [(d["date"], d["contacts"]) for d in load["per_day"]],
                highlight=peak["date"] if peak else None,
            ),
        )
    )
    if peak:
        rows = [s for s in r["staffing"] if s["hour"].startswith(peak["date"])]
        chart = bar_chart(
            "load-hourly",
            f"Contacts per hour on the peak day {peak['date']}, with agents required",
            [(s["hour"][11:16], s["contacts"]) for s in rows],
            line=[s["agents"] for s in rows],
            line_label="agents required (Erlang C)",
        )
        out.append(
            (
                f"Load by hour on the peak day ({peak['date']}) with required staff",
                chart + _legend(["contacts", "agents required"]).replace(PALETTE[0], PALETTE[0], 1),
            )
        )
    else:
        out.append(
            (
                "Load by hour with required staff",
                _empty("load-hourly", "Load by hour", "no contacts"),
            )
        )
    return out


def _status(g: dict[str, Any]) -> str:
    if g["attained"] is True:
        return '<span class="ok">attained</span>'
    if g["attained"] is False:
        return '<span class="bad">missed</span>'
    return f'<span class="na">{_e(g["reason"] or "n/a")}</span>'


def _body(r: dict[str, Any], prefix: str = "") -> str:
    p = r["period"]
    out = [
        f'<p class="muted">{_e(p["from"] or "—")} → {_e(p["to"] or "—")} · {r["events"]} events · '
        f"{r['cases']} cases · timezone {_e(r.get('timezone', ''))}</p>"
    ]
    out.append(
        f"<h2>{prefix}Metrics</h2><table><tr><th>metric</th><th>value</th><th>samples</th></tr>"
    )
    for name, m in r["metrics"].items():
        if "median" in m and name != "aht":
            val = (
                f"median {fmt_duration(m['median'])} · mean {fmt_duration(m['mean'])} · "
                f"p90 {fmt_duration(m['p90'])} · p95 {fmt_duration(m['p95'])}"
            )
        else:
            val = fmt_value(name, m["value"])
        out.append(f"<tr><td>{_e(name)}</td><td>{_e(val)}</td><td>{m['samples']}</td></tr>")
    for name, m in r.get("custom", {}).items():
        out.append(
            f"<tr><td>{_e(name)} <span class=muted>(custom {m['type']})</span></td>"
            f"<td>{_e(fmt_value(name, m['value'], m['type']))}</td><td>{m['samples']}</td></tr>"
        )
    out.append("</table>")
    out.append(
        f"<h2>{prefix}SLAs</h2><table><tr><th>clock</th><th>met</th><th>breached</th><th>cancelled</th>"
        "<th>attainment</th></tr>"
    )
    for c, s in r["slas"].items():
        out.append(
            f"<tr><td>{_e(c)}</td><td>{s['met']}</td><td>{s['breached']}</td><td>{s.get('cancelled', 0)}</td>"
            f"<td>{_e(fmt_value('csat', s['attainment']))}</td></tr>"
        )
    out.append("</table>")
    out.append(
        f"<h2>{prefix}Goals</h2><table><tr><th>goal</th><th>metric</th><th>value</th><th>target</th>"
        "<th>status</th><th>samples</th><th>window</th><th>trend</th><th>days left</th></tr>"
    )
    for g in r["goals"]:
        w = g["window"]
        out.append(
            f'<tr><td title="{_e(g.get("title") or "")}">{_e(g["id"])}</td><td>{_e(g["metric"])}'
            f"{' ' + _e(g['stat']) if g.get('stat') else ''}</td><td>{_e(fmt_value(g['metric'], g['value']))}</td>"
            f"<td>{_e(g['target'])}</td><td>{_status(g)}</td><td>{g['samples']}</td>"
            f"<td>{_e(w['from'] + ' … ' + w['to']) if w else '—'}</td>"
            f"<td>{_e(fmt_value(g['metric'], g['trend']))}</td><td>{'—' if g.get('days_left') is None else g['days_left']}</td></tr>"
        )
    out.append("</table>")
    out.append(f"<h2>{prefix}Charts</h2><div class=grid>")
    for title, svg in _charts(r):
        out.append(
            f'<div class="card"><h3 style="font-size:14px;margin:4px 0">{_e(title)}</h3>{svg}</div>'
        )
    out.append("</div>")
    return "\n".join(out)


_INLINE_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def inline_json(data: Any) -> str:
    r"""JSON safe inside an HTML ``<script>`` element: ``<``, ``>``, ``&``, U+2028 and U+2029 are
    written as ``\u`` escapes, so ``</script>`` or ``<!--<script>`` in a title or a channel name
    can neither end the element nor switch the HTML parser into its escaped state. The escapes
    only occur inside JSON strings, so ``JSON.parse`` reads the same data.

    >>> print(inline_json({"t": "<!--<script></script>&"}))
    {"t":"\u003c!--\u003cscript\u003e\u003c/script\u003e\u0026"}
    """
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(
        _INLINE_JSON_ESCAPES
    )


def _page(title: str, body: str, data: dict[str, Any]) -> str:
    payload = inline_json(data)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{_e(title)}</h1><p id="charts-status" class="muted"></p>\n{body}\n'
        f'<script type="application/json" id="report-data">{payload}</script>\n'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_html(r: dict[str, Any]) -> str:
    """One report as a self-contained HTML page."""
    pb = r["playbook"]
    return _page(f"Care report — {pb.get('title') or pb['id']} {pb['version']}", _body(r), r)


def render_compare_html(c: dict[str, Any]) -> str:
    """The what-if as one page: the differences, then each version's report."""
    from carepath.report.text import render_compare_text

    b, o = c["base"], c["compare"]
    table = render_compare_text(c).split("\n\n=== base ===")[0]
    body = (
        f"<h2>What-if: differences</h2><pre>{_e(table)}</pre>"
        f"<h2>Base: {_e(b['playbook']['id'])} {_e(b['playbook']['version'])}</h2>{_body(b, 'Base · ')}"
        f"<h2>Compare: {_e(o['playbook']['id'])} {_e(o['playbook']['version'])}</h2>{_body(o, 'Compare · ')}"
    )
    return _page(
        f"What-if — {b['playbook']['id']} {b['playbook']['version']} vs {o['playbook']['version']}",
        body,
        c,
    )
