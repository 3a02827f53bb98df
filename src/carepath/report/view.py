"""The report as people read it, in one language: the headline strip, every table and every chart,
built from the report's JSON object. HTML, text and CSV all render this one view, so a table
shown is a table exported.

A :class:`Table`'s cells carry both the text shown and the raw value exported (fractions stay
fractions, times stay seconds, instants stay ISO 8601).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from carepath.metrics.targets import KIND
from carepath.report import charts
from carepath.report.details import AGE_BUCKETS
from carepath.report.i18n import Words

__all__ = ["Card", "Cell", "Table", "View", "build_view", "compare_table"]


@dataclass
class Cell:
    """One cell: ``text`` shown, ``raw`` exported, an optional CSS class (``ok``/``bad``/``na``)."""

    text: str
    raw: Any = None
    cls: str = ""


@dataclass
class Table:
    """One table: ``id`` (the CSV file's name), its title, columns ``(key, label, numeric)``, rows."""

    id: str
    title: str
    columns: list[tuple[str, str, bool]]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    folded: bool = False  # long lists: shown collapsed in HTML, whole in CSV


@dataclass
class Card:
    """One goal in the headline strip."""

    title: str
    metric: str
    value: str
    target: str
    status: str
    cls: str
    trend: str
    window: str
    coverage: str
    owner: str


@dataclass
class View:
    """Everything a renderer needs, already in words."""

    lang: str
    title: str
    subtitle: str
    meta: list[str]
    cards: list[Card]
    sections: list[tuple[str, list[Table]]]
    charts: list[charts.Chart]
    notes: list[str] = field(default_factory=list)

    def tables(self) -> list[Table]:
        """Every table, in reading order."""
        return [t for _, ts in self.sections for t in ts]


def _d(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("details") or {}


def _names(r: dict[str, Any], kind: str) -> dict[str, str]:
    return (_d(r).get("names") or {}).get(kind) or {}


def _kind(r: dict[str, Any], metric: str) -> str:
    return KIND.get(metric) or (r.get("custom", {}).get(metric) or {}).get("type", "custom")


def _higher_is_better(target: str) -> bool | None:
    t = target.strip()
    if t.startswith(">"):
        return True
    if t.startswith("<"):
        return False
    return None


def _status(t: Words, g: dict[str, Any]) -> tuple[str, str]:
    if g["attained"] is True:
        return t("attained"), "ok"
    if g["attained"] is False:
        return t("missed"), "bad"
    reason = g.get("reason") or "n/a"
    text = t(reason) if reason in ("too_few_samples", "invalid_target") else t("n/a")
    if reason == "too_few_samples":
        text += f" ({t.num(g['samples'])}/{t.num(g['min_samples'])})"
    return text, "na"


def _trend(t: Words, g: dict[str, Any], kind: str) -> str:
    v, p = g["value"], g.get("trend")
    if p is None or v is None:
        return f"{t('trend')}: —"
    better = _higher_is_better(g["target"])
    arrow = "▲" if v > p else ("▼" if v < p else "=")
    verdict = ""
    if better is not None and v != p:
        verdict = " " + (t("better") if (v > p) == better else t("worse"))
    return f"{t('trend')}: {t.value(g['metric'], p, kind)} ({arrow}{verdict})"


def _window(t: Words, r: dict[str, Any], g: dict[str, Any]) -> tuple[str, str]:
    """The window in words, and its coverage (a window starting before the data says so; a rolling
    window has no days left)."""
    w = g.get("window")
    meta = (_d(r).get("goal_windows") or {}).get(g["id"]) or {}
    if not w:
        return "—", ""
    span = f"{t.day(w['from'])} – {t.day(w['to'])}"
    notes = []
    if meta.get("rolling"):
        span = f"{t('rolling', n=meta.get('days'))}: {span}"
    elif g.get("days_left") is not None:
        notes.append(t("days_left_n", n=g["days_left"]) if g["days_left"] > 0 else t("ended"))
    if meta.get("covered") is not None and meta.get("days") and meta["covered"] < meta["days"]:
        notes.append(
            t("coverage", k=meta["covered"], n=meta["days"], d=t.day(meta.get("data_from")))
        )
    return span, " · ".join(notes)


def _goal_title(t: Words, r: dict[str, Any], g: dict[str, Any]) -> str:
    return g.get("title") or t.metric_name(g["metric"], _names(r, "custom").get(g["metric"]))


def _cards(t: Words, r: dict[str, Any]) -> list[Card]:
    out = []
    for g in r["goals"]:
        kind = _kind(r, g["metric"])
        status, cls = _status(t, g)
        window, coverage = _window(t, r, g)
        out.append(
            Card(
                title=_goal_title(t, r, g),
                metric=t.metric_name(g["metric"], _names(r, "custom").get(g["metric"])),
                value=t.value(g["metric"], g["value"], kind),
                target=f"{t('target')} {g['target']}",
                status=status,
                cls=cls,
                trend=_trend(t, g, kind),
                window=window,
                coverage=coverage,
                owner=g.get("owner") or "",
            )
        )
    return out


def _goals_table(t: Words, r: dict[str, Any]) -> Table:
    tab = Table(
        "goals",
        t("goals"),
        [
            ("goal", t("goal"), False),
            ("metric", t("metric"), False),
            ("value", t("value"), True),
            ("target", t("target"), True),
            ("status", t("status"), False),
            ("samples", t("samples"), True),
            ("window", t("window"), False),
            ("trend", t("trend"), True),
            ("owner", t("owner"), False),
        ],
    )
    for g in r["goals"]:
        kind = _kind(r, g["metric"])
        status, cls = _status(t, g)
        window, coverage = _window(t, r, g)
        w = g.get("window")
        tab.rows.append(
            [
                Cell(_goal_title(t, r, g), g["id"]),
                Cell(
                    t.metric_name(g["metric"]) + (f" ({g['stat']})" if g.get("stat") else ""),
                    g["metric"],
                ),
                Cell(t.value(g["metric"], g["value"], kind), g["value"]),
                Cell(g["target"], g["target"]),
                Cell(status, g["attained"] if g["attained"] is not None else g.get("reason"), cls),
                Cell(t.num(g["samples"]), g["samples"]),
                Cell(
                    window + (f" ({coverage})" if coverage else ""),
                    f"{w['from']}/{w['to']}" if w else None,
                ),
                Cell(t.value(g["metric"], g.get("trend"), kind), g.get("trend")),
                Cell(g.get("owner") or "", g.get("owner")),
            ]
        )
    return tab


def _metrics_table(t: Words, r: dict[str, Any]) -> Table:
    tab = Table(
        "metrics",
        t("metrics"),
        [
            ("metric", t("metric"), False),
            ("meaning", t("meaning"), False),
            ("value", t("value"), True),
            ("samples", t("samples"), True),
        ],
    )
    for name, m in r["metrics"].items():
        if "median" in m and name != "aht":
            text = t(
                "median_etc",
                median=t.duration(m["median"]),
                mean=t.duration(m["mean"]),
                p90=t.duration(m["p90"]),
            )
            raw = m["median"]
        else:
            text, raw = t.value(name, m["value"]), m["value"]
        tab.rows.append(
            [
                Cell(t.metric_name(name), name),
                Cell(t.metric_definition(name)),
                Cell(text, raw),
                Cell(t.num(m["samples"]), m["samples"]),
            ]
        )
    titles = _names(r, "custom")
    for name, m in r.get("custom", {}).items():
        tab.rows.append(
            [
                Cell(t.metric_name(name, m.get("title") or titles.get(name)), name),
                Cell(f"{t('custom')} · {m['type']}"),
                Cell(t.value(name, m["value"], m["type"]), m["value"]),
                Cell(t.num(m["samples"]), m["samples"]),
            ]
        )
    return tab


def _rate_cols(t: Words, first: tuple[str, str, bool]) -> list[tuple[str, str, bool]]:
    return [
        first,
        ("clock", t("clock"), False),
        ("finished", t("finished"), True),
        ("met", t("met"), True),
        ("breached", t("breached"), True),
        ("attainment", t("attainment"), True),
        ("breach_rate", t("breach_rate"), True),
    ]


def _rate_row(
    t: Words, label: Cell, clock: str, clocks: dict[str, str], s: dict[str, Any]
) -> list[Cell]:
    att = s.get("attainment")
    n = s["met"] + s["breached"]
    br = s["breached"] / n if n else None
    return [
        label,
        Cell(clocks.get(clock) or clock, clock),
        Cell(t.num(n), n),
        Cell(t.num(s["met"]), s["met"]),
        Cell(t.num(s["breached"]), s["breached"]),
        Cell(t.pct(att), att),
        Cell(t.pct(br), br, "bad" if br else ""),
    ]


def _sla_tables(t: Words, r: dict[str, Any]) -> list[Table]:
    clocks = _names(r, "clocks")
    main = Table("slas", t("slas"), _rate_cols(t, ("clock_id", t("clock"), False))[1:])
    main.columns.append(("cancelled", t("cancelled"), True))
    for c, s in r["slas"].items():
        row = _rate_row(t, Cell(""), c, clocks, s)[1:]
        row.append(Cell(t.num(s.get("cancelled", 0)), s.get("cancelled", 0)))
        main.rows.append(row)
    out = [main]
    rates = _d(r).get("rates") or {}
    titles = {"channel": _names(r, "channels"), "tier": _names(r, "tiers"), "segment": {}}
    for by in ("channel", "segment", "tier"):
        tab = Table(f"rates_{by}", t(f"by_{by}"), _rate_cols(t, (by, t(by), False)))
        for row in rates.get(by, []):
            g = row["group"]
            title = titles[by].get(g)
            label = f"{g} · {title}" if title and by == "tier" else (title or g)
            tab.rows.append(_rate_row(t, Cell(label, g), row["clock"], clocks, row))
        out.append(tab)
    return out


def _load_tables(t: Words, r: dict[str, Any]) -> list[Table]:
    out = []
    st = _d(r).get("staffing_by_channel")
    if st:
        params = r.get("staffing_params") or {}
        tab = Table(
            "staffing_channels",
            t("staffing"),
            [
                ("channel", t("channel"), False),
                ("contacts", t("contacts"), True),
                ("busiest_hour", t("busiest_hour"), False),
                ("busiest_contacts", t("contacts_busiest"), True),
                ("aht", t.metric_name("aht"), True),
                ("answer_within", t("answer_within"), True),
                ("agents", t("agents"), True),
            ],
            note=t("staffing_note", target=t.pct(params.get("target", 0.8), 0)),
        )
        names = _names(r, "channels")
        for s in st:
            tab.rows.append(
                [
                    Cell(names.get(s["channel"]) or s["channel"], s["channel"]),
                    Cell(t.num(s["contacts"]), s["contacts"]),
                    Cell(t.instant(s["busiest_hour"]), s["busiest_hour"]),
                    Cell(t.num(s["busiest_contacts"]), s["busiest_contacts"]),
                    Cell(t.duration(s["aht"]), s["aht"]),
                    Cell(t.duration(s["answer_within"]), s["answer_within"]),
                    Cell("—" if s["agents"] is None else t.num(s["agents"]), s["agents"]),
                ]
            )
        out.append(tab)
    daily = Table(
        "load_daily",
        t("load_daily"),
        [("date", t("day"), False), ("contacts", t("contacts"), True)],
        folded=True,
    )
    for d in r["load"]["per_day"]:
        daily.rows.append(
            [Cell(t.day(d["date"]), d["date"]), Cell(t.num(d["contacts"]), d["contacts"])]
        )
    hourly = Table(
        "staffing",
        f"{t('contacts')} / {t('agents')} ({t('hour')})",
        [
            ("hour", t("hour"), False),
            ("contacts", t("contacts"), True),
            ("agents", t("agents"), True),
        ],
        folded=True,
    )
    for s in r["staffing"]:
        hourly.rows.append(
            [
                Cell(t.instant(s["hour"]), s["hour"]),
                Cell(t.num(s["contacts"]), s["contacts"]),
                Cell("—" if s["agents"] is None else t.num(s["agents"]), s["agents"]),
            ]
        )
    return [*out, daily, hourly]


def _age_label(t: Words, i: int) -> str:
    lo = 0 if i == 0 else AGE_BUCKETS[i - 1]
    if i == len(AGE_BUCKETS):
        return f"≥ {t.duration(lo)}"
    return f"{t.duration(lo) if lo else '0'} – {t.duration(AGE_BUCKETS[i])}"


def _backlog_tables(t: Words, r: dict[str, Any]) -> list[Table]:
    b = _d(r).get("backlog")
    if not b:
        return []
    note = t("as_of", t=t.instant(b["as_of"]))
    ageing = Table(
        "backlog_ageing",
        f"{t('ageing')}: {t.num(b['open'])} {t('open_cases').lower()}",
        [
            ("age", t("age"), False),
            ("up_to_seconds", "≤ s", True),
            ("cases", t("open_cases"), True),
        ],
        note=note,
    )
    for i, row in enumerate(b["ageing"]):
        ageing.rows.append(
            [
                Cell(_age_label(t, i)),
                Cell("", row["up_to"]),
                Cell(t.num(row["cases"]), row["cases"]),
            ]
        )
    stages = Table(
        "backlog_stages",
        t("stage"),
        [("stage", t("stage"), False), ("cases", t("open_cases"), True)],
    )
    for s, n in b["by_stage"].items():
        stages.rows.append([Cell(s, s), Cell(t.num(n), n)])
    clocks, chans = _names(r, "clocks"), _names(r, "channels")
    late = Table(
        "breached_open",
        t("breached_open"),
        [
            ("case", t("case"), False),
            ("clock", t("clock"), False),
            ("channel", t("channel"), False),
            ("tier", t("tier"), False),
            ("stage", t("stage"), False),
            ("breached_at", t("since"), False),
            ("overdue", t("overdue"), True),
        ],
        note=note
        if len(b["breached_open"]) == b["breached_open_total"]
        else f"{note} · {t('shown', n=len(b['breached_open']), m=b['breached_open_total'])}",
    )
    for x in b["breached_open"]:
        late.rows.append(
            [
                Cell(x["case"], x["case"]),
                Cell(clocks.get(x["clock"]) or x["clock"], x["clock"]),
                Cell(chans.get(x["channel"] or "") or x["channel"] or "—", x["channel"]),
                Cell(x["tier"] or "—", x["tier"]),
                Cell(x["stage"], x["stage"]),
                Cell(t.instant(x["breached_at"]), x["breached_at"]),
                Cell(t.duration(x["overdue"]), x["overdue"], "bad"),
            ]
        )
    return [ageing, stages, late]


def partial_weeks(r: dict[str, Any], weeks: list[str]) -> frozenset[int]:
    """Indices of the weeks (Monday dates) the data starts or ends inside."""
    p = r["period"]
    if not p.get("from") or not p.get("to"):
        return frozenset()
    first, last = date.fromisoformat(p["from"][:10]), date.fromisoformat(p["to"][:10])
    out = set()
    for i, w in enumerate(weeks):
        start = date.fromisoformat(w)
        if start < first or start + timedelta(days=6) > last:
            out.add(i)
        elif start + timedelta(days=6) == last and not p["to"][11:16] >= "23:59":
            out.add(i)  # the last day itself is not over
    return frozenset(out)


def partial_days(r: dict[str, Any], days: list[str]) -> frozenset[int]:
    """Indices of the days (local dates) the data starts or ends inside: the first day when the
    first event is after midnight, the last when the last event is before 23:59."""
    p = r["period"]
    if not p.get("from") or not p.get("to") or not days:
        return frozenset()
    out = set()
    if days[0] == p["from"][:10] and p["from"][11:16] > "00:00":
        out.add(0)
    if days[-1] == p["to"][:10] and p["to"][11:16] < "23:59":
        out.add(len(days) - 1)
    return frozenset(out)


def _goal_target(r: dict[str, Any], metric: str, sla: str | None = None) -> float | None:
    for g in r["goals"]:
        if (
            g["metric"] == metric
            and (sla is None or g.get("sla") == sla)
            and not (g.get("segment") or g.get("channel") or g.get("tier"))
            and g.get("target_value") is not None
        ):
            return float(g["target_value"])
    return None


def _scale(kind: str, vals: list[float]) -> tuple[float, float]:
    if kind == "nps":
        return -100.0, 100.0
    if kind in ("share", "ratio"):
        return 0.0, 1.0
    if kind == "ces":
        return 1.0, 7.0
    return 0.0, charts.nice_ticks(0.0, max([*vals, 1.0]) * 1.1)[-1]


def _charts(t: Words, r: dict[str, Any]) -> list[charts.Chart]:
    out = []
    clocks = _names(r, "clocks")
    pct0 = lambda v: t.pct(v, 0)  # noqa: E731
    sw = r["series"]["sla_weekly"]
    weeks = sorted({p["week"] for pts in sw.values() for p in pts})
    series: dict[str, Sequence[float | None]] = {
        clocks.get(c) or c: [
            next((p["attainment"] for p in pts if p["week"] == w), None) for w in weeks
        ]
        for c, pts in sw.items()
        if pts
    }
    targets = []
    for k, c in enumerate(c for c, pts in sw.items() if pts):
        v = _goal_target(r, "sla_attainment", c)
        if v is not None:
            targets.append((f"{t('target_line')} {clocks.get(c) or c}", v, charts.PALETTE[k % 7]))
    part = partial_weeks(r, weeks)
    ch = charts.line_chart(
        "sla-weekly",
        t("sla_weekly"),
        [t.short_day(w) for w in weeks],
        series,
        pct0,
        fixed=(0.0, 1.0),
        targets=targets,
        partial=part,
        partial_label=t("partial"),
        why_empty=t("no_data"),
    )
    if part:
        ch.note = t("partial_note")
    out.append(ch)
    rates = _d(r).get("rates") or {}
    for by, color in (
        ("channel", charts.PALETTE[1]),
        ("segment", charts.PALETTE[4]),
        ("tier", charts.PALETTE[3]),
    ):
        agg: dict[str, list[int]] = {}
        for row in rates.get(by, []):
            cell = agg.setdefault(row["group"], [0, 0])
            cell[0] += row["breached"]
            cell[1] += row["finished"]
        data = [(g, b / n) for g, (b, n) in sorted(agg.items()) if n]
        out.append(
            charts.bar_chart(
                f"rates-{by}",
                t("rate_chart", by=t(f"by_{by}").lower()),
                data,
                pct0,
                color=color,
                why_empty=t("no_data"),
            )
        )
    rows = []
    for g in r["goals"]:
        kind = _kind(r, g["metric"])
        status, _cls = _status(t, g)
        lo, hi = _scale(kind, [x for x in (g["value"], g.get("target_value")) if x is not None])
        rows.append(
            charts.GoalBar(
                label=_goal_title(t, r, g),
                lo=lo,
                hi=hi,
                value=g["value"],
                target=g.get("target_value"),
                status=g["attained"],
                value_text=t.value(g["metric"], g["value"], kind),
                target_text=f"{t('target')} {g['target']}",
                status_text=status,
            )
        )
    out.append(charts.goal_chart("goals", t("goal_chart"), rows, t("no_goals")))
    sv = r["series"]["surveys_weekly"]
    sweeks = [p["week"] for p in sv]
    spart = partial_weeks(r, sweeks)
    for key, name, fixed, fmt in (
        ("csat", "csat_weekly", (0.0, 1.0), pct0),
        ("nps", "nps_weekly", (-100.0, 100.0), lambda v: ("+" if v > 0 else "") + t.num(v)),
    ):
        target = _goal_target(r, key)
        c = charts.line_chart(
            f"{key}-trend",
            t(name),
            [t.short_day(w) for w in sweeks],
            {t.metric_name(key): [p[key] for p in sv]},
            fmt,
            fixed=fixed,
            targets=[(t("target_line"), target, "#111827")] if target is not None else [],
            partial=spart,
            partial_label=t("partial"),
            why_empty=t("no_data"),
        )
        if spart:
            c.note = t("partial_note")
        out.append(c)
    load = r["load"]
    peak = load["peak"]
    dpart = partial_days(r, [d["date"] for d in load["per_day"]])
    daily = charts.bar_chart(
        "load-daily",
        t("load_daily"),
        [(t.short_day(d["date"]), d["contacts"]) for d in load["per_day"]],
        t.num,
        highlight=t.short_day(peak["date"]) if peak else None,
        partial=dpart,
        partial_label=t("partial_day"),
        integer=True,
        why_empty=t("no_data"),
    )
    if dpart:
        daily.note = t("partial_day_note")
    out.append(daily)
    hours = [s for s in r["staffing"] if peak and s["hour"].startswith(peak["date"])]
    out.append(
        charts.combo_chart(
            "load-hourly",
            t("hourly", d=t.day(peak["date"]) if peak else "—"),
            [s["hour"][11:16] for s in hours],
            [s["contacts"] for s in hours],
            [s["agents"] for s in hours],
            bar_label=t("contacts"),
            line_label=t("agents"),
            bar_fmt=t.num,
            line_fmt=t.num,
            why_empty=t("no_data"),
        )
    )
    return out


def agents_table(t: Words, r: dict[str, Any]) -> Table | None:
    """The section's table (``None`` for a report without a roster)."""
    block = r.get("allocation")
    if not block:
        return None
    tab = Table(
        "agents",
        t("agents_title"),
        [
            ("agent", t("agent"), False),
            ("cases", t("cases_assigned"), True),
            ("first_response_median", t("first_response_median"), True),
            ("aht", t.metric_name("aht"), True),
            ("fcr", t.metric_name("fcr"), True),
            ("csat", t.metric_name("csat"), True),
            ("sla_attainment", t.metric_name("sla_attainment"), True),
            ("open", t("open_load"), True),
        ],
        note=t("agents_note", queued=t.num(block["queued"])),
    )
    for row in block["agents"]:
        label = row["agent"] if not row["name"] else f"{row['name']} ({row['agent']})"
        tab.rows.append(
            [
                Cell(label, row["agent"]),
                Cell(t.num(row["cases"]), row["cases"]),
                Cell(t.duration(row["first_response_median"]), row["first_response_median"]),
                Cell(t.duration(row["aht"]), row["aht"]),
                Cell(t.pct(row["fcr"]), row["fcr"]),
                Cell(t.pct(row["csat"]), row["csat"]),
                Cell(t.pct(row["sla_attainment"]), row["sla_attainment"]),
                Cell(t.num(row["open"]), row["open"]),
            ]
        )
    return tab


def build_view(r: dict[str, Any], lang: str = "en") -> View:
    """The view of one report in ``lang``."""
    t = Words(lang)
    pb = r["playbook"]
    p = r["period"]
    meta = [
        f"{t('period')}: {t.instant(p.get('from'))} → {t.instant(p.get('to'))}",
        f"{t.num(r['events'])} {t('events')} · {t.num(r['cases'])} {t('cases')}",
        f"{t('timezone')} {r.get('timezone', '')}",
    ]
    if r.get("source") == "store":
        meta.append(t("from_store"))
    rejected = (r.get("activity") or {}).get("rejected")
    if rejected:
        meta.append(f"{t.num(rejected)} {t('rejected')}")
    sections = [
        (t("goals"), [_goals_table(t, r)] if r["goals"] else []),
        (t("metrics"), [_metrics_table(t, r)]),
        (t("slas"), _sla_tables(t, r)),
        (t("load"), _load_tables(t, r)),
    ]
    backlog = _backlog_tables(t, r)
    if backlog:
        sections.append((t("backlog"), backlog))
    agents = agents_table(t, r)
    if agents is not None:
        sections.append((t("agents_title"), [agents]))
    return View(
        lang=lang,
        title=f"{t('report')} — {pb.get('title') or pb['id']}",
        subtitle=f"{pb['id']} {pb['version']}",
        meta=meta,
        cards=_cards(t, r),
        sections=sections,
        charts=_charts(t, r),
    )


def compare_table(c: dict[str, Any], lang: str = "en") -> Table:
    """The what-if's differences: each deadline's rate, breaches, escalations and goals."""
    t = Words(lang)
    b, o = c["base"], c["compare"]
    clocks = {**_names(o, "clocks"), **_names(b, "clocks")}
    tab = Table(
        "what_if",
        t("differences"),
        [
            ("row", "", False),
            ("base", t("base"), True),
            ("compare", t("compare"), True),
            ("delta", "Δ", True),
        ],
    )
    for clock in sorted(set(b["slas"]) | set(o["slas"])):
        sb, so = b["slas"].get(clock) or {}, o["slas"].get(clock) or {}
        for key in ("met", "breached"):
            vb, vo = sb.get(key), so.get(key)
            d = None if vb is None or vo is None else vo - vb
            tab.rows.append(
                [
                    Cell(f"{clocks.get(clock) or clock}: {t(key).lower()}", f"{clock} {key}"),
                    Cell(t.num(vb), vb),
                    Cell(t.num(vo), vo),
                    Cell("—" if d is None else f"{d:+d}", d),
                ]
            )
        ab, ao = sb.get("attainment"), so.get("attainment")
        delta = None if ab is None or ao is None else ao - ab
        tab.rows.append(
            [
                Cell(f"{clocks.get(clock) or clock}: {t('attainment').lower()}", clock),
                Cell(t.pct(ab), ab),
                Cell(t.pct(ao), ao),
                Cell("—" if delta is None else f"{delta * 100:+.1f} pt", delta),
            ]
        )
    ba, oa = b.get("activity") or {}, o.get("activity") or {}
    eb, eo = ba.get("escalations", 0), oa.get("escalations", 0)
    tab.rows.append(
        [
            Cell("escalations"),
            Cell(t.num(eb), eb),
            Cell(t.num(eo), eo),
            Cell(f"{eo - eb:+d}", eo - eb),
        ]
    )
    og = {g["id"]: g for g in o["goals"]}
    for g in b["goals"]:
        h = og.get(g["id"])
        kind = _kind(b, g["metric"])
        tab.rows.append(
            [
                Cell(_goal_title(t, b, g), g["id"]),
                Cell(f"{t.value(g['metric'], g['value'], kind)} · {_status(t, g)[0]}", g["value"]),
                Cell(
                    f"{t.value(h['metric'], h['value'], kind)} · {_status(t, h)[0]}" if h else "—",
                    h["value"] if h else None,
                ),
                Cell(""),
            ]
        )
    return tab
