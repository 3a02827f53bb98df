"""The care report as plain text for people (``carepath report --format text``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carepath.metrics.targets import KIND
from carepath.report.i18n import fmt_duration

if TYPE_CHECKING:
    from carepath.report.view import Table

__all__ = ["fmt_duration", "fmt_value", "render_compare_text", "render_text"]


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


def _view_table(t: Table, heading: bool = True) -> list[str]:
    cols = [  # the definitions are listed apart; columns only exported (no text) are left out
        i
        for i, (key, _label, _n) in enumerate(t.columns)
        if key != "meaning" and (not t.rows or any(row[i].text for row in t.rows))
    ]
    rows = [[row[i].text for i in cols] for row in t.rows]
    header = [t.columns[i][1] for i in cols]
    numeric = [t.columns[i][2] for i in cols]
    out = [t.title + (f"  ({t.note})" if t.note else "")] if heading else []
    if t.note and not heading:
        out.append(f"({t.note})")
    if not rows:
        return [*out, "  —"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        return (
            "  "
            + "  ".join(
                c.rjust(w) if n else c.ljust(w)
                for c, w, n in zip(cells, widths, numeric, strict=True)
            ).rstrip()
        )

    return [*out, line(header), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


def render_text(r: dict[str, Any], lang: str = "en") -> str:
    """One report as text, in ``lang`` (``en`` or ``vi``): the same view as the HTML report,
    without the charts and the long per-day and per-hour lists (``--csv`` has them)."""
    from carepath.report.i18n import Words
    from carepath.report.view import build_view

    v = build_view(r, lang)
    w = Words(lang)
    out = [f"{v.title} ({v.subtitle})", *v.meta, ""]
    out.append(w("headline"))
    for c in v.cards:
        out.append(f"  [{c.status}] {c.title}: {c.value} ({c.target})")
        out.append(f"      {c.trend} · {c.window}" + (f" · {c.coverage}" if c.coverage else ""))
    if not v.cards:
        out.append("  " + w("no_goals"))
    for title, tables in v.sections:
        shown = [t for t in tables if not t.folded and t.id != "goals"]  # goals: the headline
        if not shown:
            continue
        out += ["", f"== {title} =="]
        for t in shown:
            out += [*_view_table(t, heading=t.title != title), ""]
            if t.id == "metrics":
                out += [
                    f"  {row[0].text}: {row[1].text}"
                    for row in t.rows
                    if row[1].raw is None and row[1].text
                ]
                out.append("")
    load = r["load"]
    if load["peak"]:
        days = load["per_day"]
        out.append(
            f"{w('load_daily')}: {w.num(sum(d['contacts'] for d in days))} / {len(days)} "
            f"· {w('peak')} {w.day(load['peak']['date'])}: {w.num(load['peak']['contacts'])}"
        )
    return "\n".join(out).rstrip("\n") + "\n"


def render_compare_text(c: dict[str, Any], lang: str = "en") -> str:
    """The what-if: differences side by side, then both reports."""
    from carepath.report.i18n import Words
    from carepath.report.view import compare_table

    w = Words(lang)
    b, o = c["base"], c["compare"]
    out = [
        f"{w('what_if')}: {b['playbook']['id']} {b['playbook']['version']} ({w('base')}) → "
        f"{o['playbook']['id']} {o['playbook']['version']} ({w('compare')}), "
        f"{w.num(b['events'])} {w('events')}",
        "",
        *_view_table(compare_table(c, lang)),
        "",
        f"=== {w('base')} ===",
        render_text(b, lang),
        f"=== {w('compare')} ===",
        render_text(o, lang),
    ]
    return "\n".join(out)
