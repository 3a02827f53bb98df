"""The care report as plain text for people (``carepath report --format text``)."""

from __future__ import annotations

import math
from typing import Any

from carepath.metrics.targets import KIND

__all__ = ["fmt_duration", "fmt_value", "render_compare_text", "render_text"]


def fmt_duration(s: float | None) -> str:
    """Seconds → ``1h 05m`` / ``12m 30s`` / ``45s`` (``1.16e+295d`` beyond ~3,000 years)."""
    if s is None:
        return "—"
    s = float(s)
    neg = s < 0
    s = abs(s)
    if not s < 1e11:  # over ~3,000 years, or not finite: no day count of 300 digits
        return ("-" if neg else "") + (f"{s / 86400:.3g}d" if math.isfinite(s) else "∞")
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        out = f"{d}d {h:02d}h"
    elif h:
        out = f"{h}h {m:02d}m"
    elif m:
        out = f"{m}m {sec:02d}s"
    else:
        out = f"{s:.0f}s"
    return ("-" if neg else "") + out


def fmt_value(metric: str, v: float | None, kind: str | None = None) -> str:
    """A metric value in its unit: shares as %, NPS in points, times as durations."""
    if v is None:
        return "—"
    k = kind or KIND.get(metric, "custom")
    if k in ("share", "ratio"):
        return f"{v * 100:.1f}%"
    if k == "nps":
        return f"{v:+.1f}"
    if k == "time":
        return fmt_duration(v)
    if k == "count":
        return f"{v:.0f}"
    return f"{v:.2f}"


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return out


def _goal_status(g: dict[str, Any]) -> str:
    if g["attained"] is True:
        return "attained"
    if g["attained"] is False:
        return "MISSED"
    return (
        f"n/a ({g['reason']}: {g['samples']} < {g['min_samples']})"
        if g["reason"] == "too_few_samples"
        else "n/a"
    )


def render_text(r: dict[str, Any]) -> str:
    """One report as text."""
    pb = r["playbook"]
    out = [f"Care report — {pb.get('title') or pb['id']} ({pb['id']} {pb['version']})"]
    p = r["period"]
    out.append(
        f"Period: {p['from'] or '—'} → {p['to'] or '—'}   events: {r['events']}   cases: {r['cases']}"
        + ("   (from a runtime store)" if r.get("source") == "store" else "")
    )
    out.append("")
    out.append("Metrics")
    rows = []
    for name, m in r["metrics"].items():
        if "median" in m and name != "aht":
            rows.append(
                [
                    name,
                    f"median {fmt_duration(m['median'])}, mean {fmt_duration(m['mean'])}, "
                    f"p90 {fmt_duration(m['p90'])}, p95 {fmt_duration(m['p95'])}",
                    str(m["samples"]),
                ]
            )
        else:
            rows.append([name, fmt_value(name, m["value"]), str(m["samples"])])
    for name, m in r.get("custom", {}).items():
        rows.append(
            [
                f"{name} (custom {m['type']})",
                fmt_value(name, m["value"], m["type"]),
                str(m["samples"]),
            ]
        )
    out += (
        ["  " + x for x in _table(rows, ["metric", "value", "samples"])]
        if rows
        else ["  (no metric has a value)"]
    )
    out.append("")
    out.append("SLAs (finished cycles)")
    rows = [
        [
            c,
            str(s["met"]),
            str(s["breached"]),
            str(s.get("cancelled", 0)),
            fmt_value("csat", s["attainment"]),
        ]
        for c, s in r["slas"].items()
    ]
    out += (
        ["  " + x for x in _table(rows, ["clock", "met", "breached", "cancelled", "attainment"])]
        if rows
        else ["  (none)"]
    )
    act = r.get("activity") or {}
    if act:
        br = ", ".join(f"{k} {v}" for k, v in act.get("breaches", {}).items()) or "none"
        out.append(f"  breaches raised: {br}; escalations: {act.get('escalations', 0)}")
    out.append("")
    out.append("Goals")
    rows = []
    for g in r["goals"]:
        w = g["window"]
        kind = KIND.get(
            g["metric"], (r.get("custom", {}).get(g["metric"]) or {}).get("type", "custom")
        )
        rows.append(
            [
                g["id"],
                g["metric"] + (f" {g['stat']}" if g.get("stat") else ""),
                fmt_value(g["metric"], g["value"], kind),
                g["target"],
                _goal_status(g),
                str(g["samples"]),
                f"{w['from']}..{w['to']}" if w else "—",
                fmt_value(g["metric"], g["trend"], kind),
                "—" if g.get("days_left") is None else str(g["days_left"]),
            ]
        )
    out += (
        [
            "  " + x
            for x in _table(
                rows,
                [
                    "goal",
                    "metric",
                    "value",
                    "target",
                    "status",
                    "samples",
                    "window",
                    "trend",
                    "days left",
                ],
            )
        ]
        if rows
        else ["  (no goals)"]
    )
    out.append("")
    load = r["load"]
    out.append("Load")
    if load["peak"]:
        days = load["per_day"]
        avg = sum(d["contacts"] for d in days) / len(days)
        out.append(
            f"  contacts: {sum(d['contacts'] for d in days)} over {len(days)} days "
            f"(mean {avg:.0f}/day); peak {load['peak']['date']} with {load['peak']['contacts']}"
        )
    else:
        out.append("  no contacts (case.opened events)")
    st = r["staffing"]
    if st:
        params = r.get("staffing_params") or {}
        top = sorted(st, key=lambda x: (-(x["agents"] or 0), x["hour"]))[:5]
        out.append(
            f"  staffing (Erlang C, aht {fmt_duration(params.get('aht'))}, answer within "
            f"{fmt_duration(params.get('answer_within'))}, target {params.get('target', 0.8):.0%}): "
            f"{len(st)} hours with contacts; busiest:"
        )
        out += [
            "    " + x
            for x in _table(
                [
                    [
                        x["hour"],
                        str(x["contacts"]),
                        "—" if x["agents"] is None else str(x["agents"]),
                    ]
                    for x in top
                ],
                ["hour", "contacts", "agents"],
            )
        ]
    return "\n".join(out) + "\n"


def render_compare_text(c: dict[str, Any]) -> str:
    """The what-if: differences side by side, then both reports."""
    b, o = c["base"], c["compare"]
    out = [
        f"What-if: {b['playbook']['id']} {b['playbook']['version']} (base) vs "
        f"{o['playbook']['id']} {o['playbook']['version']} (compare), same {b['events']} events",
        "",
    ]
    rows = []
    for clock in sorted(set(b["slas"]) | set(o["slas"])):
        sb, so = b["slas"].get(clock), o["slas"].get(clock)
        for key in ("met", "breached"):
            vb, vo = (sb or {}).get(key), (so or {}).get(key)
            rows.append([f"{clock} {key}", str(vb), str(vo), _delta(vb, vo)])
        ab, ao = (sb or {}).get("attainment"), (so or {}).get("attainment")
        rows.append(
            [
                f"{clock} attainment",
                fmt_value("csat", ab),
                fmt_value("csat", ao),
                "—" if ab is None or ao is None else f"{(ao - ab) * 100:+.1f} pt",
            ]
        )
    ba, oa = b.get("activity", {}), o.get("activity", {})
    for clock in sorted(set(ba.get("breaches", {})) | set(oa.get("breaches", {}))):
        vb, vo = ba.get("breaches", {}).get(clock, 0), oa.get("breaches", {}).get(clock, 0)
        rows.append([f"breaches raised: {clock}", str(vb), str(vo), _delta(vb, vo)])
    rows.append(
        [
            "escalations",
            str(ba.get("escalations", 0)),
            str(oa.get("escalations", 0)),
            _delta(ba.get("escalations", 0), oa.get("escalations", 0)),
        ]
    )
    og = {g["id"]: g for g in o["goals"]}
    for g in b["goals"]:
        h = og.get(g["id"])
        rows.append([f"goal {g['id']}", _goal_short(g), _goal_short(h) if h else "—", ""])
    out += _table(rows, ["", "base", "compare", "Δ"])
    out += ["", "=== base ===", render_text(b), "=== compare ===", render_text(o)]
    return "\n".join(out)


def _delta(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return "—"
    return f"{b - a:+g}"


def _goal_short(g: dict[str, Any]) -> str:
    v = fmt_value(g["metric"], g["value"])
    s = {True: "attained", False: "missed", None: "n/a"}[g["attained"]]
    return f"{v} {s}"
